//! The engine: the API that starts, drives, inspects and stops the whole
//! failover machine, for any DSP on the seam.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use chronus_dsp::{Arg, DspSpec, Event};
use chronus_ipc::{Bus, FaultKind, Geometry, WorkerRegion};
use chronus_journal::JournalHeader;

use crate::EngineError;
use crate::collector::{Collected, Collector, Note};
use crate::config::EngineConfig;
use crate::control::{Request, SUPERVISOR_PRIORITY, Supervisor, Target, WORKER_PRIORITY};
use crate::events::{Cut, History};
use crate::output::OutputEngine;
use crate::output::sequencer::{Queued, Sequencer, Stamped};
use crate::output::sink::Sink;
use crate::report::RunReport;
use crate::shared::Shared;
use crate::status::Status;

/// Priority of the output thread under SCHED_FIFO.
const OUTPUT_PRIORITY: i32 = 70;
/// Checkpoint slots in the bus.
const CHECKPOINTS: u32 = crate::policy::checkpoint::SLOTS as u32;
/// Capacity of the excision table.
const EXCISIONS: u32 = 1_024;
/// Cut-out commands waiting for [`Engine::take_cuts`].
const CUTS_QUEUED: usize = 256;

/// A running failover engine: replicas of a DSP in lockstep, an output
/// thread, a supervisor thread.
///
/// ```no_run
/// use chronus_dsp::DspSpec;
/// use chronus_supervisor::{Engine, EngineConfig, PacedSink};
/// use chronus_synth::{Command, Synth, SynthConfig};
/// use chronus_worker::WorkerCommand;
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     chronus_worker::init::<Synth>(); // this program is its own worker
///     let dsp = DspSpec::new::<Synth>(SynthConfig::new(64))?;
///     let config = EngineConfig::new(dsp, WorkerCommand::current_exe()?);
///     let engine = Engine::start(config, PacedSink::new(48_000))?;
///     engine.send(Command::NoteOn { voice: 0, freq: 440.0, amp: 0.5 }.to_event())?;
///     std::thread::sleep(std::time::Duration::from_secs(1));
///     let report = engine.stop()?;
///     println!("{} failovers", report.failovers.len());
///     Ok(())
/// }
/// ```
pub struct Engine {
    shared: Arc<Shared>,
    cfg: EngineConfig,
    commands: Mutex<rtrb::Producer<Queued>>,
    cuts: Mutex<rtrb::Consumer<Cut>>,
    requests: mpsc::Sender<Request>,
    status: Arc<Mutex<Status>>,
    output: Option<JoinHandle<()>>,
    supervisor: Option<JoinHandle<History>>,
    collector: Option<JoinHandle<Collected>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("status", &self.status()).finish_non_exhaustive()
    }
}

fn try_fifo(priority: i32, what: &str) -> bool {
    match chronus_sys::sched::set_thread_fifo(priority) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("no real-time priority for the {what} thread ({e}); running without SCHED_FIFO");
            false
        }
    }
}

/// A ring whose every slot has been written once, so its pages are resident
/// before the real-time thread uses it (no page fault in the output path, and
/// no resident-memory growth during a run).
fn prefaulted_ring<T: Copy>(capacity: usize, filler: T) -> (rtrb::Producer<T>, rtrb::Consumer<T>) {
    let (mut tx, mut rx) = rtrb::RingBuffer::new(capacity);
    for _ in 0..capacity {
        let _ = tx.push(filler);
        let _ = rx.pop();
    }
    (tx, rx)
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, EngineError> {
    std::thread::Builder::new().name(name.into()).spawn(f).map_err(|e| EngineError::Thread(e.to_string()))
}

/// An engine run's id for its shared memory (24 bits; stamps carry it).
fn new_epoch() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)) % ((1 << 24) - 1) + 1
}

