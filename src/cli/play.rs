//! `chronus play`: run the engine, controlled over OSC.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chronus::dsp::Setup;
use chronus::harness::{FailoverSummary, play_looped};
use chronus::osc::{Allow, Bundled, OscError, OscListener, PatchDir};
use chronus::supervisor::{Engine, EngineConfig, Health, PacedSink, Target};
use chronus::worker::WorkerCommand;

use crate::exit::{
    CANT_CREATE, EXPOSED, ExitCodeExt, Failure, LEASE_HELD, NO_DEVICE, NO_INPUT, OS_ERR, QUARANTINED, USAGE,
};

/// Flags of `chronus play`.
#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    /// Play the built-in demo piece; halfway, kill the active worker and
    /// show that nothing was lost.
    #[arg(long)]
    demo: bool,
    /// Stop after this many seconds (default: the demo's length with --demo,
    /// else run until /quit, Ctrl-C or SIGTERM).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Output: `auto` (the sound card when there is a usable one, else the
    /// null sink), `device` (the sound card or fail), `jack` (a native JACK
    /// client: see --jack-name, --jack-connect, --midi), or `null` (a paced
    /// sink that keeps real time without a device).
    #[arg(long, default_value = "auto", value_parser = ["auto", "device", "jack", "null"])]
    sink: String,
    /// The output device (see --list-devices); default: the system's default.
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
    /// List the output devices and exit.
    #[arg(long)]
    list_devices: bool,
    /// Record exactly what was played to this WAV file (32-bit float stereo).
    #[arg(long, value_name = "FILE.wav")]
    record: Option<PathBuf>,
    /// Write the stamped command journal here; `chronus render --journal`
    /// of it reproduces the recording bit for bit.
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Voices, 1..=4096.
    #[arg(long, default_value_t = 64)]
    voices: u32,
    /// The patch to start with: a patch file (docs/patches.md) or a
    /// preset's name (bass, lead, organ, pad). Without it, the plain voice.
    #[arg(long, value_name = "FILE|PRESET")]
    patch: Option<String>,
    /// Frames per block (the workers' grid; the period of the null sink).
    #[arg(long, default_value_t = 256)]
    block: u32,
    /// Blocks the workers render ahead of what the output needs next
    /// (slack against scheduling delays, paid in latency). Default: 2; 0
    /// with --sink jack, where the workers render each period while the one
    /// before plays and a command sounds 1.5 periods after it arrives.
    #[arg(long, value_name = "BLOCKS")]
    lead: Option<u32>,
    #[command(flatten)]
    latency: super::latency::LatencyArgs,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 48_000)]
    sample_rate: u32,
    /// OSC address to listen on (loopback unless you name another; beyond
    /// loopback, --allow must name who may send).
    #[arg(long, default_value = chronus::osc::DEFAULT_ADDR, value_name = "ADDR:PORT")]
    osc: String,
    /// Accept OSC from these networks too (repeatable), e.g.
    /// 192.168.1.0/24; loopback is always accepted. 0.0.0.0/0 accepts every
    /// host (a warning says so).
    #[arg(long, value_name = "CIDR")]
    allow: Vec<String>,
    /// The directory `/patch/load` reads patch files (*.toml) from, for
    /// every sender: nothing outside it, no link out of it. Default: only
    /// the bundled presets (bass.toml, lead.toml, organ.toml, pad.toml).
    #[arg(long, value_name = "DIR")]
    patch_dir: Option<PathBuf>,
    /// Spare workers kept spawned, prepared and idle, so a replacement
    /// starts with no spawn on the critical path (replicas + spares ≤ 8).
    #[arg(long, default_value_t = 1, value_name = "N")]
    spares: u32,
    /// Allow fault injection (tests and demos; also `/test/poison`).
    #[arg(long)]
    faults: bool,
    /// First wait before retrying a worker restart that failed twice; it
    /// doubles with each further failure, up to 8 s.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    backoff: f64,
    /// Stop restarting workers after this many failed restarts in a row.
    #[arg(long, default_value_t = 6, value_name = "N")]
    quarantine_after: u32,
    /// Exit with code 78 when the engine quarantines its workers (repeated
    /// failed restarts) instead of playing on with the survivor.
    #[arg(long)]
    exit_on_quarantine: bool,
    /// Instance name: one supervisor per name may run (a kernel-held lock,
    /// released when the holder dies).
    #[arg(long, default_value = "chronus")]
    name: String,
    #[cfg(feature = "jack")]
    #[command(flatten)]
    jack: super::jack::JackArgs,
}

/// Where the audio goes.
enum Output {
    #[cfg(feature = "device")]
    Device(chronus::audio::ChosenDevice),
    #[cfg(feature = "jack")]
    Jack(chronus::audio::JackServer, chronus::audio::JackConfig),
    Null,
}

