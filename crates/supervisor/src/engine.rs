//! The engine: the API that starts, drives, inspects and stops the whole
//! failover machine.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use chronus_dsp::Command;
use chronus_ipc::{FaultKind, Geometry, Region};

use crate::EngineError;
use crate::collector::{Collected, Collector};
use crate::config::EngineConfig;
use crate::events::FailoverEvent;
use crate::output::{OutputEngine, Queued};
use crate::report::RunReport;
use crate::shared::Shared;
use crate::sink::Sink;
use crate::status::Status;
use crate::supervise::{Request, SUPERVISOR_PRIORITY, Supervisor, Target, WORKER_PRIORITY};

/// Priority of the output thread under SCHED_FIFO.
const OUTPUT_PRIORITY: i32 = 70;

/// A running failover engine: two workers in lockstep, an output thread,
/// a supervisor thread.
///
/// ```no_run
/// use chronus_supervisor::{Engine, EngineConfig, PacedSink};
/// use chronus_dsp::Command;
/// let config = EngineConfig::new("target/release/chronus".into());
/// let engine = Engine::start(config, PacedSink::new(48_000))?;
/// engine.send(Command::NoteOn { voice: 0, freq: 440.0, amp: 0.5 })?;
/// std::thread::sleep(std::time::Duration::from_secs(1));
/// let report = engine.stop()?;
/// println!("{} failovers", report.events.len());
/// # Ok::<(), chronus_supervisor::EngineError>(())
/// ```
pub struct Engine {
    shared: Arc<Shared>,
    cfg: EngineConfig,
    commands: Mutex<rtrb::Producer<Queued>>,
    requests: mpsc::Sender<Request>,
    status: Arc<Mutex<Status>>,
    output: Option<JoinHandle<()>>,
    supervisor: Option<JoinHandle<Vec<FailoverEvent>>>,
    collector: Option<JoinHandle<Collected>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("status", &self.status()).finish_non_exhaustive()
    }
}

