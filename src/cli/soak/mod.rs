//! `chronus soak`: a long run with a musical workload over OSC and a fault
//! schedule over every fault kind; samples resources every second; at the
//! end compares the recording with the offline render of the journal and
//! writes a report (JSON, Markdown, SVG).

mod actions;
mod noise;
mod report;
mod resources;
mod svg;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chronus::osc::{Allow, OscServer};
use chronus::supervisor::{Engine, EngineConfig, Health, PacedSink};
use rosc::{OscMessage, OscPacket, OscType, encoder};

use crate::exit::{CANT_CREATE, CHECK_FAILED, DATA_ERR, ExitCodeExt, Failure, OS_ERR, USAGE};
use actions::Action;
use resources::Sampler;

/// Flags of `chronus soak`.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// How long to play: `90s`, `10m`, `1h`, or seconds.
    #[arg(long, default_value = "10m")]
    duration: String,
    /// Fault kinds: `mixed` (all of them), `single` (every one-worker fault
    /// below, no common-mode fault) or one of kill, segv, abort, panic,
    /// exit0, exit1, hang, slow, stop, syscall (one worker's fault:
    /// alternating active and standby; every fifth sent from outside with
    /// kill(1); `syscall`: a call the sandbox forbids), double-kill (both
    /// replicas in one kill -9), poison-crash, poison-hang, poison-syscall
    /// (a /test/poison every replica dies, hangs, or makes a forbidden call
    /// on; it must be cut out), flood (5,000 commands at once: not a fault,
    /// no failover).
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
    #[command(flatten)]
    latency: super::latency::LatencyArgs,
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

