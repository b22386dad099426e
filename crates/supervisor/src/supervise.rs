//! The supervisor thread: watches the workers (pidfd poll + watchdog),
//! switches the active on a failure, and brings a replacement back into
//! lockstep (see `join.rs`). It spawns every worker itself: a worker's
//! PR_SET_PDEATHSIG fires when the *thread* that spawned it exits, so that
//! thread must live as long as the engine.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chronus_ipc::{FaultKind, WorkerState, monotonic_ns};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::config::EngineConfig;
use crate::events::{DetectedBy, FailoverEvent, Role};
use crate::join::Phase;
use crate::shared::{DEAD, JOINING, LIVE, Shared};
use crate::status::{Health, Status};
use crate::watchdog::{Watch, Watchdog};
use crate::{EngineError, sys};

/// Priority of the supervisor thread under SCHED_FIFO: above the workers, so
/// a worker spinning at real-time priority cannot starve its killer.
pub(crate) const SUPERVISOR_PRIORITY: i32 = 80;
/// Priority of the workers under SCHED_FIFO.
pub(crate) const WORKER_PRIORITY: i32 = 60;

/// Which worker a request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The worker whose audio is played.
    Active,
    /// The verified standby.
    Standby,
}

/// Requests from the API to the supervisor thread.
pub(crate) enum Request {
    /// Make the worker inflict `kind` on itself.
    Inject(Target, FaultKind, mpsc::Sender<Result<u32, EngineError>>),
    /// Send `signal` to the worker from outside (as `kill` would).
    Signal(Target, i32, mpsc::Sender<Result<u32, EngineError>>),
    /// A fault is about to hit worker `pid` from outside: remember when.
    Expect(u32, FaultKind, u64),
}

/// A running worker process.
pub(crate) struct Proc {
    pub child: chronus_worker::WorkerProcess,
    pub pidfd: OwnedFd,
    pub pid: u32,
    pub generation: u64,
    pub spawned: Instant,
    pub ready: bool,
}

/// The supervisor's bookkeeping for one slot.
#[derive(Default)]
pub(crate) struct SlotCtl {
    pub proc: Option<Proc>,
    pub phase: Phase,
    pub watch: Watch,
    /// Failover events that complete when this slot's replacement joins.
    pub pending_events: Vec<usize>,
    /// Consecutive failed joins (for backoff).
    pub failures: u32,
    /// The supervisor is killing this worker: why and when it decided.
    pub killing: Option<(DetectedBy, u64)>,
    /// A fault sent from outside: when and which.
    pub sent_fault: Option<(u64, FaultKind)>,
    /// A standby's blocks below this were compared with the active's.
    pub compared_through: u64,
}

pub(crate) struct Supervisor {
    pub shared: Arc<Shared>,
    pub cfg: EngineConfig,
    pub ctl: [SlotCtl; 2],
    pub events: Vec<FailoverEvent>,
    pub next_generation: u64,
    pub requests: mpsc::Receiver<Request>,
    pub status: Arc<Mutex<Status>>,
    pub worker_priority: Option<i32>,
    /// Underrun frames at the last change, and when it changed.
    pub underruns_seen: (u64, Instant),
    /// The health last published, to log every change.
    pub last_health: Option<Health>,
    /// The watchdog's own bookkeeping across slots.
    pub watchdog: Watchdog,
}

/// How long an underrun keeps the health `Degraded`.
pub const UNDERRUN_WINDOW: Duration = Duration::from_secs(10);

