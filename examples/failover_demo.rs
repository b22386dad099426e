//! Embed the whole failover engine in your own program.
//!
//! Starts Chronus with two DSP worker processes, plays a chord through the
//! paced (no sound card) sink, SIGKILLs the active worker halfway, and shows
//! that nothing was lost: the recording is bit-identical to an offline render
//! of the same commands.
//!
//! Workers are processes of the `chronus` binary, so build it first:
//! `cargo build --release && cargo run --release --example failover_demo`.

use std::time::Duration;

use chronus::dsp::{Command, Param};
use chronus::supervisor::{Engine, EngineConfig, FailoverSummary, Health, PacedSink, Target};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?.parent().and_then(|p| p.parent()).map(|p| p.join("chronus"));
    let exe = exe.filter(|p| p.exists()).ok_or("build the chronus binary first: cargo build --release")?;
    let mut config = EngineConfig::new(exe);
    config.record_in_memory = true;
    let engine = Engine::start(config, PacedSink::new(48_000))?;
    engine.wait_for(Duration::from_secs(5), |s| s.health == Health::Healthy).map_err(|s| format!("{s:?}"))?;

    engine.send(Command::Set { param: Param::Release, value: 0.5 })?;
    for (voice, freq) in [(0, 220.0), (1, 277.18), (2, 329.63)] {
        engine.send(Command::NoteOn { voice, freq, amp: 0.3 })?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = engine.signal(Target::Active, libc::SIGKILL)?;
    println!("killed the active worker (pid {pid})");
    for voice in 0..3 {
        engine.send(Command::VoiceSet { voice, param: Param::Cutoff, value: 800.0 })?;
    }
    std::thread::sleep(Duration::from_millis(500));
    println!("status: {:?}", engine.status());

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