/// Runs `chronus soak`.
pub fn run(args: SoakArgs) -> Result<(), Failure> {
    let duration =
        parse_duration(&args.duration).ok_or_else(|| Failure::new(USAGE, "--duration: e.g. 90s, 10m, 1h"))?;
    let rate = parse_rate(&args.rate).ok_or_else(|| Failure::new(USAGE, "--rate: e.g. 2/s, 30/m"))?;
    let kinds = if args.faults == "mixed" {
        Action::all()
    } else if args.faults == "single" {
        Action::single()
    } else {
        vec![
            Action::from_name(&args.faults)
                .ok_or_else(|| Failure::new(USAGE, format!("unknown fault '{}'", args.faults)))?,
        ]
    };
    let dir = args.report_dir;
    std::fs::create_dir_all(&dir).or_exit(CANT_CREATE, dir.display())?;
    let worker =
        chronus::worker::WorkerCommand::current_exe().or_exit(OS_ERR, "cannot find the chronus binary")?;
    let mut cfg = EngineConfig::new(super::synth::spec(args.voices)?, worker);
    args.latency.apply(&mut cfg);
    cfg.validate().or_exit(USAGE, "bad settings")?;
    cfg.faults_enabled = true;
    cfg.protect_supervisor = true;
    cfg.record_path = Some(dir.join("played.wav"));
    cfg.journal_path = Some(dir.join("run.journal"));
    cfg.journal_in_memory = false;
    let sample_rate = cfg.sample_rate;
    let hang_timeout = cfg.hang_timeout;
    let in_cycle = cfg.latency.budget().is_some();
    let (spec, setup) = (cfg.dsp.clone(), cfg.setup());
    let engine =
        Arc::new(Engine::start(cfg, PacedSink::new(sample_rate)).or_exit(OS_ERR, "cannot start the engine")?);
    let files = Box::new(chronus::osc::Bundled(&super::synth::BUNDLED_PATCHES));
    let server =
        OscServer::start("127.0.0.1:0", engine.clone(), Allow::loopback(), files).or_exit(OS_ERR, "OSC")?;
    let osc_addr = server.local_addr();
    // Poisons and floods come from a client of their own, which hears the
    // engine's replies.
    let client = UdpSocket::bind("127.0.0.1:0").or_exit(OS_ERR, "soak client socket")?;
    client.set_nonblocking(true).or_exit(OS_ERR, "soak client socket")?;

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
    // The kernel's floor for crash detection, one sample before each fault,
    // in the same run (as `bench failover` does).
    let mut floor = Vec::with_capacity(faults_expected(duration, rate) + 16);
    let mut tally = report::Tally::default();
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut next_fault = started + Duration::from_secs(2);
    let mut next_sample = started;
    // Waiting for the last fault's effect: failovers and cuts to reach
    // these counts, by a deadline.
    let mut awaiting: Option<(u64, u64, Instant)> = None;
    let probe = noise::Probe::start(started, duration).or_exit(OS_ERR, "the noise probe thread")?;
    std::thread::scope(|s| {
        let workload = s.spawn(|| workload(osc_addr, &spec, setup, &stop));
        while started.elapsed() < duration {
            let now = Instant::now();
            let status = engine.status();
            let health = status.health.to_string();
            if timeline.last().is_none_or(|(_, h)| *h != health) {
                timeline.push((started.elapsed().as_secs_f64(), health.clone()));
            }
            // Drained as they come: a socket's queue holds only ~200 replies.
            tally.cut_replies += actions::cut_replies(&client);
            if now >= next_sample {
                samples.push(sampler.sample(started.elapsed().as_secs_f64(), health));
                next_sample += Duration::from_secs(1);
                bar.set_position(started.elapsed().as_secs());
            }
            // One fault at a time: the next waits until the engine has
            // noticed the last one (a hung worker still looks healthy until
            // the watchdog sees it) and has a verified standby again.
            if let Some((failovers, cuts, deadline)) = awaiting {
                if status.failovers >= failovers && status.counters.excised_commands >= cuts {
                    awaiting = None;
                } else if now > deadline {
                    fault_errors.push(format!("fault {faults} was not noticed within 10 s"));
                    awaiting = None;
                }
            }
            if awaiting.is_none() && now >= next_fault {
                // Redundant again: a verified standby, nobody joining, a
                // spare ready. (Not HEALTHY: that reads DEGRADED for 10 s
                // after frames lost to a hang poison.)
                let redundant = status.standby_pid.is_some()
                    && status.joining_pid.is_none()
                    && status.spares_ready > 0
                    && !status.backing_off
                    && !status.quarantined;
                if redundant {
                    let action = kinds[faults % kinds.len()];
                    let round = faults / kinds.len();
                    if let Ok(us) = chronus::harness::kill_floor::sample() {
                        floor.push(us);
                    }
                    match actions::inflict(&engine, faults, round, action, &client, osc_addr) {
                        Ok(()) => {
                            faults += 1;
                            tally.add(action);
                            let cuts = status.counters.excised_commands + u64::from(action.cuts());
                            let failovers = status.failovers + action.failovers();
                            awaiting = Some((failovers, cuts, now + Duration::from_secs(10)));
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
        if let Some((failovers, cuts, _)) = awaiting
            && engine
                .wait_for(Duration::from_secs(10), |s| {
                    s.failovers >= failovers && s.counters.excised_commands >= cuts
                })
                .is_err()
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
    let noise = probe.finish();
    std::thread::sleep(Duration::from_millis(50));
    tally.cut_replies += actions::cut_replies(&client);
    let final_status = engine.status();
    tally.cuts = final_status.counters.excised_commands;
    tally.overloads = final_status.counters.overloads;
    let osc_errors = server.stats().errors.load(Ordering::Relaxed);
    server.stop();
    engine.fade_out();
    let engine = Arc::try_unwrap(engine).map_err(|_| Failure::new(OS_ERR, "engine still in use"))?;
    let mut run = engine.stop().or_exit(CANT_CREATE, "stopping")?;
    // Nothing of the engine may be left: every worker is gone and reaped (a
    // leaked or unreaped worker would still be a child of this process).
    std::thread::sleep(Duration::from_millis(100));
    let leftovers = resources::children();
    // The verdict streams the recording and the journal from disk: a run
    // of any length is checked in constant memory.
    let check = chronus::harness::verify_files(
        &dir.join("run.journal"),
        &dir.join("played.wav"),
        super::synth::spec_for_journal,
        true,
    )
    .or_exit(DATA_ERR, "checking the recording against the journal")?;
    run.notes = check.notes;
    // A hang poison may cost up to its detection: two hang timeouts.
    let hang_detection = 2 * hang_timeout.as_nanos() as u64 * u64::from(sample_rate) / 1_000_000_000;
    let hang_poisons: Vec<u64> = check
        .cut
        .iter()
        .filter(|e| e.event.address == chronus::dsp::POISON && e.event.choice(0) == 1)
        .map(|e| e.frame)
        .collect();
    let input = report::Inputs {
        run: &run,
        first_difference: check.first_difference,
        hang_poisons: &hang_poisons,
        hang_detection,
        samples: &samples,
        timeline: &timeline,
        faults,
        deferred,
        fault_errors: &fault_errors,
        leftovers: &leftovers,
        osc_errors,
        duration,
        rate,
        tally: &tally,
        noise: &noise,
        kill_floor_us: (!floor.is_empty()).then(|| chronus::supervisor::Percentiles::of(&floor)),
        in_cycle,
    };
    let verdict = report::write(&dir, &input).or_exit(CANT_CREATE, dir.display())?;
    println!("{} — report in {}", verdict.line, dir.display());
    if verdict.pass { Ok(()) } else { Err(Failure::new(CHECK_FAILED, verdict.line)) }
}
