//! The supervisor thread: the process I/O around the failover policy. It
//! watches the workers (death words, pidfds and the watchdog's observations),
//! carries out what the policy decides (kill, switch the active, spawn and
//! start a replacement, promote it), and publishes the status. Its spawner
//! thread (`spawner`) starts the workers, off the real-time thread, and
//! lives as long as it: a worker's PR_SET_PDEATHSIG fires when the *thread*
//! that spawned it exits.

mod checkpoints;
mod common_mode;
mod failover;
mod joins;
mod procs;
mod referee;
mod slot;
mod spawner;

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chronus_ipc::{FaultKind, StartKind, WorkerState};
use chronus_sys::clock::monotonic_ns;

use crate::EngineError;
use crate::collector::Note;
use crate::config::EngineConfig;
use crate::events::Cut;
use crate::events::History;
use crate::policy::checkpoint::{CheckpointConfig, Checkpoints};
use crate::policy::common_mode::{CommonMode, CommonModeConfig};
use crate::policy::determinism::Determinism;
use crate::policy::health::{HealthFacts, UNDERRUN_WINDOW, UnderrunWindow, health};
use crate::policy::join::JoinConfig;
use crate::policy::placement::{self, Placement};
use crate::policy::referee::Referee;
use crate::policy::restart::RestartPolicy;
use crate::policy::watchdog::{Watchdog, WatchdogConfig};
use crate::policy::{MAX_SLOTS, Nanos};
use crate::shared::{JOINING, Shared};
use crate::status::{Health, Status};
pub(crate) use procs::{Fate, Proc};
use slot::{PENDING, Slot};

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
    /// A verified standby.
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

/// What the workers' sandbox refused, as the supervisor saw it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ForbiddenTally {
    /// Workers killed by SIGSYS.
    pub kills: u64,
    /// The last system call (number) one of them was refused.
    pub last: Option<u32>,
}

/// The poison trial running, if one is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TrialRun {
    /// The slot whose spare runs it (in a fork of itself, or in itself).
    pub slot: usize,
    /// It was ended as hung (its worker was told to).
    pub hung: bool,
}

/// The supervisor thread's state. Each worker slot's is in its [`Slot`];
/// the rest is the engine's.
pub(crate) struct Supervisor {
    shared: Arc<Shared>,
    cfg: EngineConfig,
    /// Starts the workers, off this thread.
    spawner: spawner::Spawner,
    /// Every slot: its phase, its worker, what is in flight.
    slots: Vec<Slot>,
    restart_policy: RestartPolicy,
    join_cfg: JoinConfig,
    watchdog: Watchdog,
    determinism: Determinism,
    checkpoints: Checkpoints,
    checkpoint_cfg: CheckpointConfig,
    /// The checkpoint request in flight: the snapshot request ids of the
    /// replicas asked, and when it was sent (monotonic ns).
    checkpoint_reqs: [Option<(usize, u32)>; 2],
    checkpoint_sent: u64,
    /// Checkpoints stored, and the time they took in all (request to
    /// stored, ns): their cost.
    checkpoint_stats: (u64, u64),
    history: History,
    /// Serials of the failover events that complete when the engine is
    /// redundant again.
    pending_redundant: Vec<u64>,
    requests: mpsc::Receiver<Request>,
    status: Arc<Mutex<Status>>,
    underruns: UnderrunWindow,
    last_health: Option<Health>,
    next_generation: u64,
    worker_priority: Option<i32>,
    /// In the cycle, with two CPUs or more: the CPU numbers this process
    /// may run on, to place the workers over (`place_replicas`); `None`:
    /// nothing is placed. Read once, here.
    placement_cpus: Option<Vec<usize>>,
    /// Notes for the journal (excisions, resets).
    notes: rtrb::Producer<Note>,
    /// Common-mode faults: suspect blocks, trials, cuts (the policy).
    common: CommonMode,
    /// The poison trial running: the one place its state is kept.
    trial: Option<TrialRun>,
    /// The next replacement starts from a reset DSP (the DSP fails by
    /// itself at a block no checkpoint can get past).
    reset_next: bool,
    /// Commands cut out, for the API to answer their senders.
    cuts: rtrb::Producer<Cut>,
    /// Workers the sandbox killed, and the last call it refused.
    forbidden: ForbiddenTally,
    /// The last promotion of a replacement: when, and whether it made the
    /// engine redundant again (for a fault whose pidfd tells after it).
    last_promotion: Option<(Nanos, bool)>,
    /// This kernel waits on death words (`futex_waitv`); cleared the first
    /// time it cannot.
    death_words: bool,
    /// The dispute between two replicas being refereed, if one is.
    referee: Referee,
    /// An outvoted replica whose played frames are still to be counted.
    wrong_play: Option<referee::WrongPlay>,
}

