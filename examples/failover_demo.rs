//! Embed the whole failover engine, carrying the built-in synth.
//!
//! Starts Chronus with two DSP worker processes (this very program,
//! re-executed: `init` below turns those into workers), plays a chord
//! through the paced (no sound card) sink, SIGKILLs the active worker
//! halfway, and shows that nothing was lost: the recording is bit-identical
//! to an offline render of the same events.
//!
//! Run: `cargo run --release --example failover_demo`.

use std::time::Duration;

use chronus::dsp::DspSpec;
use chronus::harness::FailoverSummary;
use chronus::supervisor::{Engine, EngineConfig, Health, PacedSink, Target};
use chronus::synth::{Command, Param, Synth, SynthConfig};
use chronus::worker::WorkerCommand;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // When the engine runs this program as a worker, this never returns.
    chronus::worker::init::<Synth>();

    let dsp = DspSpec::new::<Synth>(SynthConfig::new(64))?;
    let mut config = EngineConfig::new(dsp, WorkerCommand::current_exe()?);
    config.record_in_memory = true;
    let engine = Engine::start(config, PacedSink::new(48_000))?;
    engine.wait_for(Duration::from_secs(5), |s| s.health == Health::Healthy).map_err(|s| format!("{s:?}"))?;

    engine.send(Command::Set { param: Param::Release, value: 0.5 }.into())?;
    for (voice, freq) in [(0, 220.0), (1, 277.18), (2, 329.63)] {
        engine.send(Command::NoteOn { voice, freq, amp: 0.3 }.into())?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = engine.signal(Target::Active, libc::SIGKILL)?;
    println!("killed the active worker (pid {pid})");
    for voice in 0..3 {
        engine.send(Command::VoiceSet { voice, param: Param::Cutoff, value: 800.0 }.into())?;
    }
    std::thread::sleep(Duration::from_millis(500));
    println!("status: {:?}", engine.status());
    engine.fade_out();

    let report = engine.stop()?;
    let summary = FailoverSummary::of(&report);
    println!(
        "{} fault(s), lost frames {}, bit-exact {}, switch {:.0} µs, back in lockstep after {:.1} ms",
        summary.faults,
        summary.lost_frames,
        summary.bit_exact,
        summary.switch_us.max,
        summary.rejoin_us.max / 1_000.0
    );
    Ok(())
}