fn try_fifo(priority: i32, what: &str) -> bool {
    match chronus_ipc::set_thread_fifo(priority) {
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

impl Engine {
    /// Starts two workers, waits until both are ready, then starts playing
    /// into `sink` on an output thread of the engine's own.
    ///
    /// # Errors
    /// [`EngineError::Config`], [`EngineError::Ipc`] or
    /// [`EngineError::WorkerStart`].
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

    /// Starts two workers and waits until both are ready; returns the engine
    /// and its [`OutputEngine`], for the caller to drive from its own audio
    /// callback (`process(left, right, Some(Instant::now()))`: never waits).
    /// Drop the `OutputEngine` (stop the device stream) before
    /// [`Engine::stop`].
    ///
    /// # Errors
    /// As [`Engine::start`].
    pub fn start_external(cfg: EngineConfig) -> Result<(Self, OutputEngine), EngineError> {
        cfg.validate()?;
        let geometry = Geometry {
            sample_rate: cfg.sample_rate,
            channels: 2,
            audio_frames: cfg.ring_frames,
            command_slots: cfg.command_slots,
            max_block: cfg.block,
            voices: cfg.voices,
        };
        let shared = Arc::new(Shared::new([Region::create(geometry, 0)?, Region::create(geometry, 0)?]));
        let (command_tx, command_rx) =
            prefaulted_ring(4_096, Queued { command: Command::NoteOff { voice: 0 }, at: None });
        let filler = chronus_dsp::TimedCommand { frame: 0, command: Command::NoteOff { voice: 0 } };
        let (journal_tx, journal_rx) = prefaulted_ring(8_192, filler);
        let recording = cfg.record_in_memory || cfg.record_path.is_some();
        let (record_tx, record_rx) = if recording {
            // One second of stereo audio; the collector drains it every 5 ms.
            let (tx, rx) = prefaulted_ring(cfg.sample_rate as usize * 2, 0.0f32);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        // One span per stalled period at most; the collector drains it
        // every 5 ms.
        let (stalls_tx, stalls_rx) = prefaulted_ring(1_024, crate::report::FrameSpan::default());
        let (request_tx, request_rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(Status::starting(&cfg)));

        let mut supervisor = Supervisor {
            shared: shared.clone(),
            cfg: cfg.clone(),
            ctl: Default::default(),
            events: Vec::new(),
            next_generation: 1,
            requests: request_rx,
            status: status.clone(),
            worker_priority: None,
            underruns_seen: (0, std::time::Instant::now()),
            last_health: None,
            watchdog: Default::default(),
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let realtime = cfg.realtime;
        let supervisor = spawn("chronus-supervisor", move || {
            if realtime && try_fifo(SUPERVISOR_PRIORITY, "supervisor") {
                supervisor.worker_priority = Some(WORKER_PRIORITY);
            }
            match supervisor.start_workers() {
                Ok(()) => {
                    let _ = ready_tx.send(Ok(()));
                    supervisor.run()
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    Vec::new()
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
            journal: journal_rx,
            record: record_rx,
            stalls: stalls_rx,
            keep_audio: cfg.record_in_memory,
            keep_journal: cfg.journal_in_memory,
            wav_path: cfg.record_path.clone(),
            journal_path: cfg.journal_path.clone(),
            sample_rate: cfg.sample_rate,
            voices: cfg.voices,
        };
        let collector = spawn("chronus-collector", move || collector.run())?;
        let output = OutputEngine::new(
            shared.clone(),
            command_rx,
            journal_tx,
            record_tx,
            stalls_tx,
            u64::from(cfg.lead_blocks * cfg.block),
        );
        let engine = Self {
            shared,
            cfg,
            commands: Mutex::new(command_tx),
            requests: request_tx,
            status,
            output: None,
            supervisor: Some(supervisor),
            collector: Some(collector),
        };
        Ok((engine, output))
    }

    /// Queues a command; the output thread stamps it with the next frame no
    /// worker has rendered and sends it to every worker.
    ///
    /// # Errors
    /// [`EngineError::QueueFull`] when the output is not keeping up.
    pub fn send(&self, command: Command) -> Result<(), EngineError> {
        self.enqueue(Queued { command, at: None })
    }

    /// Queues a command to apply at `frame` (sample-accurate), or as soon as
    /// possible if that frame is already being rendered.
    ///
    /// # Errors
    /// [`EngineError::QueueFull`] when the output is not keeping up.
    pub fn send_at(&self, command: Command, frame: u64) -> Result<(), EngineError> {
        self.enqueue(Queued { command, at: Some(frame) })
    }

    /// The frame that plays at wall-clock `time`, once the output runs
    /// (frame 0 plays when it starts; the paced sink holds that rate).
    pub fn frame_at(&self, time: std::time::SystemTime) -> Option<u64> {
        let start = self.shared.start_unix_ns.load(Acquire);
        let t = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as u64;
        (start != 0).then(|| t.saturating_sub(start) * u64::from(self.cfg.sample_rate) / 1_000_000_000)
    }

    fn enqueue(&self, queued: Queued) -> Result<(), EngineError> {
        let mut queue =
            self.commands.lock().map_err(|_| EngineError::Thread("command queue poisoned".into()))?;
        queue.push(queued).map_err(|_| {
            self.shared.commands_dropped.fetch_add(1, Relaxed);
            EngineError::QueueFull
        })
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
        let _ = self.requests.send(Request::Expect(pid, kind, chronus_ipc::monotonic_ns()));
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

    /// Fades the output to silence over the master gain's ramp (5 ms) and
    /// returns once the silent frames have been played. The fade is a
    /// journaled `/set master 0`, so a recording still renders bit for bit
    /// from its journal.
    ///
    /// # Errors
    /// [`EngineError::QueueFull`] when the output is not consuming.
    pub fn fade_out(&self) -> Result<(), EngineError> {
        let from = self.status().frames_played;
        self.send(Command::Set { param: chronus_dsp::Param::Master, value: 0.0 })?;
        let ramp = (f64::from(chronus_dsp::RAMP_SECONDS) * f64::from(self.cfg.sample_rate)).ceil() as u64;
        let until = from + u64::from((self.cfg.lead_blocks + 2) * self.cfg.block) + ramp;
        let _ = self.wait_for(std::time::Duration::from_secs(1), |s| s.frames_played >= until);
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    fn shut_down(&mut self) -> (Vec<FailoverEvent>, Collected, Vec<String>) {
        self.shared.stop.store(true, Release);
        let mut errors = Vec::new();
        let mut join = |name: &str, h: Option<JoinHandle<()>>| {
            if let Some(Err(_)) = h.map(JoinHandle::join) {
                errors.push(format!("the {name} thread panicked"));
            }
        };
        join("output", self.output.take());
        // An externally driven output is done when its OutputEngine is dropped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !self.shared.output_done.load(Acquire) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.shared.output_done.store(true, Release);
        let events = self.supervisor.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        let collected = self.collector.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        (events, collected, errors)
    }

    /// Stops the output, the workers (cleanly) and the threads; returns what
    /// the run produced. Files being written are finalised.
    ///
    /// # Errors
    /// [`EngineError::Output`] if the recording or journal could not be
    /// written; [`EngineError::Thread`] if an engine thread panicked.
    pub fn stop(mut self) -> Result<RunReport, EngineError> {
        let (events, collected, mut errors) = self.shut_down();
        let s = &self.shared;
        let report = RunReport {
            sample_rate: self.cfg.sample_rate,
            voices: self.cfg.voices,
            frames_played: s.frame.load(Acquire),
            left: collected.left,
            right: collected.right,
            commands: collected.commands,
            events,
            underrun_frames: s.underrun_frames.load(Acquire),
            machine_stall_frames: s.machine_stall_frames.load(Acquire),
            machine_stalls: collected.stalls,
            supervisor_stalls: s.supervisor_stalls.load(Acquire),
            fallback_frames: s.fallback_frames.load(Acquire),
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
            corrupt_samples: s.corrupt_samples.load(Acquire),
            io_overruns: s.io_overruns.load(Acquire),
            commands_dropped: s.commands_dropped.load(Acquire),
            commands_late: s.commands_late.load(Acquire),
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