impl Engine {
    /// Starts the replicas, waits until they run, then starts playing into
    /// `sink` on an output thread of the engine's own.
    ///
    /// # Errors
    /// [`EngineError::Config`], [`EngineError::Dsp`], [`EngineError::Ipc`]
    /// or [`EngineError::WorkerStart`].
    pub fn start(cfg: EngineConfig, sink: impl Sink) -> Result<Self, EngineError> {
        let realtime = cfg.realtime;
        let block = cfg.block as usize;
        let sample_rate = cfg.sample_rate;
        let (mut engine, output) = Self::start_external(cfg)?;
        let shared = engine.shared.clone();
        let thread = spawn("chronus-output", move || {
            let mut sink = sink;
            let mut output = output;
            if realtime && sink.is_realtime() {
                try_fifo(OUTPUT_PRIORITY, "output");
            }
            let (mut left, mut right) = (vec![0.0f32; block], vec![0.0f32; block]);
            while !shared.stop.load(Acquire) {
                let deadline = sink.wait_period(block as u32);
                if let Some(deadline) = deadline {
                    output.begin_paced_period(deadline, block as u32, sample_rate);
                }
                output.process(&mut left, &mut right, deadline);
            }
        })?;
        engine.output = Some(thread);
        Ok(engine)
    }

    /// Starts the replicas and waits until they run; returns the engine and
    /// its [`OutputEngine`], for the caller to drive from its own audio
    /// callback (`process(left, right, Some(Instant::now()))`: never waits;
    /// callbacks of any size). Drop the `OutputEngine` (stop the device
    /// stream) before [`Engine::stop`].
    ///
    /// # Errors
    /// As [`Engine::start`].
    pub fn start_external(cfg: EngineConfig) -> Result<(Self, OutputEngine), EngineError> {
        cfg.validate()?;
        if cfg.protect_supervisor {
            chronus_sys::process::set_undumpable()
                .map_err(|_| EngineError::Config("PR_SET_DUMPABLE failed"))?;
        }
        let setup = cfg.setup();
        // Prepared once here: it must prepare at all, and it says how large
        // its snapshots are.
        let snapshot_bytes = cfg.dsp.prepare(&setup)?.snapshot_len() as u64;
        let geometry = Geometry {
            sample_rate: cfg.sample_rate,
            block: cfg.block,
            audio_frames: cfg.ring_frames,
            log_slots: cfg.log_slots,
            snapshot_bytes,
            checkpoints: CHECKPOINTS,
            excise_slots: EXCISIONS,
            config_bytes: 0,
            _pad: 0,
        };
        let epoch = new_epoch();
        let bus = Bus::create(geometry, epoch, cfg.dsp.name(), cfg.dsp.config_json(), cfg.faults_enabled)?;
        let bus_fd = bus.read_only_fd()?;
        let regions = (0..cfg.slots())
            .map(|_| WorkerRegion::create(geometry, epoch, 0))
            .collect::<Result<Vec<_>, _>>()?;
        let shared = Arc::new(Shared::new(bus, regions));
        let (command_tx, command_rx) =
            prefaulted_ring(4_096, Queued { event: Event::default(), at: None, origin: 0 });
        let (cuts_tx, cuts_rx) = rtrb::RingBuffer::new(CUTS_QUEUED);
        let (journal_tx, journal_rx) = prefaulted_ring(8_192, Stamped::default());
        let recording = cfg.record_in_memory || cfg.record_path.is_some();
        let (record_tx, record_rx) = if recording {
            // One second of stereo audio; the collector drains it every 5 ms.
            let (tx, rx) = prefaulted_ring(cfg.sample_rate as usize * 2, 0.0f32);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        // One span per period at most; the collector drains them every 5 ms.
        let (output_notes_tx, output_notes_rx) = prefaulted_ring(1_024, Note::default());
        let (control_notes_tx, control_notes_rx) = prefaulted_ring(1_024, Note::default());
        let (request_tx, request_rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(Status::starting(&cfg)));

        let mut supervisor = Supervisor::new(
            shared.clone(),
            cfg.clone(),
            bus_fd,
            request_rx,
            status.clone(),
            control_notes_tx,
            cuts_tx,
        )?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let realtime = cfg.realtime;
        let supervisor = spawn("chronus-supervisor", move || {
            if realtime && try_fifo(SUPERVISOR_PRIORITY, "supervisor") {
                supervisor.set_worker_priority(Some(WORKER_PRIORITY));
            }
            match supervisor.start_workers() {
                Ok(()) => {
                    let _ = ready_tx.send(Ok(()));
                    supervisor.run()
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    History::new(1)
                }
            }
        })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = supervisor.join();
                return Err(e);
            }
            Err(_) => return Err(EngineError::Thread("the supervisor thread died while starting".into())),
        }

