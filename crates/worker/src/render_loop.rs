//! The worker's render loop: any DSP on the seam, in whole blocks on the
//! engine's grid, events applied at their frames.

use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::Duration;

use chronus_dsp::{Block, BlockEvent, DynDsp, POISON};
use chronus_ipc::{
    AudioWriter, Bus, FaultKind, HASH_SEED, LogEntry, LogReader, Recorder, SandboxMode, StartError,
    StartKind, StartRequest, WorkerRegion, WorkerState, checksum_samples,
};
use chronus_sys::clock::monotonic_ns;
use chronus_sys::process::ThreadCounter;

use crate::WorkerError;
use crate::fault::{inflict, poison};

/// What one [`Worker::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Rendered and published one block of this many frames.
    Rendered(usize),
    /// Started rendering (from a reset DSP or a checkpoint).
    Started,
    /// Nothing to do: not started, not allowed past the render limit, or
    /// the ring is full.
    Idle,
    /// A stop was requested.
    Stop,
    /// The log went a whole lap past this worker: events are gone, it
    /// cannot go on in lockstep.
    Lapped,
}

/// Longest sleep between checks for a stop request.
const IDLE_SLEEP: Duration = Duration::from_millis(100);

/// A worker attached to its region and the bus, with its prepared DSP.
pub struct Worker<'r> {
    region: &'r WorkerRegion,
    bus: &'r Bus,
    dsp: Box<dyn DynDsp>,
    running: bool,
    /// The next frame to render (a block boundary).
    frame: u64,
    /// Events before this frame are skipped (a fresh start drops what the
    /// run before it did not render).
    skip_before: u64,
    /// Event numbers this worker does not apply (a poison trial).
    trial_skip: std::ops::Range<u64>,
    /// A `/test/poison` in the block being gathered: its kind.
    poison: Option<u32>,
    writer: AudioWriter<'r>,
    log: LogReader<'r>,
    block: usize,
    left: Vec<f32>,
    right: Vec<f32>,
    events: Vec<BlockEvent>,
    /// Events of the block being rendered, in `events`.
    events_in_block: usize,
    snapshot: Vec<u8>,
    corrupt: u64,
    late: u64,
    /// An injected `slow` fault is active.
    slow: bool,
    /// An injected `diverge` fault was done.
    diverged: bool,
    /// Poison trials run in a fork of this process ([`Worker::fork_trials`]).
    fork_trials: Option<TrialForks>,
    /// In such a fork: the start request it runs (and no other).
    trial_of: Option<u32>,
    /// Where this worker's own DSP stands for forking trials: restored from
    /// checkpoint slot `.0` (frame `.1`) and rendered, unpublished, up to
    /// frame `.2`, the first of the suspect block. Every trial of that
    /// block forks from there and renders that block alone.
    trial_base: Option<(u32, u64, u64)>,
}

/// How this worker forks its poison trials.
#[derive(Debug)]
struct TrialForks {
    /// Its region, for the fork to record its refused calls in (a worker
    /// process's region lives as long as the process).
    region: &'static WorkerRegion,
    /// The fork takes SCHED_FIFO at this priority, if any.
    priority: Option<i32>,
    /// Forking needs one thread: counted here.
    threads: ThreadCounter,
    /// The sandbox this process runs in (the fork inherits it).
    sandbox: SandboxMode,
}

impl std::fmt::Debug for Worker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("dsp", &self.dsp.name())
            .field("running", &self.running)
            .field("frame", &self.frame)
            .finish_non_exhaustive()
    }
}

