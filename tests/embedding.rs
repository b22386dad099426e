//! Embedding: the failover engine carrying a DSP that is not the built-in
//! synth, through the public seam only, with this test binary as its own
//! worker (`worker_test_entry!`). A good DSP survives kills bit-exactly; a
//! nondeterministic one is reported, not respawned forever; the
//! pre-shipping check tells a good DSP from a nondeterministic one and from
//! one whose snapshot misses state. Its DSP refuses to prepare under a
//! real-time policy: every worker, replacements and spares included, must
//! start as an ordinary process.
//!
//! These tests play in real time, so they run one at a time (`RT_LOCK`).

use crate::util::{play_for, rt_lock};
use std::time::Duration;

use chronus::dsp::{AddressSpec, ArgSpec, Block, Dsp, DspError, DspSpec, Event, Piece, Setup, TimedEvent};
use chronus::harness::{FailoverSummary, check_determinism};
use chronus::supervisor::{Engine, EngineConfig, Health, PacedSink, Target};
use chronus::worker::WorkerCommand;

/// Sines that ring and decay, through an echo (a delay line: state a
/// snapshot must carry). Two ways to break it, for the tests: `quirk`
/// mixes in the pid (not deterministic); `forgetful` leaves the echo out of
/// snapshots (incomplete).
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct RingConfig {
    quirk: bool,
    forgetful: bool,
}

struct Ring {
    cfg: RingConfig,
    sample_rate: f32,
    voices: [[f32; 3]; 4], // phase, step, level
    echo: Vec<f32>,
    at: usize,
    quirk: f32,
}

const ECHO: usize = 4_800;
const WORDS: usize = 4 * 3 + 1 + ECHO;

impl Dsp for Ring {
    type Config = RingConfig;
    const NAME: &'static str = "test-ring/1";

    fn addresses(_: &RingConfig) -> Vec<AddressSpec> {
        vec![AddressSpec::new(
            "/ring",
            vec![ArgSpec::int("voice", 0, 3), ArgSpec::float("freq_hz", (20.0, 8_000.0), "Hz")],
            "strike a voice",
        )]
    }

    fn prepare(setup: &Setup, cfg: &RingConfig) -> Result<Self, DspError> {
        // The contract: a DSP prepares as an ordinary process, whoever
        // spawned its worker (replacements and spares come from the
        // supervisor's real-time thread). This one holds Chronus to it.
        if chronus::sys::sched::thread_policy() != libc::SCHED_OTHER {
            return Err(DspError::InvalidSetup("prepared under a real-time scheduling policy".into()));
        }
        Ok(Self {
            cfg: *cfg,
            sample_rate: setup.sample_rate as f32,
            voices: [[0.0; 3]; 4],
            echo: vec![0.0; ECHO],
            at: 0,
            quirk: if cfg.quirk { (std::process::id() % 89 + 1) as f32 * 1.0e-5 } else { 0.0 },
        })
    }

    fn snapshot_len(&self) -> usize {
        WORDS * 4
    }

    fn render(&mut self, block: Block<'_>) {
        block.split(|piece| match piece {
            Piece::Event(e) => {
                let v = &mut self.voices[(e.int(0) as usize).min(3)];
                *v = [0.0, e.float(1) / self.sample_rate, 0.5];
            }
            Piece::Audio { left, right, .. } => {
                for (l, r) in left.iter_mut().zip(right.iter_mut()) {
                    let mut y = self.quirk;
                    for v in &mut self.voices {
                        v[0] = (v[0] + v[1]).fract();
                        y += (v[0] * std::f32::consts::TAU).sin() * v[2];
                        v[2] *= 0.9997;
                    }
                    let wet = self.echo[self.at];
                    self.echo[self.at] = y * 0.5 + wet * 0.4;
                    self.at = (self.at + 1) % ECHO;
                    (*l, *r) = (y + wet * 0.6, y - wet * 0.6);
                }
            }
        });
    }

