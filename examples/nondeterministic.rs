//! What happens to a DSP that breaks the determinism contract: this one
//! mixes a value that differs per process (its pid) into its output, as a
//! DSP that reads a clock or seeds a random generator from the process
//! would. Its replicas disagree from the first block; the engine notices,
//! stops respawning workers into endless divergence kills, and says so —
//! and `check_determinism`, the helper to run before shipping a DSP, says
//! so too. The example exits 1.
//!
//! Run: `cargo run --release --example nondeterministic`

use std::process::ExitCode;
use std::time::Duration;

use chronus::dsp::{AddressSpec, ArgSpec, Block, Dsp, DspError, DspSpec, Event, Piece, Setup, TimedEvent};
use chronus::harness::check_determinism;
use chronus::supervisor::{Engine, EngineConfig, PacedSink};
use chronus::worker::WorkerCommand;

/// A sine whose level is nudged by the process id: wrong on purpose.
struct PerProcess {
    phase: f32,
    step: f32,
    quirk: f32,
}

impl Dsp for PerProcess {
    type Config = ();
    const NAME: &'static str = "example-nondeterministic/1";

    fn addresses(_: &()) -> Vec<AddressSpec> {
        vec![AddressSpec::new("/freq", vec![ArgSpec::float("hz", (20.0, 4_000.0), "Hz")], "the pitch")]
    }

    fn prepare(setup: &Setup, _: &()) -> Result<Self, DspError> {
        Ok(Self {
            phase: 0.0,
            step: 440.0 / setup.sample_rate as f32,
            // The bug: something that differs between processes.
            quirk: (std::process::id() % 97) as f32 * 1.0e-6,
        })
    }

    fn snapshot_len(&self) -> usize {
        8
    }

    fn render(&mut self, block: Block<'_>) {
        block.split(|piece| match piece {
            Piece::Event(e) => self.step = e.float(0) / 48_000.0,
            Piece::Audio { left, right, .. } => {
                for (l, r) in left.iter_mut().zip(right.iter_mut()) {
                    self.phase = (self.phase + self.step).fract();
                    let y = (self.phase * std::f32::consts::TAU).sin() * 0.2 + self.quirk;
                    (*l, *r) = (y, y);
                }
            }
        });
    }

    fn snapshot(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.phase.to_le_bytes());
        out[4..].copy_from_slice(&self.step.to_le_bytes());
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), DspError> {
        let word = |i: usize| f32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        if bytes.len() != 8 || !word(0).is_finite() || !word(4).is_finite() {
            return Err(DspError::BadSnapshot("not a snapshot of this DSP".into()));
        }
        (self.phase, self.step) = (word(0), word(4));
        Ok(())
    }

    fn reset(&mut self) {
        (self.phase, self.step) = (0.0, 440.0 / 48_000.0);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let spec = DspSpec::new::<PerProcess>(())?;
    let worker = WorkerCommand::current_exe()?;
    let setup = Setup { sample_rate: 48_000, block: 256 };

    // Before shipping: the helper renders the same events in worker
    // processes and in-process, and compares.
    let events = [TimedEvent { frame: 4_800, event: Event::new(0).with_float(660.0) }];
    let check = check_determinism(&spec, &worker, setup, &events, 24_000)?;
    println!("check_determinism: {check}");

    // Under the engine: the replicas disagree, and the engine says why.
    let engine = Engine::start(EngineConfig::new(spec, worker), PacedSink::new(48_000))?;
    let status = engine.wait_for(Duration::from_secs(10), |s| s.nondeterministic_at.is_some());
    let status = status.unwrap_or_else(|s| s);
    let failovers = status.failovers;
    engine.fade_out();
    let report = engine.stop()?;
    match report.nondeterministic_at {
        Some(frame) => println!(
            "the engine: this DSP is not deterministic (its workers' audio differed from frame {frame}); it played \
             on without a standby after {failovers} replacement(s), instead of replacing workers forever"
        ),
        None => println!("the engine did not notice within 10 s ({failovers} failovers)"),
    }
    Ok(())
}

fn main() -> ExitCode {
    chronus::worker::init::<PerProcess>();
    if let Err(e) = run() {
        eprintln!("nondeterministic: {e}");
        return ExitCode::from(2);
    }
    // This DSP must not ship: the example fails, as a CI check would.
    ExitCode::FAILURE
}