impl Supervisor {
    /// Spawns a worker into slot `i` (region reset for a new generation).
    pub fn spawn(&mut self, i: usize, join: bool) -> Result<(), EngineError> {
        let region = &self.shared.slots[i].region;
        let generation = self.next_generation;
        self.next_generation += 1;
        region.reset(generation);
        region.enable_faults(self.cfg.faults_enabled);
        region.set_join(join);
        let child = chronus_worker::spawn_worker(&self.cfg.worker_exe, region, self.worker_priority)
            .map_err(|e| {
                EngineError::WorkerStart(format!("cannot run {}: {e}", self.cfg.worker_exe.display()))
            })?;
        let pid = child.id();
        let pidfd = sys::pidfd_open(pid).map_err(|e| EngineError::WorkerStart(format!("pidfd_open: {e}")))?;
        self.ctl[i].proc =
            Some(Proc { child, pidfd, pid, generation, spawned: Instant::now(), ready: false });
        self.ctl[i].watch = Watch::started();
        self.ctl[i].killing = None;
        self.ctl[i].sent_fault = None;
        Ok(())
    }

    /// Starts the first two workers from silence at frame 0 and waits until
    /// both are ready.
    pub fn start_workers(&mut self) -> Result<(), EngineError> {
        for i in 0..2 {
            self.spawn(i, false)?;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for i in 0..2 {
            let region = &self.shared.slots[i].region;
            let left = deadline.saturating_duration_since(Instant::now());
            if region.wait_worker_ready(left) != Some(WorkerState::Ready) {
                self.kill_all();
                return Err(EngineError::WorkerStart(format!("worker {i} did not become ready")));
            }
            if let Some(p) = &mut self.ctl[i].proc {
                p.ready = true;
            }
            self.shared.slots[i].set_state(LIVE);
        }
        self.shared.active.store(0, Release);
        Ok(())
    }

    /// Sends SIGKILL to slot `i`'s worker, remembering why and when.
    pub fn kill(&mut self, i: usize, why: DetectedBy) {
        let ctl = &mut self.ctl[i];
        if ctl.killing.is_some() {
            return;
        }
        if let Some(p) = &ctl.proc {
            ctl.killing = Some((why, monotonic_ns()));
            let _ = sys::pidfd_send_signal(p.pidfd.as_fd(), libc::SIGKILL);
        }
    }

    fn kill_all(&mut self) {
        for i in 0..2 {
            if let Some(mut p) = self.ctl[i].proc.take() {
                let _ = sys::pidfd_send_signal(p.pidfd.as_fd(), libc::SIGKILL);
                let _ = p.child.wait();
            }
        }
    }

    /// Slot `i`'s worker exited: record it, switch the active if needed,
    /// start a replacement.
    fn on_exit(&mut self, i: usize) {
        let now = monotonic_ns();
        let Some(mut proc) = self.ctl[i].proc.take() else { return };
        let exit = match proc.child.wait() {
            Ok(status) => chronus_worker::WorkerProcess::describe(&status),
            Err(e) => format!("wait failed: {e}"),
        };
        let slot = &self.shared.slots[i];
        let role = match slot.state() {
            LIVE if self.shared.active() == i => Role::Active,
            LIVE => Role::Standby,
            _ => Role::Joining,
        };
        let (detected_by, t_detect) = self.ctl[i].killing.take().unwrap_or((DetectedBy::Pidfd, now));
        let injected_at = slot.region.heartbeat().fault_at_ns.load(Acquire);
        let injected = slot.region.requested_fault();
        let sent = self.ctl[i].sent_fault.take();
        let t_fault = match (injected_at, sent) {
            (t, _) if t != 0 => t,
            (_, Some((t, _))) => t,
            _ => t_detect,
        };
        slot.set_state(DEAD);
        let mut t_switch = t_detect;
        if role == Role::Active && self.shared.slots[i ^ 1].state() == LIVE {
            self.shared.active.store((i ^ 1) as u8, Release);
            t_switch = monotonic_ns();
        }
        let event = FailoverEvent {
            slot: i,
            generation: proc.generation,
            pid: proc.pid,
            role,
            fault: injected.or(sent.map(|(_, k)| k)),
            detected_by,
            exit: exit.clone(),
            t_fault,
            t_detect,
            t_switch,
            t_respawn: None,
            t_rejoin: None,
        };
        let after = if t_fault == t_detect {
            String::from("(fault time unknown: it came from outside)")
        } else {
            format!("after {:.0} µs", event.detection_us())
        };
        tracing::warn!(
            "worker {i} (pid {}, generation {}, {role:?}) {exit}; detected by {detected_by:?} {after}; playing from slot {}",
            proc.pid,
            proc.generation,
            self.shared.active()
        );
        self.ctl[i].pending_events.push(self.events.len());
        self.events.push(event);
        if role == Role::Joining {
            self.ctl[i].failures += 1;
        }
        if !self.shared.stop.load(Acquire) {
            self.restart_join(i);
        }
    }

    fn handle_request(&mut self, request: Request) {
        let (target, reply) = match &request {
            Request::Inject(t, _, r) | Request::Signal(t, _, r) => (*t, r.clone()),
            Request::Expect(pid, kind, at) => {
                if let Some(c) = self.ctl.iter_mut().find(|c| c.proc.as_ref().is_some_and(|p| p.pid == *pid))
                {
                    c.sent_fault = Some((*at, *kind));
                }
                return;
            }
        };
        let active = self.shared.active();
        let i = if target == Target::Active { active } else { active ^ 1 };
        let live = self.shared.slots[i].state() == LIVE;
        let Some(proc) = self.ctl[i].proc.as_ref().filter(|_| live) else {
            let role = if target == Target::Active { "active" } else { "standby" };
            let _ = reply.send(Err(EngineError::NoSuchWorker(role)));
            return;
        };
        let pid = proc.pid;
        let result = match request {
            Request::Inject(_, kind, _) => {
                if self.shared.slots[i].region.inject_fault(kind) {
                    Ok(pid)
                } else {
                    Err(EngineError::FaultsDisabled)
                }
            }
            Request::Expect(..) => return,
            Request::Signal(_, signal, _) => {
                let kind = match signal {
                    libc::SIGSTOP => FaultKind::Stop,
                    libc::SIGSEGV => FaultKind::Segv,
                    libc::SIGABRT => FaultKind::Abort,
                    _ => FaultKind::Kill,
                };
                self.ctl[i].sent_fault = Some((monotonic_ns(), kind));
                sys::pidfd_send_signal(proc.pidfd.as_fd(), signal)
                    .map(|()| pid)
                    .map_err(|e| EngineError::WorkerStart(format!("signal: {e}")))
            }
        };
        let _ = reply.send(result);
    }

    /// Compares the standby's newest block checksums with the active's; a
    /// standby that disagrees has diverged and is replaced.
    fn compare_standby(&mut self) {
        let a = self.shared.active();
        let s = a ^ 1;
        if self.shared.slots[a].state() != LIVE || self.shared.slots[s].state() != LIVE {
            return;
        }
        let (active, standby) = (&self.shared.slots[a].region, &self.shared.slots[s].region);
        let block = u64::from(self.cfg.block);
        let newest = active.audio_write_frame().min(standby.audio_write_frame()) / block;
        let mut next = self.ctl[s]
            .compared_through
            .max(newest.saturating_sub(chronus_ipc::layout::CHECKSUMS as u64 / 2));
        while next < newest {
            match (active.checksum(next), standby.checksum(next)) {
                (Some(x), Some(y)) if x != y => {
                    tracing::error!(
                        "standby (slot {s}) diverged from the active at block {next}; replacing it"
                    );
                    self.kill(s, DetectedBy::Divergence);
                    return;
                }
                _ => next += 1,
            }
        }
        self.ctl[s].compared_through = next;
    }

    fn publish_status(&mut self) {
        let underruns = self.shared.underrun_frames.load(Relaxed);
        if underruns != self.underruns_seen.0 {
            self.underruns_seen = (underruns, Instant::now());
        }
        let recent_underrun = underruns > 0 && self.underruns_seen.1.elapsed() < UNDERRUN_WINDOW;
        let quarantined = self.ctl.iter().any(|c| matches!(c.phase, Phase::Quarantined));
        let backing_off = self.ctl.iter().any(|c| matches!(c.phase, Phase::Backoff { .. }));
        let s = &self.shared;
        let active = s.active();
        let pid = |i: usize| self.ctl[i].proc.as_ref().filter(|_| s.slots[i].state() == LIVE).map(|p| p.pid);
        let active_pid = pid(active);
        let standby_pid = pid(active ^ 1);
        let health = match (
            active_pid.is_some() || standby_pid.is_some(),
            active_pid.is_some() && standby_pid.is_some(),
        ) {
            (false, _) => Health::Critical,
            (true, false) => Health::Degraded,
            (true, true) if recent_underrun || backing_off || quarantined => Health::Degraded,
            (true, true) => Health::Healthy,
        };
        let status =
            Status {
                health,
                active_pid,
                standby_pid,
                joining_pid: self.ctl.iter().enumerate().find_map(|(i, c)| {
                    c.proc.as_ref().filter(|_| s.slots[i].state() == JOINING).map(|p| p.pid)
                }),
                failovers: self.events.len() as u64,
                frames_played: s.frame.load(Relaxed),
                underrun_frames: s.underrun_frames.load(Relaxed),
                machine_stall_frames: s.machine_stall_frames.load(Relaxed),
                fallback_frames: s.fallback_frames.load(Relaxed),
                sample_rate: self.cfg.sample_rate,
                block: self.cfg.block,
                voices: self.cfg.voices,
                voices_in_use: s.slots[active].region.heartbeat().voices_in_use.load(Relaxed) as u32,
                quarantined,
                backing_off,
            };
        // A stopping engine has no workers by design: not a change to log.
        if self.last_health != Some(health) && !self.shared.stop.load(Acquire) {
            let was = self.last_health.map_or_else(|| "starting".to_owned(), |h| h.to_string());
            match health {
                Health::Healthy => tracing::info!("health: {was} -> {health}"),
                _ => tracing::warn!("health: {was} -> {health}"),
            }
            self.last_health = Some(health);
        }
        if let Ok(mut st) = self.status.lock() {
            *st = status;
        }
    }

    /// The supervisor loop: until the engine stops.
    pub fn run(mut self) -> Vec<FailoverEvent> {
        while !self.shared.stop.load(Acquire) {
            let mut fds = Vec::with_capacity(2);
            let mut which = Vec::with_capacity(2);
            for (i, c) in self.ctl.iter().enumerate() {
                if let Some(p) = &c.proc {
                    fds.push(PollFd::new(p.pidfd.as_fd(), PollFlags::POLLIN));
                    which.push(i);
                }
            }
            let _ = poll(&mut fds, PollTimeout::from(1u8));
            let exited: Vec<usize> = fds
                .iter()
                .zip(&which)
                .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|(_, i)| *i)
                .collect();
            drop(fds);
            // Requests first: an expected outside fault must be known before
            // the exit it causes is recorded.
            while let Ok(request) = self.requests.try_recv() {
                self.handle_request(request);
            }
            for i in exited {
                self.on_exit(i);
            }
            if self.shared.stop.load(Acquire) {
                // The output no longer consumes: progress checks would lie.
                break;
            }
            self.watch_for_stalls();
            for i in 0..2 {
                self.step_join(i);
            }
            self.compare_standby();
            self.publish_status();
        }
        self.shutdown();
        self.publish_status();
        self.events
    }

    /// Asks every worker to stop, waits a little, kills what is left; reaps.
    fn shutdown(&mut self) {
        for (i, c) in self.ctl.iter().enumerate() {
            if c.proc.is_some() {
                self.shared.slots[i].region.request_stop();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for c in &mut self.ctl {
            if let Some(mut p) = c.proc.take() {
                loop {
                    match p.child.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                        _ => {
                            let _ = sys::pidfd_send_signal(p.pidfd.as_fd(), libc::SIGKILL);
                            let _ = p.child.wait();
                            break;
                        }
                    }
                }
            }
        }
    }
}
