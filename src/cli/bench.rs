//! `chronus bench failover`: run the engine, inflict faults, report the
//! failover latencies, lost frames and the bit-exact verdict.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chronus::harness::{FailoverSummary, play_looped};
use chronus::supervisor::{Engine, EngineConfig, FaultKind, Health, PacedSink, Target};

use crate::exit::{CANT_CREATE, CHECK_FAILED, ExitCodeExt, Failure, OS_ERR, USAGE};

/// `chronus bench …`
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchCmd,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCmd {
    /// Inflict worker faults while playing; report detection, switch,
    /// respawn and rejoin times, lost frames and the bit-exact verdict.
    Failover(FailoverArgs),
}

/// Flags of `chronus bench failover`.
#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// Number of faults to inflict.
    #[arg(long, default_value_t = 50)]
    kills: u32,
    /// Fault kind: kill, segv, abort, panic, exit0, exit1, hang, slow, stop,
    /// syscall (a call the workers' sandbox forbids), or mixed (all of them
    /// in turn). Faults alternate between the active and the standby.
    /// `kill` and `stop` are sent from outside (as kill(1) would); the
    /// others the worker inflicts on itself.
    #[arg(long, default_value = "mixed")]
    fault: String,
    /// Pause between a recovery and the next fault, in milliseconds.
    #[arg(long, default_value_t = 50)]
    interval_ms: u64,
    /// Voices of the synth (all playing the demo score).
    #[arg(long, default_value_t = 64)]
    voices: u32,
    /// Frames per output period.
    #[arg(long, default_value_t = 256)]
    block: u32,
    /// Replicas in lockstep: 2 (an active and a standby), or 3, where a
    /// replica that disagrees with the two others is outvoted, the active
    /// too (replicas + spares ≤ 8).
    #[arg(long, default_value_t = 2)]
    replicas: u32,
    /// Spare workers kept ready (0: every replacement is spawned after the
    /// fault, as before spares existed).
    #[arg(long, default_value_t = 1)]
    spares: u32,
    #[command(flatten)]
    latency: super::latency::LatencyArgs,
    /// Write the figures as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the figures as Markdown.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
}

fn kinds(fault: &str) -> Result<Vec<FaultKind>, Failure> {
    if fault == "mixed" {
        return Ok(FaultKind::ALL.to_vec());
    }
    FaultKind::from_name(fault).map(|k| vec![k]).ok_or_else(|| {
        let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
        Failure::new(USAGE, format!("unknown fault '{fault}' (known: {}, mixed)", names.join(", ")))
    })
}

fn inflict(
    engine: &Engine,
    target: Target,
    kind: FaultKind,
) -> Result<u32, chronus::supervisor::EngineError> {
    match kind {
        FaultKind::Kill => engine.signal(target, libc::SIGKILL),
        FaultKind::Stop => engine.signal(target, libc::SIGSTOP),
        _ => engine.inject(target, kind),
    }
}