/// Validated settings of a play run.
struct PlayConfig {
    name: String,
    exit_on_quarantine: bool,
    engine: EngineConfig,
    output: Output,
    demo: bool,
    duration: Option<Duration>,
    osc: String,
    allow: Allow,
    files: Box<dyn chronus::dsp::Files>,
    patch: Vec<chronus::dsp::Event>,
}

impl PlayArgs {
    fn validate(self) -> Result<PlayConfig, Failure> {
        let worker = WorkerCommand::current_exe().or_exit(OS_ERR, "cannot find the chronus binary")?;
        let mut engine = EngineConfig::new(super::synth::spec(self.voices)?, worker);
        engine.block = self.block;
        engine.sample_rate = self.sample_rate;
        engine.faults_enabled = self.faults;
        // Workers (code Chronus does not own) run as this user: they may
        // not reach into this process.
        engine.protect_supervisor = true;
        engine.spares = self.spares;
        if let Some(lead) = self.lead {
            engine.lead_blocks = lead;
        } else if self.sink == "jack" {
            // JACK calls once per period: the workers render each period
            // while the one before plays; no slack on top (a command sounds
            // a period and a half after it arrives).
            engine.lead_blocks = 0;
        }
        self.latency.apply(&mut engine);
        engine.record_path = self.record;
        engine.journal_path = self.journal;
        engine.record_in_memory = self.demo;
        // A long run keeps neither in memory: the journal goes to its file.
        engine.journal_in_memory = self.demo;
        if !(self.backoff.is_finite() && (0.0..=60.0).contains(&self.backoff)) {
            return Err(Failure::new(USAGE, "--backoff must be 0..=60 seconds"));
        }
        engine.backoff_base = Duration::from_secs_f64(self.backoff);
        engine.backoff_max = engine.backoff_max.max(engine.backoff_base);
        engine.quarantine_after = self.quarantine_after.max(1);
        engine.validate().or_exit(USAGE, "bad settings")?;
        let demo_secs =
            super::synth::demo_score(&engine.dsp, &engine.setup())?.1 as f64 / f64::from(self.sample_rate);
        let patch = match &self.patch {
            Some(p) => super::synth::patch_events(&engine.dsp, &engine.setup(), p)?,
            None => Vec::new(),
        };
        let duration = match self.duration {
            Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
            Some(_) => return Err(Failure::new(USAGE, "--duration must be a positive number of seconds")),
            None if self.demo => Some(Duration::from_secs_f64(demo_secs)),
            None => None,
        };
        let mut allow = Allow::loopback();
        for cidr in &self.allow {
            allow.add(cidr).map_err(|e| Failure::new(USAGE, e))?;
        }
        let files: Box<dyn chronus::dsp::Files> = match &self.patch_dir {
            Some(dir) => {
                Box::new(PatchDir::open(dir).or_exit(NO_INPUT, format!("--patch-dir {}", dir.display()))?)
            }
            None => Box::new(Bundled(&super::synth::BUNDLED_PATCHES)),
        };
        let output = match self.sink.as_str() {
            "null" => Output::Null,
            #[cfg(feature = "jack")]
            "jack" => {
                let server = super::jack::connect(&self.jack).map_err(|e| Failure::new(NO_DEVICE, e))?;
                engine.sample_rate = server.sample_rate();
                if engine.latency.budget().is_some() {
                    // In-cycle: one block per period, rendered in it.
                    engine.block = server.buffer_size();
                    engine.checkpoint_every = 8 * engine.block;
                }
                // Room for the largest period JACK allows, twice over.
                let most = server.buffer_size().max(8_192);
                engine.ring_frames = engine.ring_frames.max((most * 4).next_power_of_two());
                engine.validate().or_exit(USAGE, "the JACK server's settings")?;
                Output::Jack(server, self.jack.config())
            }
            #[cfg(not(feature = "jack"))]
            "jack" => {
                return Err(Failure::new(NO_DEVICE, "this chronus was built without the `jack` feature"));
            }
            #[cfg(not(feature = "device"))]
            sink => {
                if sink == "device" || self.device.is_some() {
                    return Err(Failure::new(
                        NO_DEVICE,
                        "this chronus was built without the `device` feature",
                    ));
                }
                Output::Null
            }
            #[cfg(feature = "device")]
            sink => match chronus::audio::choose_output(self.device.as_deref(), self.sample_rate, self.block)
            {
                Ok(chosen) => {
                    engine.sample_rate = chosen.sample_rate;
                    engine.block = chosen.block;
                    // Room for the largest period the device may grow to,
                    // twice over (what is being played, and the lead).
                    let most = chosen.max_period.max(chosen.block);
                    engine.ring_frames = engine.ring_frames.max((most * 4).next_power_of_two());
                    engine.validate().or_exit(USAGE, format!("the device's settings ({chosen:?})"))?;
                    Output::Device(chosen)
                }
                Err(e) if sink == "auto" && self.device.is_none() => {
                    eprintln!(
                        "chronus: {e}; playing through the paced null sink instead (--sink null to say so)"
                    );
                    Output::Null
                }
                Err(e) => return Err(Failure::new(NO_DEVICE, e)),
            },
        };
        Ok(PlayConfig {
            name: self.name,
            exit_on_quarantine: self.exit_on_quarantine,
            engine,
            output,
            demo: self.demo,
            duration,
            osc: self.osc,
            allow,
            files,
            patch,
        })
    }
}