impl<'r> Worker<'r> {
    /// Takes a prepared DSP (all its allocation done), checks it fits the
    /// regions, pre-faults the buffers and reports [`WorkerState::Ready`]:
    /// a spare, waiting to be told where to start.
    ///
    /// # Errors
    /// [`WorkerError::Mismatch`] if the DSP is not the bus's, or its
    /// snapshots are not the size the regions were laid out for.
    pub fn new(region: &'r WorkerRegion, bus: &'r Bus, dsp: Box<dyn DynDsp>) -> Result<Self, WorkerError> {
        if dsp.name() != bus.dsp_name() {
            return Err(WorkerError::Mismatch(format!(
                "this program runs DSP '{}', the engine asked for '{}'",
                dsp.name(),
                bus.dsp_name()
            )));
        }
        let g = *region.geometry();
        if dsp.snapshot_len() as u64 != g.snapshot_bytes {
            return Err(WorkerError::Mismatch(format!(
                "the DSP's snapshot is {} bytes here, {} in the engine (another build or configuration?)",
                dsp.snapshot_len(),
                g.snapshot_bytes
            )));
        }
        let block = g.block as usize;
        let worker = Self {
            region,
            bus,
            dsp,
            running: false,
            frame: 0,
            skip_before: 0,
            trial_skip: 0..0,
            poison: None,
            writer: AudioWriter::new(region),
            log: LogReader::new(bus, 0),
            block,
            // vec! of zeros writes every page: pre-faulted.
            left: vec![0.0; block],
            right: vec![0.0; block],
            events: vec![BlockEvent::default(); g.log_slots as usize],
            events_in_block: 0,
            snapshot: vec![0; g.snapshot_bytes as usize],
            corrupt: 0,
            late: 0,
            slow: false,
            diverged: false,
            fork_trials: None,
            trial_of: None,
            trial_base: None,
        };
        region.control().pid.store(std::process::id(), Release);
        region.set_worker_state(WorkerState::Ready);
        Ok(worker)
    }
}

impl Worker<'static> {
    /// Runs each poison trial it is told to start in a fork of this process
    /// (which takes SCHED_FIFO at `rt_priority`, if given) instead of in
    /// itself: a trial that dies (it applied the poison) takes only the
    /// fork with it, and this worker stays a ready spare, for the next
    /// trial or to start as a replica. For [`Worker::run`] in a worker
    /// process of its own (one thread, counted by `threads`); without it
    /// trials run in-process. In a `sandbox` (which does not let it signal
    /// a fork by pid) it ends a fork with
    /// [`chronus_sys::sandbox::TRIAL_END_SIGNAL`]
    /// to its own process group, so it forks only if it leads one
    /// (`leads_group`).
    pub fn fork_trials(
        &mut self,
        rt_priority: Option<i32>,
        threads: ThreadCounter,
        sandbox: SandboxMode,
        leads_group: bool,
    ) {
        if sandbox != SandboxMode::Off && !leads_group {
            return;
        }
        self.fork_trials = Some(TrialForks { region: self.region, priority: rt_priority, threads, sandbox });
    }
}

impl<'r> Worker<'r> {
    /// Whether it renders (it was told where to start).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The next frame it will render.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// The DSP (for inspection).
    pub fn dsp(&self) -> &dyn DynDsp {
        &*self.dsp
    }

    fn start(&mut self, req: StartRequest) -> Result<(), StartError> {
        let frame = match req.kind {
            Some(StartKind::Fresh) if req.frame.is_multiple_of(self.block as u64) => {
                self.dsp.reset();
                self.log.seek(req.log_seq);
                self.skip_before = req.frame;
                req.frame
            }
            Some(StartKind::Checkpoint) => {
                let info = self.bus.read_checkpoint(req.checkpoint as usize, &mut self.snapshot)?;
                if !info.frame.is_multiple_of(self.block as u64) || info.frame != req.frame {
                    return Err(StartError::BadRequest);
                }
                self.dsp.restore(&self.snapshot).map_err(|_| StartError::Refused)?;
                self.log.seek(info.log_seq);
                self.skip_before = 0;
                info.frame
            }
            _ => return Err(StartError::BadRequest),
        };
        self.trial_base = None;
        self.frame = frame;
        self.begin_rendering(&req);
        Ok(())
    }

    /// Renders from `self.frame` on, skipping what `req` says: its ring
    /// and checksums start over (a worker may be told to start again while
    /// running, and a trial's fork inherits its worker's).
    fn begin_rendering(&mut self, req: &StartRequest) {
        self.trial_skip = req.skip_from..req.skip_to;
        self.writer = AudioWriter::starting_at(self.region, self.frame);
        self.region.clear_checksums();
        self.region.heartbeat().rendering.store(0, Release);
        self.region.set_log_read_seq(self.log.seq());
        self.running = true;
        self.region.set_worker_state(WorkerState::Running);
    }

