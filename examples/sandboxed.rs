//! What the workers' sandbox does with a DSP that reaches for the OS while
//! it renders: this one holds a tone, and on `/peek` reads `/etc/hostname`
//! (a bug, a debug print left in, or worse). In a worker that is a system
//! call the sandbox forbids: every replica dies of SIGSYS on the same
//! command, the engine cuts the command out as a poison, and the tone plays
//! on from the state before it. Then `check_determinism` names the call, as
//! `chronus check` would for a DSP of yours before you ship it.
//!
//! Run: `cargo run --release --example sandboxed`
//!
//! The last line is the verdict the run measured: `frames lost: 0,
//! bit-exact: yes, the tone plays on: yes` (otherwise what differed, exit
//! 1). docs/security.md has the list of calls a worker may make.

use std::process::ExitCode;
use std::time::Duration;

use chronus::dsp::{AddressSpec, ArgSpec, Block, Dsp, DspError, DspSpec, Event, Piece, Setup, TimedEvent};
use chronus::harness::{FailoverSummary, check_determinism};
use chronus::supervisor::{Engine, EngineConfig, PacedSink, Status};
use chronus::worker::WorkerCommand;

/// Event index of `/tone f:freq_hz`.
const TONE: u16 = 0;
/// Event index of `/peek`.
const PEEK: u16 = 1;

/// A sine that holds until told otherwise.
struct Peeker {
    sample_rate: f32,
    phase: f32,
    step: f32,
}

impl Dsp for Peeker {
    type Config = ();
    const NAME: &'static str = "example-peeker/1";

    fn addresses(_: &()) -> Vec<AddressSpec> {
        vec![
            AddressSpec::new("/tone", vec![ArgSpec::float("freq_hz", (20.0, 8_000.0), "Hz")], "hold a tone"),
            AddressSpec::new("/peek", vec![], "read /etc/hostname while rendering (don't)"),
        ]
    }

    fn prepare(setup: &Setup, _: &()) -> Result<Self, DspError> {
        // Reading files here is fine: prepare runs before the sandbox.
        Ok(Self { sample_rate: setup.sample_rate as f32, phase: 0.0, step: 0.0 })
    }

    fn snapshot_len(&self) -> usize {
        8
    }

    fn render(&mut self, block: Block<'_>) {
        block.split(|piece| match piece {
            Piece::Event(e) if e.address == TONE => self.step = e.float(0) / self.sample_rate,
            Piece::Event(e) if e.address == PEEK => {
                // openat(2), inside a render: the sandbox kills the worker here.
                let _ = std::fs::read_to_string("/etc/hostname");
            }
            Piece::Event(_) => {}
            Piece::Audio { left, right, .. } => {
                for (l, r) in left.iter_mut().zip(right.iter_mut()) {
                    self.phase = (self.phase + self.step).fract();
                    let y = (self.phase * std::f32::consts::TAU).sin() * 0.3;
                    (*l, *r) = (y, y);
                }
            }
        });
    }

    fn snapshot(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.phase.to_le_bytes());
        out[4..8].copy_from_slice(&self.step.to_le_bytes());
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), DspError> {
        let word = |i: usize| f32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let (phase, step) = (word(0), word(4));
        if !(phase.is_finite() && (0.0..1.0).contains(&phase) && step.is_finite()) {
            return Err(DspError::BadSnapshot("phase or step out of range".into()));
        }
        (self.phase, self.step) = (phase, step);
        Ok(())
    }

    fn reset(&mut self) {
        (self.phase, self.step) = (0.0, 0.0);
    }
}

fn redundant(s: &Status) -> bool {
    s.standby_pid.is_some() && s.joining_pid.is_none()
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let spec = DspSpec::new::<Peeker>(())?;
    let mut config = EngineConfig::new(spec.clone(), WorkerCommand::current_exe()?);
    config.record_in_memory = true;
    let setup = config.setup();
    let engine = Engine::start(config, PacedSink::new(setup.sample_rate))?;
    engine.wait_for(Duration::from_secs(5), redundant).map_err(|s| format!("no standby: {s:?}"))?;
    engine.send(Event::new(TONE).with_float(330.0))?;
    std::thread::sleep(Duration::from_millis(500));
    println!("sandboxed: a tone holds; sending /peek, which reads a file inside a render");
    engine.send(Event::new(PEEK))?;
    let status = engine
        .wait_for(Duration::from_secs(5), |s| s.counters.excised_commands == 1 && redundant(s))
        .map_err(|s| format!("the command was not cut out: {s:?}"))?;
    let cut = engine.take_cuts();
    std::thread::sleep(Duration::from_millis(500));
    engine.fade_out();
    let report = engine.stop()?;
    for e in &report.failovers {
        println!("  worker {} ({:?}) {}", e.pid, e.role, e.exit);
    }
    println!(
        "  /peek cut out as a poison; the sandbox killed {} worker(s), last for {}",
        status.sandbox_kills,
        status.last_forbidden_call.as_deref().unwrap_or("?")
    );
    let events = [
        TimedEvent { frame: 0, event: Event::new(TONE).with_float(330.0) },
        TimedEvent { frame: 12_000, event: Event::new(PEEK) },
    ];
    let check = check_determinism(&spec, &WorkerCommand::current_exe()?, setup, &events, 24_000)?;
    println!("  the check: {}", check.forbidden_calls.join(", "));
    let summary = FailoverSummary::of(&report);
    let after = cut.first().map_or(0, |c| c.frame as usize + 4_800);
    let plays_on = report.left.get(after..after + 9_600).is_some_and(|s| s.iter().any(|x| x.abs() > 0.25));
    let ok = summary.lost_frames == 0 && summary.bit_exact && plays_on && check.forbidden_calls == ["openat"];
    println!(
        "frames lost: {}, bit-exact: {}, the tone plays on: {}",
        summary.lost_frames,
        if summary.bit_exact { "yes" } else { "NO" },
        if plays_on { "yes" } else { "NO" }
    );
    Ok(ok)
}

fn main() -> ExitCode {
    // The engine runs this program as its workers: there, this never returns.
    chronus::worker::init::<Peeker>();
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sandboxed: {e}");
            ExitCode::from(2)
        }
    }
}