        let collector = Collector {
            shared: shared.clone(),
            spec: cfg.dsp.clone(),
            header: JournalHeader::of(&cfg.dsp, &setup),
            journal: journal_rx,
            record: record_rx,
            notes: [output_notes_rx, control_notes_rx],
            keep_audio: cfg.record_in_memory,
            keep_journal: cfg.journal_in_memory,
            wav_path: cfg.record_path.clone(),
            journal_path: cfg.journal_path.clone(),
        };
        let collector = spawn("chronus-collector", move || collector.run())?;
        let sequencer = Sequencer::new(command_rx, journal_tx, cfg.dsp.table().clone());
        let output = OutputEngine::new(shared.clone(), sequencer, record_tx, output_notes_tx, &cfg);
        let engine = Self {
            shared,
            cfg,
            commands: Mutex::new(command_tx),
            cuts: Mutex::new(cuts_rx),
            requests: request_tx,
            status,
            output: None,
            supervisor: Some(supervisor),
            collector: Some(collector),
        };
        Ok((engine, output))
    }

    /// Queues an event; the output thread stamps it with the next frame no
    /// worker has rendered and publishes it to every worker.
    ///
    /// # Errors
    /// [`EngineError::Refused`] for an event the DSP's table or checks
    /// refuse; [`EngineError::QueueFull`] when the output is not keeping up.
    pub fn send(&self, event: Event) -> Result<(), EngineError> {
        self.send_all(&[event], None)
    }

    /// Queues an event to apply at `frame` (sample-accurate), or as soon as
    /// possible if that frame is already being rendered.
    ///
    /// # Errors
    /// As [`Engine::send`].
    pub fn send_at(&self, event: Event, frame: u64) -> Result<(), EngineError> {
        self.send_all(&[event], Some(frame))
    }

    /// Parses `path` with `args` through the DSP's table (and expansions,
    /// such as a patch load) and queues the events, at `frame` if given.
    /// Returns how many events were queued. An expansion may read any file
    /// this process can ([`chronus_dsp::AnyFile`]): this is the embedding
    /// program's own call. What arrives from a network goes through the OSC
    /// server, which decides what its senders may make the DSP read.
    ///
    /// # Errors
    /// [`EngineError::Refused`] with the message to show the sender;
    /// [`EngineError::QueueFull`].
    pub fn send_message(
        &self,
        path: &str,
        args: &[Arg<'_>],
        frame: Option<u64>,
    ) -> Result<usize, EngineError> {
        self.send_message_from(path, args, frame, 0)
    }

    /// As [`Engine::send_message`], from sender `origin` (see
    /// [`Engine::send_all_from`]).
    ///
    /// # Errors
    /// As [`Engine::send_message`].
    pub fn send_message_from(
        &self,
        path: &str,
        args: &[Arg<'_>],
        frame: Option<u64>,
        origin: u32,
    ) -> Result<usize, EngineError> {
        let mut events = Vec::new();
        self.cfg
            .dsp
            .parse(&self.cfg.setup(), path, args, &chronus_dsp::AnyFile, &mut events)
            .map_err(|e| EngineError::Refused(e.to_string()))?;
        if events.iter().any(|e| e.is_engine()) && !self.cfg.faults_enabled {
            return Err(EngineError::Refused(format!(
                "{path} is only accepted with fault injection enabled"
            )));
        }
        self.send_all_from(&events, frame, origin)?;
        Ok(events.len())
    }

    /// Queues `events` (each checked as [`Engine::send`] does), at `frame`
    /// if given, all or none.
    ///
    /// # Errors
    /// As [`Engine::send`].
    pub fn send_all(&self, events: &[Event], frame: Option<u64>) -> Result<(), EngineError> {
        self.send_all_from(events, frame, 0)
    }

    /// As [`Engine::send_all`], from sender `origin`: an id of the caller's
    /// choosing (an OSC server numbers its clients), handed back in a
    /// [`Cut`] if the engine ever cuts one of these events out as a poison.
    ///
    /// # Errors
    /// As [`Engine::send`]; [`EngineError::Refused`] for an event equal to
    /// one cut out as a poison.
    pub fn send_all_from(
        &self,
        events: &[Event],
        frame: Option<u64>,
        origin: u32,
    ) -> Result<(), EngineError> {
        for event in events {
            if self.shared.poisons.contains(event) {
                self.shared.poison_refusals.fetch_add(1, Relaxed);
                return Err(EngineError::Refused(
                    "this exact command was cut out as a poison (every replica crashed or hung applying it); \
                     it is refused from now on"
                        .into(),
                ));
            }
            self.cfg.dsp.check(&self.cfg.setup(), event).map_err(|e| EngineError::Refused(e.to_string()))?;
            if event.is_engine() && !self.cfg.faults_enabled {
                return Err(EngineError::Refused(
                    "engine test addresses need fault injection enabled".into(),
                ));
            }
        }
        self.enqueue_all(events, frame, origin)
    }

    /// The commands cut out as poisons since the last call (up to 256 are
    /// kept between calls; older ones are still counted in the status).
    pub fn take_cuts(&self) -> Vec<Cut> {
        let mut out = Vec::new();
        if let Ok(mut rx) = self.cuts.lock() {
            while let Ok(cut) = rx.pop() {
                out.push(cut);
            }
        }
        out
    }

    /// Queues already checked events, all or none.
    fn enqueue_all(&self, events: &[Event], at: Option<u64>, origin: u32) -> Result<(), EngineError> {
        let mut queue =
            self.commands.lock().map_err(|_| EngineError::Thread("command queue poisoned".into()))?;
        if queue.slots() < events.len() {
            self.shared.commands_dropped.fetch_add(events.len() as u64, Relaxed);
            return Err(EngineError::QueueFull);
        }
        for &event in events {
            let _ = queue.push(Queued { event, at, origin });
        }
        Ok(())
    }

    /// The DSP the engine carries.
    pub fn dsp(&self) -> &DspSpec {
        &self.cfg.dsp
    }

    /// The frame that plays at wall-clock `time`, once the output runs: on
    /// the device's clock when its driver tells when frames reach the output
    /// (JACK), else counted from the output's start (frame 0 plays when it
    /// starts; the paced sink holds that rate).
    pub fn frame_at(&self, time: std::time::SystemTime) -> Option<u64> {
        let sr = u64::from(self.cfg.sample_rate);
        if let Some((frame, ns)) = self.shared.device_clock.load() {
            // On the device's clock: its driver said when `frame` reaches
            // the output (CLOCK_MONOTONIC); the time tag is wall-clock time.
            let now_wall = std::time::SystemTime::now();
            let now_mono = chronus_sys::clock::monotonic_ns() as i128;
            let ahead = match time.duration_since(now_wall) {
                Ok(d) => d.as_nanos() as i128,
                Err(e) => -(e.duration().as_nanos() as i128),
            };
            let at = now_mono + ahead - ns as i128;
            let frames = at * i128::from(sr) / 1_000_000_000;
            return Some((frame as i128 + frames).max(0) as u64);
        }
        let start = self.shared.start_unix_ns.load(Acquire);
        let t = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as u64;
        (start != 0).then(|| t.saturating_sub(start) * sr / 1_000_000_000)
    }

    fn request(
        &self,
        make: impl FnOnce(mpsc::Sender<Result<u32, EngineError>>) -> Request,
    ) -> Result<u32, EngineError> {
        let (tx, rx) = mpsc::channel();
        self.requests.send(make(tx)).map_err(|_| EngineError::Thread("supervisor gone".into()))?;
        rx.recv().map_err(|_| EngineError::Thread("supervisor gone".into()))?
    }

    /// Makes the `target` worker inflict `kind` on itself. Returns its pid.
    ///
    /// # Errors
    /// [`EngineError::FaultsDisabled`] unless the engine was started with
    /// `faults_enabled`; [`EngineError::NoSuchWorker`].
    pub fn inject(&self, target: Target, kind: FaultKind) -> Result<u32, EngineError> {
        self.request(|tx| Request::Inject(target, kind, tx))
    }

    /// Sends `signal` to the `target` worker from outside, as `kill(1)`
    /// would. Returns its pid.
    ///
    /// # Errors
    /// [`EngineError::NoSuchWorker`] or an OS error.
    pub fn signal(&self, target: Target, signal: i32) -> Result<u32, EngineError> {
        self.request(|tx| Request::Signal(target, signal, tx))
    }

    /// Tells the engine that worker `pid` is about to be hit from outside
    /// (a test harness about to run `kill`), so the failover event carries
    /// the real fault time and kind instead of "unknown".
    pub fn expect_fault(&self, pid: u32, kind: FaultKind) {
        let _ = self.requests.send(Request::Expect(pid, kind, chronus_sys::clock::monotonic_ns()));
    }

    /// Whether every replica renders over its real-time budget right now
    /// (lock-free; [`Status::overloaded`] says the same).
    pub fn is_overloaded(&self) -> bool {
        self.shared.overloaded.load(Relaxed)
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Waits until `ready(status)` holds, polling every 500 µs. Returns the
    /// status that satisfied it, or the last one seen after `timeout`.
    ///
    /// # Errors
    /// The last status seen, when `timeout` passed first.
    #[allow(
        clippy::result_large_err,
        reason = "called off the real-time path; the status is the answer either way"
    )]
    pub fn wait_for(
        &self,
        timeout: std::time::Duration,
        ready: impl Fn(&Status) -> bool,
    ) -> Result<Status, Status> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let status = self.status();
            if ready(&status) {
                return Ok(status);
            }
            if std::time::Instant::now() >= deadline {
                return Err(status);
            }
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
    }

    /// Fades the output to silence over [`FADE_FRAMES`](crate::FADE_FRAMES) frames, from the
    /// next frame the output plays, and returns once it is silent (at most
    /// 1 s). The fade is the engine's, not the DSP's: it works for any DSP,
    /// and it is written into the journal (`@fade`), so a recording still
    /// renders bit for bit from its journal.
    pub fn fade_out(&self) {
        self.shared.fade_requested.store(true, Release);
        let _ = self.wait_for(std::time::Duration::from_secs(1), |_| {
            let end = self.shared.fade_end.load(Acquire);
            end != 0 && self.shared.frame.load(Acquire) >= end
        });
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    fn shut_down(&mut self) -> (History, Collected, Vec<String>) {
        self.shared.stop.store(true, Release);
        let mut errors = Vec::new();
        if let Some(Err(_)) = self.output.take().map(JoinHandle::join) {
            errors.push("the output thread panicked".to_owned());
        }
        // An externally driven output is done when its OutputEngine is dropped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !self.shared.output_done.load(Acquire) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.shared.output_done.store(true, Release);
        let history = self.supervisor.take().map(|h| h.join().unwrap_or_else(|_| History::new(1)));
        let collected = self.collector.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        (history.unwrap_or_else(|| History::new(1)), collected, errors)
    }

    /// Stops the output, the workers (cleanly) and the threads; returns what
    /// the run produced. Files being written are finalised.
    ///
    /// # Errors
    /// [`EngineError::Output`] if the recording or journal could not be
    /// written; [`EngineError::Thread`] if an engine thread panicked.
    pub fn stop(mut self) -> Result<RunReport, EngineError> {
        let nondeterministic_at = self.status().nondeterministic_at;
        let (history, collected, mut errors) = self.shut_down();
        let s = &self.shared;
        let events_dropped = history.dropped();
        let report = RunReport {
            spec: self.cfg.dsp.clone(),
            setup: self.cfg.setup(),
            left: collected.left,
            right: collected.right,
            events: collected.events,
            notes: collected.notes,
            failovers: history.into_vec(),
            events_dropped,
            counters: s.counters(),
            first_underrun: (s.underrun_frames.load(Acquire) > 0).then(|| {
                let d: Vec<u64> = s.first_underrun.iter().map(|v| v.load(Acquire)).collect();
                crate::report::UnderrunDetail {
                    frame: d[0],
                    written: [d[1], d[2]],
                    states: [d[3] as u8, (d[3] >> 8) as u8],
                    late_us: d[4],
                    at_us: d[5],
                }
            }),
            nondeterministic_at,
            errors: collected.errors,
        };
        if let Some(e) = errors.pop() {
            return Err(EngineError::Thread(e));
        }
        if let Some(e) = report.errors.first() {
            return Err(EngineError::Output(e.clone()));
        }
        Ok(report)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.output.is_some() || self.supervisor.is_some() || self.collector.is_some() {
            let _ = self.shut_down();
        }
    }
}