    /// At a block boundary, writes the snapshot the supervisor asked for.
    fn serve_snapshot(&mut self) {
        if let Some((id, at)) = self.region.pending_snapshot()
            && self.frame >= at
        {
            self.dsp.snapshot(&mut self.snapshot);
            if self.region.write_snapshot(self.frame, self.log.seq(), &self.snapshot).is_ok() {
                self.region.snapshot_written(id);
            }
        }
    }

    /// Whether a block can be rendered now.
    fn renderable(&self) -> bool {
        self.running
            && self.bus.render_limit() >= self.frame + self.block as u64
            && self.writer.space() >= self.block as u64
    }

    /// Takes the block's events from the log. Returns false if the log
    /// lapped this worker.
    fn gather(&mut self) -> bool {
        let end = self.frame + self.block as u64;
        let mut n = 0usize;
        let first = self.log.seq();
        let hb = self.region.heartbeat();
        loop {
            match self.log.peek() {
                LogEntry::Event(seq, e) if e.frame < end => {
                    self.log.advance();
                    if e.frame < self.skip_before
                        || self.trial_skip.contains(&seq)
                        || self.bus.is_excised(seq)
                    {
                        continue;
                    }
                    if e.event.address == POISON {
                        // Strikes while the block renders, as a DSP bug on
                        // some parameter would: every event of the block is
                        // a suspect.
                        if self.bus.faults_enabled() {
                            self.poison = Some(e.event.choice(0));
                        }
                        continue;
                    }
                    if e.event.is_engine() || n == self.events.len() {
                        continue;
                    }
                    if e.frame < self.frame {
                        self.late += 1;
                    }
                    let offset = e.frame.saturating_sub(self.frame) as u32;
                    self.events[n] = BlockEvent { offset, event: e.event };
                    n += 1;
                }
                LogEntry::Corrupt => {
                    self.corrupt += 1;
                    self.log.advance();
                }
                LogEntry::Lapped => return false,
                LogEntry::Event(..) | LogEntry::Empty => break,
            }
        }
        hb.block_events_from.store(first, Relaxed);
        hb.block_events_to.store(self.log.seq(), Relaxed);
        self.events_in_block = n;
        true
    }

    /// Renders and publishes at most one block. Never allocates, locks or
    /// blocks (unless told to inflict a fault).
    pub fn step(&mut self) -> Step {
        if self.region.stop_requested() {
            return Step::Stop;
        }
        if let Some(kind) = self.region.requested_fault() {
            self.region.heartbeat().fault_at_ns.compare_exchange(0, monotonic_ns(), Relaxed, Relaxed).ok();
            self.diverged |= kind == FaultKind::Diverge;
            self.slow = kind == FaultKind::Slow || inflict(kind);
        }
        if let Some(req) = self.region.pending_start().filter(|r| self.trial_of.is_none_or(|id| id == r.id)) {
            let result = self.start(req);
            self.region.start_finished(req.id, result.err());
            if result.is_ok() {
                return Step::Started;
            }
        }
        if !self.running {
            return Step::Idle;
        }
        self.serve_snapshot();
        if !self.renderable() {
            return Step::Idle;
        }
        let started = monotonic_ns();
        let hb = self.region.heartbeat();
        hb.rendering.store(self.frame + 1, Release);
        if !self.gather() {
            self.region.set_worker_state(WorkerState::Failed);
            return Step::Lapped;
        }
        if let Some(kind) = self.poison.take() {
            poison(kind);
        }
        let events = &self.events[..self.events_in_block];
        self.dsp.render(Block { frame: self.frame, left: &mut self.left, right: &mut self.right, events });
        if self.diverged {
            // A silent corruption: the output no longer agrees with the
            // journal (a bit flip, a bug).
            self.left[0] += 1.0e-3;
        }
        // Cannot fail: a block fits (checked), and only this worker writes.
        let _ = self.writer.write(&self.left, &self.right);
        let hash = checksum_samples(HASH_SEED, &self.left, &self.right);
        self.region.publish_checksum(self.frame / self.block as u64, hash);
        self.frame += self.block as u64;
        self.region.set_log_read_seq(self.log.seq());
        if self.slow {
            // Three block periods per block: far over any budget.
            let period =
                3 * self.block as u64 * 1_000_000_000 / u64::from(self.region.geometry().sample_rate.max(1));
            std::thread::sleep(Duration::from_nanos(period));
        }
        let end = monotonic_ns();
        let stats = self.dsp.stats();
        hb.events_applied.store(stats.applied, Relaxed);
        hb.active.store(u64::from(stats.active), Relaxed);
        hb.events_rejected.store(stats.rejected + self.corrupt, Relaxed);
        hb.events_late.store(self.late, Relaxed);
        hb.render_ns_last.store(end - started, Relaxed);
        hb.render_ns_max.fetch_max(end - started, Relaxed);
        hb.last_progress_ns.store(end, Relaxed);
        hb.rendering.store(0, Release);
        hb.blocks.fetch_add(1, Release);
        Step::Rendered(self.block)
    }

