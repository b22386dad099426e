//! `chronus soak`: a long run with a musical workload over OSC and a fault
//! schedule over every fault kind; samples resources every second; at the
//! end compares the recording with the offline render of the journal and
//! writes a report (JSON, Markdown, SVG).

mod report;
mod resources;
mod svg;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chronus::osc::{Allow, OscServer};
use chronus::supervisor::{Engine, EngineConfig, FaultKind, Health, PacedSink, Target};
use rosc::{OscMessage, OscPacket, OscType, encoder};

use crate::exit::{CANT_CREATE, CHECK_FAILED, DATA_ERR, ExitCodeExt, Failure, OS_ERR, USAGE};
use resources::Sampler;

/// Flags of `chronus soak`.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// How long to play: `90s`, `10m`, `1h`, or seconds.
    #[arg(long, default_value = "10m")]
    duration: String,
    /// Fault kinds: `mixed` (all of them) or one of kill, segv, abort, panic,
    /// exit0, exit1, hang, slow, stop. Alternating active and standby; every
    /// fifth fault is sent from outside with kill(1).
    #[arg(long, default_value = "mixed")]
    faults: String,
    /// Faults per second (`2/s`, `30/m`, or a number per second).
    #[arg(long, default_value = "2/s")]
    rate: String,
    /// Where to write REPORT.json, REPORT.md, the plots, the recording and
    /// the journal.
    #[arg(long, default_value = "soak-report", value_name = "DIR")]
    report_dir: PathBuf,
    /// Voices of the synth.
    #[arg(long, default_value_t = 64)]
    voices: u32,
}

fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s.find(|c: char| c.is_ascii_alphabetic()).map_or((s, ""), |i| s.split_at(i));
    let n: f64 = num.trim().parse().ok().filter(|n: &f64| n.is_finite() && *n > 0.0)?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

fn faults_expected(duration: Duration, rate: f64) -> usize {
    (duration.as_secs_f64() * rate).ceil() as usize
}

fn parse_rate(s: &str) -> Option<f64> {
    let (n, per) = s.split_once('/').unwrap_or((s, "s"));
    let n: f64 = n.trim().parse().ok().filter(|n: &f64| n.is_finite() && *n > 0.0)?;
    Some(match per {
        "s" => n,
        "m" => n / 60.0,
        "h" => n / 3600.0,
        _ => return None,
    })
}

