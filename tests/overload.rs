//! Overload is not a fault: a DSP that needs more time than real time
//! allows, in every replica at once, is the workload's doing. Nobody is
//! killed; the engine says OVERLOADED, counts it, and recovers by itself
//! when the load goes. Real worker processes (this test binary, through
//! `worker_test_entry!`), real time.

use std::time::{Duration, Instant};

use chronus::dsp::{AddressSpec, Arg, ArgSpec, Block, Dsp, DspError, DspSpec, Piece, Setup};
use chronus::journal::render_offline;
use chronus::supervisor::{Engine, EngineConfig, Health, PacedSink};
use chronus::worker::WorkerCommand;

/// A tone that takes `load` block periods of CPU time per block (a busy
/// wait after rendering: the audio does not depend on it).
struct Burner {
    phase: f32,
    step: f32,
    load: f32,
    period: Duration,
}

impl Dsp for Burner {
    type Config = ();
    const NAME: &'static str = "test-burner/1";

    fn addresses(_: &()) -> Vec<AddressSpec> {
        vec![AddressSpec::new(
            "/load",
            vec![ArgSpec::float("periods", (0.0, 4.0), "block periods")],
            "CPU time each block takes",
        )]
    }

    fn prepare(setup: &Setup, _: &()) -> Result<Self, DspError> {
        let period = Duration::from_secs_f64(f64::from(setup.block) / f64::from(setup.sample_rate));
        Ok(Self { phase: 0.0, step: 330.0 / setup.sample_rate as f32, load: 0.0, period })
    }

    fn snapshot_len(&self) -> usize {
        8
    }

    fn render(&mut self, block: Block<'_>) {
        let started = Instant::now();
        block.split(|piece| match piece {
            Piece::Event(e) => self.load = e.float(0),
            Piece::Audio { left, right, .. } => {
                for (l, r) in left.iter_mut().zip(right.iter_mut()) {
                    self.phase = (self.phase + self.step).fract();
                    *l = (self.phase * std::f32::consts::TAU).sin() * 0.2;
                    *r = *l;
                }
            }
        });
        let burn = self.period.mul_f32(self.load);
        while started.elapsed() < burn {
            std::hint::spin_loop();
        }
    }

    fn snapshot(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.phase.to_le_bytes());
        out[4..8].copy_from_slice(&self.load.to_le_bytes());
    }

    fn restore(&mut self, b: &[u8]) -> Result<(), DspError> {
        let word = |i: usize| f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        (self.phase, self.load) = (word(0), word(4));
        Ok(())
    }

    fn reset(&mut self) {
        (self.phase, self.load) = (0.0, 0.0);
    }
}

chronus::worker::worker_test_entry!(burner_worker, Burner);

#[test]
fn every_replica_over_budget_is_overload_not_a_fault_and_passes() {
    let _rt = crate::util::rt_lock();
    let spec = DspSpec::new::<Burner>(()).unwrap();
    let mut cfg = EngineConfig::new(spec, WorkerCommand::current_test("overload::burner_worker").unwrap());
    cfg.record_in_memory = true;
    // Fair scheduling: two replicas burning a CPU each must not starve the
    // test on a two-core machine.
    cfg.realtime = false;
    let engine = Engine::start(cfg, PacedSink::new(48_000)).unwrap();
    engine.wait_for(Duration::from_secs(5), |s| s.health == Health::Healthy).unwrap();
    // 30% over real time, in every replica: far over the slow budget (one
    // block period), two blocks in a row, for a second.
    engine.send_message("/load", &[Arg::Float(1.3)], None).unwrap();
    let overloaded = engine.wait_for(Duration::from_secs(3), |s| s.health == Health::Overloaded);
    let overloaded = overloaded.unwrap_or_else(|s| panic!("never reported OVERLOADED: {s:?}"));
    assert!(overloaded.overloaded);
    std::thread::sleep(Duration::from_secs(1));
    engine.send_message("/load", &[Arg::Float(0.1)], None).unwrap();
    let recovered = engine.wait_for(Duration::from_secs(5), |s| !s.overloaded && s.standby_pid.is_some());
    let recovered = recovered.unwrap_or_else(|s| panic!("did not recover: {s:?}"));
    std::thread::sleep(Duration::from_millis(300));
    let report = engine.stop().unwrap();
    assert!(report.failovers.is_empty(), "a replica was killed for the workload: {:#?}", report.failovers);
    assert!(recovered.counters.overloads >= 1);
    assert_eq!(recovered.failovers, 0);
    // Audio the machine could not render in time is lost and says so
    // (journaled gaps), but what was played is the journal's render.
    let as_played = render_offline(
        &report.spec,
        report.setup,
        &report.events,
        &report.notes,
        report.counters.frames_played,
        true,
    )
    .unwrap();
    assert_eq!(crate::util::first_difference(&as_played.left, &report.left), None);
    eprintln!(
        "overloaded {} time(s); {} frames lost to it, journaled",
        recovered.counters.overloads,
        report.lost_frames()
    );
}