/// Drives the engine's output from the device callback: it only copies
/// frames out of the workers' rings (and moves the render limit); it never
/// waits. The engine learns the device's period (the workers stay that far
/// ahead) and any silence the device played (an xrun: lost audio).
#[cfg(feature = "device")]
struct DeviceDriver(chronus::supervisor::OutputEngine);

#[cfg(feature = "device")]
impl chronus::audio::DeviceRender for DeviceDriver {
    fn prepare(&mut self, buffer: u32) {
        self.0.set_period(buffer);
    }

    fn render(&mut self, left: &mut [f32], right: &mut [f32], info: &chronus::audio::CallbackInfo) {
        self.0.set_period(info.buffer);
        self.0.device_gap(info.xrun_frames);
        self.0.process(left, right, Some(Instant::now()));
    }
}

/// `--list-devices`.
#[cfg(feature = "device")]
fn list_devices() -> Result<(), Failure> {
    let devices = chronus::audio::list_output_devices().map_err(|e| Failure::new(NO_DEVICE, e))?;
    if devices.is_empty() {
        println!("no output devices");
    }
    for (i, (name, description)) in devices.iter().enumerate() {
        println!("{name:<20} {description}{}", if i == 0 { "  (default)" } else { "" });
    }
    Ok(())
}

/// `--list-devices`, without the `device` feature.
#[cfg(not(feature = "device"))]
fn list_devices() -> Result<(), Failure> {
    Err(Failure::new(NO_DEVICE, "this chronus was built without the `device` feature"))
}