    /// Steps until a stop is requested, sleeping on the region's wake futex
    /// while idle; then reports [`WorkerState::Stopped`]. With
    /// [`Worker::fork_trials`], a poison trial it is told to start runs in a
    /// fork, which this loop watches until it ends.
    ///
    /// # Errors
    /// [`WorkerError::Lapped`] if the log went a lap past this worker.
    pub fn run(&mut self) -> Result<(), WorkerError> {
        loop {
            if let Some(req) = self.trial_to_fork() {
                // Read before the fork: an end asked for after it is this
                // trial's (one asked for an earlier trial came before this
                // start request, so it is seen here).
                let ends = self.region.trial_end_requests();
                if let Err(e) = self.position_for_trial(&req) {
                    self.region.start_finished(req.id, Some(e));
                    continue;
                }
                let forked =
                    self.fork_trials.as_ref().map(|f| chronus_sys::process::fork_single_threaded(&f.threads));
                match forked.unwrap_or_else(|| Err(std::io::ErrorKind::Unsupported.into())) {
                    Ok(Some(child)) => {
                        if self.oversee_trial(child, req.id, ends) == Step::Stop {
                            break;
                        }
                        continue;
                    }
                    Ok(None) => self.become_trial(&req),
                    // Run it here, then, from the checkpoint (it may die
                    // in it, as before).
                    Err(_) => self.fork_trials = None,
                }
            }
            match self.step() {
                Step::Rendered(_) | Step::Started => {}
                Step::Stop => break,
                Step::Lapped => return Err(WorkerError::Lapped),
                Step::Idle => {
                    let (region, bus) = (self.region, self.bus);
                    let next = self.frame + self.block as u64;
                    let running = self.running;
                    let writer = &self.writer;
                    let block = self.block as u64;
                    region.worker_sleep(IDLE_SLEEP, || {
                        region.stop_requested()
                            || (running && bus.render_limit() >= next && writer.space() >= block)
                            || region.pending_snapshot().is_some()
                            || region.pending_start().is_some()
                            || region.requested_fault().is_some()
                    });
                }
            }
        }
        self.region.set_worker_state(WorkerState::Stopped);
        Ok(())
    }

    /// A trial start to run in a fork: only a spare (not rendering) that
    /// forks trials and is not itself a trial.
    fn trial_to_fork(&self) -> Option<StartRequest> {
        if self.fork_trials.is_none() || self.running || self.trial_of.is_some() {
            return None;
        }
        self.region.pending_start().filter(StartRequest::is_trial)
    }

    /// Brings this worker's DSP to the first frame of the block whose
    /// events `req` skips some of (the suspect block): from the checkpoint
    /// it names, rendering the blocks before (which every replica rendered)
    /// without publishing them. Nothing to do when already there (the
    /// trials of a block share it). Each block's render time goes to the
    /// heartbeat, as the measure of how long a block takes.
    fn position_for_trial(&mut self, req: &StartRequest) -> Result<(), StartError> {
        let block = self.block as u64;
        let LogEntry::Event(_, first) = LogReader::new(self.bus, req.skip_from).peek() else {
            return Err(StartError::BadRequest);
        };
        let target = first.frame - first.frame % block;
        let key = (req.checkpoint, req.frame, target);
        if self.trial_base == Some(key) {
            return Ok(());
        }
        self.trial_base = None;
        let info = self.bus.read_checkpoint(req.checkpoint as usize, &mut self.snapshot)?;
        if info.frame != req.frame || !info.frame.is_multiple_of(block) || info.frame > target {
            return Err(StartError::BadRequest);
        }
        self.dsp.restore(&self.snapshot).map_err(|_| StartError::Refused)?;
        self.log.seek(info.log_seq);
        (self.frame, self.skip_before, self.trial_skip) = (info.frame, 0, 0..0);
        let hb = self.region.heartbeat();
        while self.frame < target {
            let started = monotonic_ns();
            // A poison before the suspect block is impossible (every
            // replica rendered those blocks); never risk this worker on one.
            if !self.gather() || self.poison.take().is_some() {
                return Err(StartError::Refused);
            }
            let events = &self.events[..self.events_in_block];
            self.dsp.render(Block {
                frame: self.frame,
                left: &mut self.left,
                right: &mut self.right,
                events,
            });
            self.frame += block;
            let took = monotonic_ns() - started;
            hb.render_ns_last.store(took, Relaxed);
            hb.render_ns_max.fetch_max(took, Relaxed);
        }
        self.trial_base = Some(key);
        Ok(())
    }