/// Runs `chronus bench …`.
pub fn run(args: BenchArgs) -> Result<(), Failure> {
    let BenchCmd::Failover(args) = args.what;
    let kinds = kinds(&args.fault)?;
    let worker =
        chronus::worker::WorkerCommand::current_exe().or_exit(OS_ERR, "cannot find the chronus binary")?;
    let mut cfg = EngineConfig::new(super::synth::spec(args.voices)?, worker);
    cfg.block = args.block;
    cfg.spares = args.spares;
    cfg.replicas = args.replicas;
    args.latency.apply(&mut cfg);
    cfg.validate().or_exit(USAGE, "bad settings")?;
    cfg.faults_enabled = true;
    cfg.protect_supervisor = true;
    cfg.record_in_memory = true;
    let sample_rate = cfg.sample_rate;
    let (score, loop_frames) = super::synth::demo_score(&cfg.dsp, &cfg.setup())?;
    println!(
        "bench failover: {} Hz, block {}, {}",
        sample_rate,
        cfg.block,
        super::latency::describe(cfg.latency)
    );
    let engine =
        Engine::start(cfg, PacedSink::new(sample_rate)).or_exit(OS_ERR, "cannot start the engine")?;

    let bar = indicatif::ProgressBar::new(u64::from(args.kills));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} faults {pos}/{len} [{bar:30}] {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let stop = AtomicBool::new(false);
    let mut floor = Vec::with_capacity(args.kills as usize);
    let mut floor_error = None;
    let outcome = std::thread::scope(|s| {
        s.spawn(|| play_looped(&engine, &score, loop_frames, &stop));
        let result = (|| {
            // Redundant: a verified standby and, when spares are kept, one ready.
            let spares = args.spares;
            let healthy = |st: &chronus::supervisor::Status| {
                st.health == Health::Healthy && (spares == 0 || st.spares_ready > 0)
            };
            engine
                .wait_for(Duration::from_secs(5), healthy)
                .map_err(|st| format!("never healthy: {st:?}"))?;
            for n in 0..args.kills as usize {
                let kind = kinds[n % kinds.len()];
                // Each kind on the active and the standby in turn, whatever
                // the number of kinds.
                // (Kind k's r-th fault: on the active when k + r is even.)
                let on_active = (n % kinds.len() + n / kinds.len()).is_multiple_of(2);
                let target = if on_active { Target::Active } else { Target::Standby };
                std::thread::sleep(Duration::from_millis(args.interval_ms));
                // The kernel's floor, one sample per fault, in the same run.
                match chronus::harness::kill_floor::sample() {
                    Ok(us) => floor.push(us),
                    Err(e) => floor_error = Some(e),
                }
                inflict(&engine, target, kind).map_err(|e| format!("fault {}: {e}", n + 1))?;
                bar.set_message(format!("{kind} on the {}", if on_active { "active" } else { "standby" }));
                engine
                    .wait_for(Duration::from_secs(10), |st| st.failovers > n as u64)
                    .map_err(|st| format!("fault {} ({kind}) was not noticed: {st:?}", n + 1))?;
                engine
                    .wait_for(Duration::from_secs(30), healthy)
                    .map_err(|st| format!("no verified standby after fault {}: {st:?}", n + 1))?;
                bar.inc(1);
            }
            std::thread::sleep(Duration::from_millis(200));
            Ok::<(), String>(())
        })();
        stop.store(true, Ordering::Relaxed);
        result
    });
    bar.finish_and_clear();
    let report = engine.stop().or_exit(OS_ERR, "engine shutdown")?;
    outcome.map_err(|e| Failure::new(CHECK_FAILED, e))?;
    let mut summary = FailoverSummary::of(&report);
    if let Some(e) = floor_error {
        eprintln!("bench failover: the kernel's floor was not measured for every fault: {e}");
    }
    if !floor.is_empty() {
        summary.kill_floor_us = Some(chronus::supervisor::Percentiles::of(&floor));
    }
    print_summary(&summary);
    if let Some(path) = &args.json {
        std::fs::write(path, summary.to_json()).or_exit(CANT_CREATE, path.display())?;
    }
    if let Some(path) = &args.markdown {
        let md = format!(
            "# chronus bench failover\n\n`chronus bench failover --kills {} --fault {}`\n\n{}\n{}\n",
            args.kills,
            args.fault,
            verdict_line(&summary),
            summary.markdown_table()
        );
        let md = match summary.divergence_note() {
            Some(n) => format!("{md}\n{n}.\n"),
            None => md,
        };
        let md = match summary.detection_over_floor() {
            Some(r) => format!("{md}\nCrash detection p50 = {r:.2} × the kernel's floor (kill → pidfd).\n"),
            None => md,
        };
        std::fs::write(path, md).or_exit(CANT_CREATE, path.display())?;
    }
    if !summary.passed() {
        return Err(Failure::new(CHECK_FAILED, verdict_line(&summary)));
    }
    Ok(())
}

fn verdict_line(s: &FailoverSummary) -> String {
    let note = s.stall_note().map(|n| format!(" — {n}")).unwrap_or_default();
    format!(
        "{} faults ({}), {:.1} s played: lost frames {}, underruns {}, bit-exact {}, replacements not joined {}{note}",
        s.faults,
        s.fault_kinds.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
        s.seconds_played,
        s.lost_frames,
        s.underruns,
        if s.bit_exact { "yes" } else { "NO" },
        s.unjoined
    )
}

fn print_summary(s: &FailoverSummary) {
    println!("{}", verdict_line(s));
    if !s.sandbox_kills.is_empty() {
        let calls: Vec<String> = s.sandbox_kills.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("workers the sandbox killed (SIGSYS), by forbidden call: {}", calls.join(", "));
    }
    println!(
        "{:<12} {:<10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "faults", "µs", "min", "p50", "p95", "p99", "max"
    );
    for (class, phase, p) in s.rows() {
        println!(
            "{class:<12} {phase:<10} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
            p.min, p.p50, p.p95, p.p99, p.max
        );
    }
    println!(
        "(detection: fault → noticed; switch: → active flipped; respawn: → replacement ready; rejoin: → verified lockstep)"
    );
    if let Some(note) = s.divergence_note() {
        println!("{note}");
    }
    if let Some(ratio) = s.detection_over_floor() {
        println!(
            "crash detection p50 = {ratio:.2} × the kernel's floor (kill → pidfd of an idle `sleep`, measured before each fault)"
        );
    }
}