/// Runs `chronus play`.
pub fn run(args: PlayArgs) -> Result<(), Failure> {
    if args.list_devices {
        return list_devices();
    }
    let cfg = args.validate()?;
    let _lease = chronus::supervisor::Lease::acquire(&cfg.name).map_err(|e| match e {
        chronus::supervisor::LeaseError::Held { .. } => Failure::new(LEASE_HELD, e),
        chronus::supervisor::LeaseError::BadName(_) => Failure::new(USAGE, e),
        other => Failure { code: OS_ERR, error: anyhow::Error::new(other) },
    })?;
    // Bound before anything starts: an address refused costs nothing. (One
    // that admits every host is logged as a warning.)
    let listener = OscListener::bind(&cfg.osc, cfg.allow, cfg.files).map_err(|e| match e {
        OscError::Exposed(_) => Failure::new(EXPOSED, e),
        e => Failure::new(OS_ERR, format!("cannot listen for OSC on {}: {e}", cfg.osc)),
    })?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone()).or_exit(OS_ERR, "cannot handle signals")?;
    }
    let sample_rate = cfg.engine.sample_rate;
    let setup: Setup = cfg.engine.setup();
    let spec = cfg.engine.dsp.clone();
    let (engine, stream, sink_name) = match cfg.output {
        Output::Null => {
            let engine = Engine::start(cfg.engine, PacedSink::new(sample_rate))
                .or_exit(OS_ERR, "cannot start the engine")?;
            (engine, None::<Box<dyn std::any::Any>>, "the paced null sink".to_owned())
        }
        #[cfg(feature = "device")]
        Output::Device(chosen) => {
            let (engine, output) =
                Engine::start_external(cfg.engine).or_exit(OS_ERR, "cannot start the engine")?;
            let name = format!("device {}", chosen.name);
            let stream = chronus::audio::start_output(chosen, DeviceDriver(output))
                .map_err(|e| Failure::new(NO_DEVICE, e))?;
            (engine, Some(Box::new(stream) as Box<dyn std::any::Any>), name)
        }
        #[cfg(feature = "jack")]
        Output::Jack(server, jack) => {
            let (engine, output) =
                Engine::start_external(cfg.engine).or_exit(OS_ERR, "cannot start the engine")?;
            let name = format!(
                "JACK as {}:out_1/out_2 ({} frames per period{})",
                jack.name,
                server.buffer_size(),
                if jack.midi { format!(", MIDI in at {}:midi_in", jack.name) } else { String::new() }
            );
            let driver = super::jack::JackDriver::new(output);
            let client = server.start(jack, driver).map_err(|e| Failure::new(NO_DEVICE, e))?;
            (engine, Some(Box::new(client) as Box<dyn std::any::Any>), name)
        }
    };
    // The patch first, at frame 0 (or the first frame still to come).
    if !cfg.patch.is_empty() {
        engine.send_all(&cfg.patch, Some(0)).or_exit(OS_ERR, "cannot send the patch")?;
    }
    let engine = Arc::new(engine);
    let server =
        listener.serve(engine.clone()).or_exit(OS_ERR, format!("cannot serve OSC on {}", cfg.osc))?;
    let status =
        engine.wait_for(Duration::from_secs(2), |s| s.health == Health::Healthy).unwrap_or_else(|s| s);
    println!(
        "chronus playing through {sink_name}: {} Hz, block {}, {}, {}; OSC on {}; active worker pid {}, standby pid {}",
        status.sample_rate,
        status.block,
        spec.name(),
        super::latency::describe(engine.config().latency),
        server.local_addr(),
        status.active_pid.unwrap_or(0),
        status.standby_pid.unwrap_or(0)
    );
    let started = Instant::now();
    let done = AtomicBool::new(false);
    let mut killed: Option<u32> = None;
    let mut quarantined = false;
    std::thread::scope(|s| {
        if cfg.demo {
            let (score, length) = super::synth::demo_score(&spec, &setup)?;
            let (engine, done) = (&engine, &done);
            s.spawn(move || play_looped(engine, &score, length, done));
        }
        while !interrupted.load(Ordering::Relaxed) && !server.quit_requested() {
            if cfg.duration.is_some_and(|d| started.elapsed() >= d) {
                break;
            }
            if cfg.exit_on_quarantine && engine.status().quarantined {
                eprintln!(
                    "chronus: workers quarantined after repeated failed restarts; exiting (--exit-on-quarantine)"
                );
                quarantined = true;
                break;
            }
            if cfg.demo && killed.is_none() && cfg.duration.is_some_and(|d| started.elapsed() >= d / 2) {
                let status = engine.status();
                let standby = status.standby_pid.is_some() && status.joining_pid.is_none();
                if standby && let Ok(pid) = engine.signal(Target::Active, libc::SIGKILL) {
                    println!(
                        "demo: killed the active worker (pid {pid}) with SIGKILL; listen: nothing happens"
                    );
                    killed = Some(pid);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        done.store(true, Ordering::Relaxed);
        // End on silence, not on a cut.
        engine.fade_out();
        Ok::<(), Failure>(())
    })?;
    server.stop();
    // Stopping the device drops its callback and with it the output side.
    drop(stream);
    let engine =
        Arc::try_unwrap(engine).map_err(|_| Failure::new(crate::exit::OS_ERR, "engine still in use"))?;
    let report = engine.stop().or_exit(CANT_CREATE, "stopping")?;
    let seconds = report.counters.frames_played as f64 / f64::from(report.setup.sample_rate);
    if cfg.demo {
        let summary = FailoverSummary::of(&report);
        for e in &report.failovers {
            println!(
                "demo: worker {} ({}) {}: detected in {:.0} µs, switched in {:.0} µs, replacement in lockstep after {:.1} ms",
                e.pid,
                format!("{:?}", e.role).to_lowercase(),
                e.exit,
                e.detection_us(),
                e.switch_us(),
                e.rejoin_us().unwrap_or(f64::NAN) / 1_000.0
            );
        }
        let device = if summary.device_xruns > 0 {
            format!(
                " ({} of them the audio device's, in {} xrun(s))",
                summary.device_xrun_frames, summary.device_xruns
            )
        } else {
            String::new()
        };
        println!(
            "played {seconds:.1} s: {} failover(s), frames lost: {}{device}, bit-exact with the offline render: {}",
            summary.faults,
            summary.lost_frames,
            if summary.bit_exact { "yes" } else { "NO" }
        );
        if let Some(note) = summary.stall_note() {
            println!("note: {note}");
        }
    } else {
        println!(
            "played {seconds:.1} s: {} failover(s), frames lost: {}, underrun frames: {} ({} while the machine \
             held the output off), device xruns: {} ({} frames of silence)",
            report.failovers.len(),
            report.lost_frames(),
            report.counters.underrun_frames,
            report.counters.machine_stall_frames,
            report.counters.device_xruns,
            report.counters.device_xrun_frames
        );
    }
    if quarantined {
        return Err(Failure::new(QUARANTINED, "quarantined"));
    }
    Ok(())
}