    fn snapshot(&self, out: &mut [u8]) {
        let words = self.voices.iter().flatten().copied().chain([f32::from_bits(self.at as u32)]);
        let echo = self.echo.iter().map(|x| if self.cfg.forgetful { 0.0 } else { *x });
        for (chunk, w) in out.chunks_exact_mut(4).zip(words.chain(echo)) {
            chunk.copy_from_slice(&w.to_bits().to_le_bytes());
        }
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), DspError> {
        if bytes.len() != WORDS * 4 {
            return Err(DspError::BadSnapshot("wrong length".into()));
        }
        let w: Vec<u32> =
            bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if w[12] as usize >= ECHO {
            return Err(DspError::BadSnapshot("echo position out of range".into()));
        }
        for (i, v) in self.voices.iter_mut().flatten().enumerate() {
            *v = f32::from_bits(w[i]);
        }
        self.at = w[12] as usize;
        for (x, b) in self.echo.iter_mut().zip(&w[13..]) {
            *x = f32::from_bits(*b);
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.voices = [[0.0; 3]; 4];
        self.echo.fill(0.0);
        self.at = 0;
    }
}

chronus::worker::worker_test_entry!(ring_worker, Ring);

fn spec(quirk: bool, forgetful: bool) -> DspSpec {
    DspSpec::new::<Ring>(RingConfig { quirk, forgetful }).unwrap()
}

fn worker() -> WorkerCommand {
    WorkerCommand::current_test("embedding::ring_worker").unwrap()
}

fn strikes(frames: u64) -> Vec<TimedEvent> {
    (0..frames / 3_000)
        .map(|k| TimedEvent {
            frame: k * 3_000 + 17,
            event: Event::new(0).with_int((k % 4) as i32).with_float(110.0 * (1.0 + (k % 7) as f32)),
        })
        .collect()
}

#[test]
fn a_dsp_of_your_own_survives_kills_bit_exactly() {
    let _rt = rt_lock();
    let mut cfg = EngineConfig::new(spec(false, false), worker());
    cfg.record_in_memory = true;
    cfg.faults_enabled = true;
    let engine = Engine::start(cfg, PacedSink::new(48_000)).unwrap();
    let verified = |s: &chronus::supervisor::Status| s.standby_pid.is_some() && s.joining_pid.is_none();
    for (n, target) in [Target::Active, Target::Standby, Target::Active].into_iter().enumerate() {
        engine.wait_for(Duration::from_secs(5), verified).unwrap();
        for e in strikes(12_000) {
            engine.send(e.event).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        engine.signal(target, libc::SIGKILL).unwrap();
        engine.wait_for(Duration::from_secs(5), |s| s.failovers > n as u64).unwrap();
    }
    engine.wait_for(Duration::from_secs(5), verified).unwrap();
    play_for(&engine, Duration::from_millis(200));
    engine.fade_out();
    let report = engine.stop().unwrap();
    let summary = FailoverSummary::of(&report);
    assert_eq!(summary.faults, 3, "{:#?}", report.failovers);
    assert_eq!(summary.lost_frames, 0);
    assert!(summary.bit_exact, "first difference at {:?}", summary.first_difference);
    assert!(report.failovers.iter().all(|e| e.t_rejoin.is_some()));
    assert!(report.left.iter().any(|s| s.abs() > 0.1), "the DSP must be audible");
}

#[test]
fn a_nondeterministic_dsp_is_reported_and_not_respawned_forever() {
    let _rt = rt_lock();
    let engine =
        Engine::start(EngineConfig::new(spec(true, false), worker()), PacedSink::new(48_000)).unwrap();
    let status = engine.wait_for(Duration::from_secs(5), |s| s.nondeterministic_at.is_some()).unwrap();
    assert_eq!(status.health, Health::Degraded);
    // No endless divergence kills: the count stops.
    play_for(&engine, Duration::from_millis(500));
    let later = engine.status();
    assert!(later.failovers <= 3, "{later:?}");
    assert_eq!(later.failovers, engine.status().failovers);
    assert!(later.active_pid.is_some(), "it plays on the active worker");
    let played = later.counters.frames_played;
    std::thread::sleep(Duration::from_millis(100));
    assert!(engine.status().counters.frames_played > played);
    let report = engine.stop().unwrap();
    assert!(report.nondeterministic_at.is_some());
}

#[test]
fn the_check_tells_good_from_nondeterministic_from_a_forgetful_snapshot() {
    let _rt = rt_lock();
    let setup = Setup { sample_rate: 48_000, block: 256 };
    let events = strikes(48_000);
    let good = check_determinism(&spec(false, false), &worker(), setup, &events, 48_000).unwrap();
    assert!(good.passed(), "{good}");
    let quirky = check_determinism(&spec(true, false), &worker(), setup, &events, 48_000).unwrap();
    assert_eq!(quirky.between_processes, Some(0), "{quirky}");
    let forgetful = check_determinism(&spec(false, true), &worker(), setup, &events, 48_000).unwrap();
    assert_eq!((forgetful.between_processes, forgetful.against_in_process), (None, None), "{forgetful}");
    assert!(forgetful.from_snapshot.is_some(), "an incomplete snapshot must show: {forgetful}");
}