    /// In the fork: dies with this worker, renders at its priority, and
    /// runs the trial `req` (from the suspect block, where
    /// [`Worker::position_for_trial`] left the DSP) and nothing else.
    fn become_trial(&mut self, req: &StartRequest) {
        let parent = chronus_sys::process::parent_pid();
        // Without it the trial could outlive this worker, and it would
        // never be reaped: dying with it is the one acceptable failure.
        if crate::die_with_parent(Some(parent)).is_err() {
            std::process::exit(i32::from(crate::EXIT_ORPHANED));
        }
        let forks = self.fork_trials.as_ref();
        if let Some(f) = forks.filter(|f| f.sandbox != SandboxMode::Off) {
            // Ended by its worker's signal to the group; what the sandbox
            // refuses it is recorded as its own, not its worker's.
            let _ = chronus_sys::sandbox::accept_trial_end_signal();
            let _ = f.region.record_forbidden_calls(Recorder::Trial, f.sandbox == SandboxMode::Audit);
        }
        if let Some(priority) = forks.and_then(|f| f.priority) {
            let _ = chronus_sys::sched::set_thread_fifo(priority);
        }
        self.trial_of = Some(req.id);
        self.region.set_trial_pid(std::process::id());
        self.begin_rendering(req);
        self.region.start_finished(req.id, None);
    }

    /// In this worker, while its fork `child` runs the trial of start
    /// request `start_id`: ends it when told to (a stop, another start, an
    /// end asked for since the count was `ends`), else waits for it to end
    /// by itself (a poison). Reports how it ended, and is a ready spare
    /// again.
    fn oversee_trial(&mut self, child: u32, start_id: u32, ends: u32) -> Step {
        use chronus_sys::process::{Exit, kill, wait_child};
        let by_group = self.fork_trials.as_ref().is_some_and(|f| f.sandbox != SandboxMode::Off);
        let mut stop = false;
        let (status, told) = loop {
            let told = self.region.stop_requested()
                || self.region.trial_end_requests() != ends
                || self.region.pending_start().is_some_and(|r| r.id != start_id);
            if told {
                stop |= self.region.stop_requested();
                // Sandboxed, it may signal no pid but its own: its forks
                // take the trial end signal to its group (it blocks it).
                let _ = if by_group {
                    chronus_sys::sandbox::end_trial_forks()
                } else {
                    kill(child, chronus_sys::SIGKILL)
                };
                break (wait_child(child, true), true);
            }
            match wait_child(child, false) {
                Ok(None) => std::thread::sleep(TRIAL_POLL),
                other => break (other, false),
            }
        };
        let (code, signal) = match status {
            Ok(Some(Exit::Code(code))) => (Some(code), None),
            Ok(Some(Exit::Signal(signal))) => (None, Some(signal)),
            _ => (None, None),
        };
        // A fork that died before it started (its restore crashed) leaves
        // the request unanswered: refused, so it is not forked again.
        if self.region.pending_start().is_some_and(|r| r.id == start_id) {
            self.region.start_finished(start_id, Some(StartError::Refused));
        }
        self.region.trial_ended(start_id, code, signal, told);
        self.region.set_worker_state(WorkerState::Ready);
        if stop { Step::Stop } else { Step::Idle }
    }
}

/// How often a worker looks at its trial's fork and at the supervisor's
/// requests while the fork runs.
const TRIAL_POLL: Duration = Duration::from_micros(100);