/// Sends the demo score to `to` over OSC in real time, looping, until `stop`.
fn workload(
    to: std::net::SocketAddr,
    spec: &chronus::dsp::DspSpec,
    setup: chronus::dsp::Setup,
    stop: &AtomicBool,
) -> Result<u64, Failure> {
    let sample_rate = setup.sample_rate;
    let (score, length) = super::synth::demo_score(spec, &setup)?;
    let socket = UdpSocket::bind("127.0.0.1:0").or_exit(OS_ERR, "workload socket")?;
    let start = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = (start.elapsed().as_secs_f64() * f64::from(sample_rate)) as u64;
        loop {
            let i = sent as usize;
            let c = &score[i % score.len()];
            if (i / score.len()) as u64 * length + c.frame > now {
                break;
            }
            let Some((address, args)) = spec.table().format(&c.event) else { continue };
            let args = args
                .into_iter()
                .map(|a| match a {
                    chronus::dsp::Arg::Int(i) => OscType::Int(i as i32),
                    chronus::dsp::Arg::Float(f) => OscType::Float(f),
                    chronus::dsp::Arg::Str(s) => OscType::String(s.into()),
                })
                .collect();
            let packet = OscPacket::Message(OscMessage { addr: address.into(), args });
            if let Ok(bytes) = encoder::encode(&packet) {
                let _ = socket.send_to(&bytes, to);
            }
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(sent)
}

fn inflict(engine: &Engine, n: usize, kinds: &[FaultKind]) -> Result<(), String> {
    let kind = kinds[n % kinds.len()];
    let target = if n.is_multiple_of(2) { Target::Active } else { Target::Standby };
    if n % 5 == 4 {
        // From outside, as an operator or the OOM killer would.
        let status = engine.status();
        let pid = if target == Target::Active { status.active_pid } else { status.standby_pid };
        let pid = pid.ok_or("no worker to kill")?;
        let (signal, kind) =
            if kind == FaultKind::Stop { ("-STOP", kind) } else { ("-KILL", FaultKind::Kill) };
        engine.expect_fault(pid, kind);
        let ok = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        return if ok { Ok(()) } else { Err(format!("kill {signal} {pid} failed")) };
    }
    engine.inject(target, kind).map(|_| ()).map_err(|e| e.to_string())
}

/// Runs `chronus soak`.
pub fn run(args: SoakArgs) -> Result<(), Failure> {
    let duration =
        parse_duration(&args.duration).ok_or_else(|| Failure::new(USAGE, "--duration: e.g. 90s, 10m, 1h"))?;
    let rate = parse_rate(&args.rate).ok_or_else(|| Failure::new(USAGE, "--rate: e.g. 2/s, 30/m"))?;
    let kinds = if args.faults == "mixed" {
        FaultKind::ALL.to_vec()
    } else {
        vec![
            FaultKind::from_name(&args.faults)
                .ok_or_else(|| Failure::new(USAGE, format!("unknown fault '{}'", args.faults)))?,
        ]
    };
    let dir = args.report_dir;
    std::fs::create_dir_all(&dir).or_exit(CANT_CREATE, dir.display())?;
    let worker =
        chronus::worker::WorkerCommand::current_exe().or_exit(OS_ERR, "cannot find the chronus binary")?;
    let mut cfg = EngineConfig::new(super::synth::spec(args.voices)?, worker);
    cfg.faults_enabled = true;
    cfg.record_path = Some(dir.join("played.wav"));
    cfg.journal_path = Some(dir.join("run.journal"));
    cfg.journal_in_memory = false;
    let sample_rate = cfg.sample_rate;
    let (spec, setup) = (cfg.dsp.clone(), cfg.setup());
    let engine =
        Arc::new(Engine::start(cfg, PacedSink::new(sample_rate)).or_exit(OS_ERR, "cannot start the engine")?);
    let server = OscServer::start("127.0.0.1:0", engine.clone(), Allow::all()).or_exit(OS_ERR, "OSC")?;
    let osc_addr = server.local_addr();

    let bar = indicatif::ProgressBar::new(duration.as_secs().max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} soak {elapsed}/{msg} [{bar:30}] faults {prefix}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("{}s", duration.as_secs()));
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let mut sampler = Sampler::default();
    // Sized up front: the harness's own memory is part of what it measures.
    let mut samples = Vec::with_capacity(duration.as_secs() as usize + 16);
    let mut timeline: Vec<(f64, String)> = Vec::with_capacity(4 * faults_expected(duration, rate) + 16);
    let (mut faults, mut deferred, mut fault_errors) = (0usize, 0u64, Vec::new());
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut next_fault = started + Duration::from_secs(2);
    let mut next_sample = started;
    let mut awaiting: Option<(u64, Instant)> = None;
    std::thread::scope(|s| {
        let workload = s.spawn(|| workload(osc_addr, &spec, setup, &stop));
        while started.elapsed() < duration {
            let now = Instant::now();
            let status = engine.status();
            let health = status.health.to_string();
            if timeline.last().is_none_or(|(_, h)| *h != health) {
                timeline.push((started.elapsed().as_secs_f64(), health.clone()));
            }
            if now >= next_sample {
                samples.push(sampler.sample(started.elapsed().as_secs_f64(), health));
                next_sample += Duration::from_secs(1);
                bar.set_position(started.elapsed().as_secs());
            }
            // One fault at a time: the next waits until the engine has
            // noticed the last one (a hung worker still looks healthy until
            // the watchdog sees it) and has a verified standby again.
            if let Some((noticed_by, deadline)) = awaiting {
                if status.failovers >= noticed_by {
                    awaiting = None;
                } else if now > deadline {
                    fault_errors.push(format!("fault {faults} was not noticed within 10 s"));
                    awaiting = None;
                }
            }
            if awaiting.is_none() && now >= next_fault {
                if status.health == Health::Healthy {
                    match inflict(&engine, faults, &kinds) {
                        Ok(()) => {
                            faults += 1;
                            awaiting = Some((status.failovers + 1, now + Duration::from_secs(10)));
                        }
                        Err(e) => fault_errors.push(e),
                    }
                    bar.set_prefix(faults.to_string());
                    next_fault = (next_fault + period).max(now);
                } else {
                    deferred += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Let the last fault be noticed and recovered from before stopping.
        if let Some((noticed_by, _)) = awaiting
            && engine.wait_for(Duration::from_secs(10), |s| s.failovers >= noticed_by).is_err()
        {
            fault_errors.push(format!("fault {faults} was not noticed within 10 s"));
        }
        let _ = engine.wait_for(Duration::from_secs(10), |s| s.health == Health::Healthy);
        samples.push(sampler.sample(started.elapsed().as_secs_f64(), engine.status().health.to_string()));
        stop.store(true, Ordering::Relaxed);
        workload.join().map_err(|_| Failure::new(OS_ERR, "the workload thread panicked"))??;
        Ok::<(), Failure>(())
    })?;
    bar.finish_and_clear();
    let osc_errors = server.stats().errors.load(Ordering::Relaxed);
    server.stop();
    engine.fade_out();
    let engine = Arc::try_unwrap(engine).map_err(|_| Failure::new(OS_ERR, "engine still in use"))?;
    let mut run = engine.stop().or_exit(CANT_CREATE, "stopping")?;
    // Nothing of the engine may be left: every worker is gone and reaped (a
    // leaked or unreaped worker would still be a child of this process).
    std::thread::sleep(Duration::from_millis(100));
    let leftovers = resources::children();
    let (_, left, right) = chronus::audio::read_wav(&dir.join("played.wav"))
        .or_exit(CANT_CREATE, "reading the recording back")?;
    (run.left, run.right) = (left, right);
    let journal =
        std::fs::read_to_string(dir.join("run.journal")).or_exit(CANT_CREATE, "reading the journal back")?;
    let (journal, _) = chronus::journal::Journal::parse(&journal, super::synth::spec_for_journal)
        .or_exit(DATA_ERR, "the journal the run wrote")?;
    run.events = journal.events;
    run.notes = journal.notes;
    let input = report::Inputs {
        run: &run,
        samples: &samples,
        timeline: &timeline,
        faults,
        deferred,
        fault_errors: &fault_errors,
        leftovers: &leftovers,
        osc_errors,
        duration,
        rate,
    };
    let verdict = report::write(&dir, &input).or_exit(CANT_CREATE, dir.display())?;
    println!("{} — report in {}", verdict.line, dir.display());
    if verdict.pass { Ok(()) } else { Err(Failure::new(CHECK_FAILED, verdict.line)) }
}