impl Supervisor {
    pub fn new(
        shared: Arc<Shared>,
        cfg: EngineConfig,
        bus_fd: OwnedFd,
        requests: mpsc::Receiver<Request>,
        status: Arc<Mutex<Status>>,
        notes: rtrb::Producer<Note>,
        cuts: rtrb::Producer<Cut>,
    ) -> Result<Self, EngineError> {
        let n = shared.slots.len();
        let ns = |d: Duration| d.as_nanos() as Nanos;
        let cfg_hang = cfg.hang_timeout;
        let cfg_block = cfg.block_duration();
        let placement_cpus = match chronus_sys::sched::allowed_cpus() {
            Ok(cpus) if cfg.latency.budget().is_some() && cpus.len() >= 2 => Some(cpus),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("cannot read this process's CPUs ({e}): the workers are not placed");
                None
            }
        };
        let checkpoint_cfg = CheckpointConfig {
            every: u64::from(cfg.checkpoint_every),
            timeout: Duration::from_millis(500).as_nanos() as Nanos,
        };
        let watchdog = Watchdog::new(WatchdogConfig {
            hang_timeout: ns(cfg.hang_timeout),
            slow_budget: (ns(cfg.block_duration()) as f64 * cfg.slow_factor) as Nanos,
            slow_blocks: cfg.slow_blocks,
            common_patience: crate::COMMON_STALL_PATIENCE,
            block: u64::from(cfg.block),
        });
        let spawner = spawner::Spawner::start(shared.clone(), cfg.worker.clone(), bus_fd, cfg.sandbox)?;
        Ok(Self {
            restart_policy: RestartPolicy {
                base: ns(cfg.backoff_base),
                max: ns(cfg.backoff_max),
                quarantine_after: cfg.quarantine_after,
            },
            join_cfg: JoinConfig {
                step_timeout: crate::policy::join::JOIN_STEP_TIMEOUT,
                verify_blocks: 1,
                block: u64::from(cfg.block),
            },
            history: History::new(cfg.max_events),
            slots: (0..n).map(|i| Slot::new(i, shared.clone())).collect(),
            shared,
            cfg,
            spawner,
            watchdog,
            determinism: Determinism::default(),
            checkpoints: Checkpoints::default(),
            checkpoint_cfg,
            checkpoint_reqs: [None; 2],
            checkpoint_sent: 0,
            checkpoint_stats: (0, 0),
            pending_redundant: Vec::with_capacity(PENDING),
            requests,
            status,
            underruns: UnderrunWindow::default(),
            last_health: None,
            next_generation: 1,
            worker_priority: None,
            placement_cpus,
            notes,
            common: CommonMode::new(CommonModeConfig {
                hold_timeout: ns(cfg_hang),
                max_trials: crate::POISON_TRIALS,
                trial_patience: ns(cfg_block),
            }),
            trial: None,
            reset_next: false,
            cuts,
            forbidden: ForbiddenTally::default(),
            last_promotion: None,
            death_words: true,
            referee: Referee::default(),
            wrong_play: None,
        })
    }

    /// Spawns every slot's worker, starts the replicas from a reset DSP at
    /// frame 0, takes the first checkpoint (frame 0) and waits until all of
    /// it is done: the other slots are ready spares.
    pub fn start_workers(&mut self) -> Result<(), EngineError> {
        let replicas = self.cfg.replicas as usize;
        for i in 0..self.slots.len() {
            self.spawn(i)?;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.slots.iter().any(|s| s.spawning.is_some()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(spawned) = self.spawner.collect_within(left) else {
                self.kill_all();
                return Err(EngineError::WorkerStart("the workers were not spawned in time".into()));
            };
            if let Err(e) = self.take_spawned(spawned) {
                self.kill_all();
                return Err(e);
            }
        }
        let mut ids = [0u32; MAX_SLOTS];
        for (i, id) in ids.iter_mut().enumerate().take(self.slots.len()) {
            let region = &self.shared.slots[i].region;
            let left = deadline.saturating_duration_since(Instant::now());
            if region.wait_worker_ready(left) != Some(WorkerState::Ready) {
                let why = self.start_failure(i);
                self.kill_all();
                return Err(EngineError::WorkerStart(format!(
                    "{why}: it did not become ready (see its message above)"
                )));
            }
            if i < replicas {
                *id = region.request_start(StartKind::Fresh, 0, 0, 0);
            }
        }
        let wait = |done: &dyn Fn() -> bool, what: &str| {
            while !done() {
                if Instant::now() > deadline {
                    return Err(EngineError::WorkerStart(what.to_owned()));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Ok(())
        };
        let now = monotonic_ns();
        for (i, &id) in ids.iter().enumerate().take(replicas) {
            let region = &self.shared.slots[i].region;
            if wait(&|| region.start_outcome(id).is_some(), "").is_err() {
                let why = self.start_failure(i);
                self.kill_all();
                return Err(EngineError::WorkerStart(format!("{why}: it did not start rendering")));
            }
            if region.sandbox() != self.cfg.sandbox {
                let seen = region.sandbox().name();
                self.kill_all();
                return Err(EngineError::WorkerStart(format!(
                    "worker {i} runs with its sandbox {seen}, not {} as asked",
                    self.cfg.sandbox.name()
                )));
            }
            self.slots[i].start_live();
            self.watchdog.watch(i, now, true);
        }
        for i in replicas..self.slots.len() {
            self.slots[i].start_spare();
        }
        self.shared.active.store(0, Release);
        // The first checkpoint, at frame 0 (nothing may render yet: the
        // render limit is 0).
        let id = self.shared.slots[0].region.request_snapshot(0);
        let region = &self.shared.slots[0].region;
        if let Err(e) = wait(&|| region.snapshot_done(id), "the first checkpoint was not written") {
            self.kill_all();
            return Err(e);
        }
        if let Some(slot) = self.checkpoints.begin(0, now) {
            match self.shared.bus.store_checkpoint(slot, region) {
                Ok(info) => self.checkpoints.stored(info.frame, info.log_seq, now),
                Err(_) => self.checkpoints.failed(),
            }
        }
        self.publish_checkpoint_floor();
        Ok(())
    }

    /// The supervisor loop: until the engine stops.
    pub fn run(mut self) -> History {
        while !self.shared.stop.load(Acquire) {
            // While a replica is on its way, look often: each step of a join
            // is a pass.
            let busy = self.slots.iter().any(|s| s.join().starting());
            let exits = self.wait_exits(if busy { 200 } else { 1_000 });
            self.collect_spawns(monotonic_ns());
            // Requests first: an expected outside fault must be known before
            // the exit it causes is recorded.
            while let Ok(request) = self.requests.try_recv() {
                self.handle_request(request);
            }
            for i in 0..self.slots.len() {
                if exits.died & (1 << i) != 0 {
                    self.on_death_word(i);
                }
                if exits.exited & (1 << i) != 0 {
                    self.on_exit(i);
                }
            }
            if self.shared.stop.load(Acquire) {
                // The output no longer consumes: progress checks would lie.
                break;
            }
            let now = monotonic_ns();
            self.watch(now);
            self.collect_trial_end(now);
            self.step_common_mode(now);
            self.step_referee(now);
            self.step_joins(now);
            self.compare_replicas(now);
            self.step_checkpoints(now);
            self.place_replicas();
            self.publish_status(now);
        }
        self.shutdown();
        self.publish_status(monotonic_ns());
        self.history
    }

    /// In the cycle, places the workers on CPUs (`policy::placement`): each
    /// live replica on a CPU of its own, every other worker (a spare, a
    /// joining replacement catching up, a trial) on the CPUs no live replica
    /// holds. The replicas render at the same real-time priority inside the
    /// same cycle, and FIFO does not share a priority level: unplaced, a
    /// replica woken on the CPU where a slow one spins, or where a spare
    /// catches up, waits behind it and misses the cycle. Pipelined, nothing
    /// is placed (a period of slack absorbs the wait). System calls only
    /// when a worker's placement changes, never in the steady state.
    fn place_replicas(&mut self) {
        let Some(cpus) = self.placement_cpus.as_deref() else { return };
        let mut kinds = [None; MAX_SLOTS];
        for (kind, slot) in kinds.iter_mut().zip(&self.slots) {
            *kind = slot.proc.as_ref().map(|_| slot.is_live());
        }
        let mut placed = [Placement::ANY; MAX_SLOTS];
        let n = self.slots.len();
        placement::place(&kinds[..n], cpus.len(), &mut placed[..n]);
        for (slot, want) in self.slots.iter_mut().zip(placed) {
            let Some(p) = slot.proc.as_mut() else { continue };
            if p.placed != want {
                let on = cpus.iter().enumerate().filter(|&(k, _)| want.allows(k));
                if let Err(e) = chronus_sys::sched::set_affinity(p.pid, on.map(|(_, &cpu)| cpu)) {
                    tracing::warn!("cannot place worker {} on {want:?}: {e}", p.pid);
                }
                p.placed = want;
            }
        }
    }

    /// The slot running the poison trial, if one runs.
    fn trial_slot(&self) -> Option<usize> {
        self.trial.map(|t| t.slot)
    }

    /// Sets the real-time priority workers take (once the supervisor
    /// thread got its own).
    pub fn set_worker_priority(&mut self, priority: Option<i32>) {
        self.worker_priority = priority;
    }

    /// The live slot other than the active one, if any (the standby).
    pub(crate) fn standby(&self) -> Option<usize> {
        let active = self.shared.active();
        (0..self.shared.slots.len())
            .find(|&i| i != active && self.slots[i].is_live() && self.slots[i].fate.died.is_none())
    }

    fn handle_request(&mut self, request: Request) {
        let (target, reply) = match &request {
            Request::Inject(t, _, r) | Request::Signal(t, _, r) => (*t, r.clone()),
            Request::Expect(pid, kind, at) => {
                if let Some(i) = (0..self.slots.len()).find(|&i| self.pid(i) == Some(*pid)) {
                    self.slots[i].fate.sent_fault = Some((*at, *kind));
                }
                return;
            }
        };
        let active = self.shared.active();
        let slot = match target {
            Target::Active => Some(active).filter(|&a| self.slots[a].is_live()),
            Target::Standby => self.standby(),
        };
        let Some((i, pid)) = slot.and_then(|i| Some((i, self.pid(i)?))) else {
            let role = if target == Target::Active { "active" } else { "standby" };
            let _ = reply.send(Err(EngineError::NoSuchWorker(role)));
            return;
        };
        let result = match request {
            Request::Inject(_, FaultKind::Syscall, _)
                if self.cfg.sandbox == chronus_worker::SandboxMode::Off =>
            {
                Err(EngineError::Config("the syscall fault needs the workers' sandbox (it is off)"))
            }
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
                self.slots[i].fate.sent_fault = Some((monotonic_ns(), kind));
                match &self.slots[i].proc {
                    Some(p) => {
                        chronus_sys::process::pidfd_send_signal(std::os::fd::AsFd::as_fd(&p.pidfd), signal)
                            .map(|()| pid)
                            .map_err(|e| EngineError::WorkerStart(format!("signal: {e}")))
                    }
                    None => Err(EngineError::NoSuchWorker("target")),
                }
            }
        };
        let _ = reply.send(result);
    }

    fn publish_status(&mut self, now: Nanos) {
        let s = &self.shared;
        let underruns = s.underrun_frames.load(Relaxed);
        let lost = underruns + s.device_xrun_frames.load(Relaxed);
        let recent_underrun = self.underruns.update(lost, now, UNDERRUN_WINDOW.as_nanos() as Nanos);
        let quarantined = self.slots.iter().any(|s| s.phase() == crate::policy::join::Phase::Quarantined);
        let backing_off =
            self.slots.iter().any(|s| matches!(s.phase(), crate::policy::join::Phase::Backoff { .. }));
        let live = self.slots.iter().filter(|slot| slot.is_live()).count();
        let nondeterministic_at = self.determinism.verdict().map(|v| v.frame);
        let health = health(&HealthFacts {
            live,
            recent_underrun,
            backing_off,
            quarantined,
            nondeterministic: nondeterministic_at.is_some(),
            overloaded: s.overloaded.load(Relaxed),
        });
        let active = s.active();
        let live_pid = |i: usize| self.pid(i).filter(|_| self.slots[i].is_live());
        let status = Status {
            health,
            active_pid: live_pid(active),
            standby_pid: self.standby().and_then(live_pid),
            joining_pid: (0..s.slots.len())
                .find_map(|i| self.pid(i).filter(|_| self.slots[i].shared().state() == JOINING)),
            failovers: self.history.total(),
            counters: s.counters(),
            sample_rate: self.cfg.sample_rate,
            block: self.cfg.block,
            active_voices: s.slots[active].region.heartbeat().active.load(Relaxed) as u32,
            quarantined,
            backing_off,
            nondeterministic_at,
            spares_ready: self.slots.iter().filter(|s| s.join().is_spare()).count() as u32,
            overloaded: s.overloaded.load(Relaxed),
            workers_spawned: self.next_generation - 1,
            sandbox: self.cfg.sandbox.name(),
            sandbox_kills: self.forbidden.kills,
            last_forbidden_call: self.forbidden.last.map(chronus_worker::sandbox::call_name),
        };
        // A stopping engine has no workers by design: not a change to log.
        if self.last_health != Some(health) && !s.stop.load(Acquire) {
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

    /// Asks every worker to stop, waits a little, kills what is left; reaps.
    fn shutdown(&mut self) {
        // The workers render the output's last call first: an in-cycle
        // output renders each period while it waits for it (bounded: an
        // output that a device callback drives may never call again).
        let deadline = Instant::now() + Duration::from_millis(200);
        while !self.shared.output_done.load(Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        for slot in &self.slots {
            if slot.proc.is_some() {
                slot.shared().region.request_stop();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for slot in &mut self.slots {
            if let Some(mut p) = slot.proc.take() {
                loop {
                    match p.child.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                        _ => {
                            let _ = chronus_sys::process::pidfd_send_signal(
                                std::os::fd::AsFd::as_fd(&p.pidfd),
                                libc::SIGKILL,
                            );
                            let _ = p.child.wait();
                            break;
                        }
                    }
                }
            }
        }
    }
}
