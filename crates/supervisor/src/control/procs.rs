//! Process I/O: spawning workers into slots, pidfds, signals, reaping.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use std::sync::atomic::Ordering::Acquire;

use chronus_ipc::FaultKind;
use chronus_sys::clock::monotonic_ns;
use chronus_sys::death;

use super::Supervisor;
use super::spawner::{SpawnOrder, Spawned, Started};
use crate::EngineError;
use crate::events::DetectedBy;
use crate::policy::MAX_SLOTS;
use crate::policy::Nanos;
use crate::policy::placement::Placement;

/// A running worker process.
pub(crate) struct Proc {
    pub child: chronus_worker::WorkerProcess,
    pub pidfd: OwnedFd,
    pub pid: u32,
    pub generation: u64,
    /// The CPUs its render loop may run on, see
    /// `Supervisor::place_replicas`.
    pub placed: Placement,
}

/// Workers that ended, as masks of slots (see `Supervisor::wait_exits`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Exits {
    /// The kernel marked their death word: exiting.
    pub died: u32,
    /// Their pidfd is readable: gone.
    pub exited: u32,
}

/// The supervisor's per-slot bookkeeping of a worker's fate.
#[derive(Default)]
pub(crate) struct Fate {
    /// The supervisor is killing this worker: why and when it decided.
    pub killing: Option<(DetectedBy, u64)>,
    /// A fault sent from outside: when and which.
    pub sent_fault: Option<(u64, FaultKind)>,
    /// The kernel marked its death word (it is exiting): when, and when
    /// the active was switched away from it then (if it was the active).
    /// Its pidfd will prove it gone and tell how it ended.
    pub died: Option<(u64, Option<u64>)>,
    /// It died between blocks (no block in progress in its heartbeat):
    /// its input cannot have killed it, so its replacement may start
    /// before the pidfd tells how it ended. One that died inside a block
    /// may have met a poison, which only its exit status tells apart.
    pub died_between_blocks: bool,
    /// It was the active and was switched away from before its exit (it was
    /// outvoted): when.
    pub switched: Option<u64>,
}

impl Fate {
    /// Its end is under way (being killed, or exiting): its exit decides.
    pub fn ending(&self) -> bool {
        self.killing.is_some() || self.died.is_some()
    }
}

impl Supervisor {
    /// Orders a worker for slot `i`, its region reset for a new generation,
    /// from the spawner thread (never this one: see `spawner`). It arrives
    /// on a later pass ([`Supervisor::collect_spawns`]), attaches, prepares
    /// its DSP and waits, ready, to be told where to start.
    pub(crate) fn spawn(&mut self, i: usize) -> Result<(), EngineError> {
        let region = &self.shared.slots[i].region;
        let generation = self.next_generation;
        self.next_generation += 1;
        region.reset(generation);
        region.enable_faults(self.cfg.faults_enabled);
        self.spawner.order(SpawnOrder { slot: i, generation, rt_priority: self.worker_priority })?;
        self.slots[i].spawning = Some(generation);
        Ok(())
    }

    /// Takes in the workers the spawner started since the last pass; a
    /// failed start counts as a failed restart. Never waits.
    pub(crate) fn collect_spawns(&mut self, now: Nanos) {
        while let Some(spawned) = self.spawner.try_collect() {
            let i = spawned.slot;
            if let Err(e) = self.take_spawned(spawned) {
                tracing::warn!("slot {i}: {e}");
                self.slots[i].restarts.failed();
                self.restart_join(i, now);
            }
        }
    }

    /// Puts a started worker into its slot, if the slot still waits for
    /// that generation; one it no longer waits for goes back to the
    /// spawner to be reaped.
    pub(crate) fn take_spawned(&mut self, spawned: Spawned) -> Result<(), EngineError> {
        let (i, generation) = (spawned.slot, spawned.generation);
        let wanted = self.slots[i].spawning == Some(generation) && self.slots[i].proc.is_none();
        match spawned.result {
            Ok(started) if wanted => {
                let Started { child, pidfd, pid } = started;
                self.slots[i].spawning = None;
                self.slots[i].proc = Some(Proc { child, pidfd, pid, generation, placed: Placement::ANY });
                self.slots[i].fate = Fate::default();
                Ok(())
            }
            Ok(started) => {
                self.spawner.reap(started.child);
                Ok(())
            }
            Err(e) if wanted => {
                self.slots[i].spawning = None;
                Err(EngineError::WorkerStart(e))
            }
            Err(_) => Ok(()),
        }
    }

    /// Sends SIGKILL to slot `i`'s worker, remembering why and when.
    pub(crate) fn kill(&mut self, i: usize, why: DetectedBy) {
        let slot = &mut self.slots[i];
        if slot.fate.ending() {
            return;
        }
        if let Some(p) = &slot.proc {
            slot.fate.killing = Some((why, monotonic_ns()));
            let _ = chronus_sys::process::pidfd_send_signal(p.pidfd.as_fd(), libc::SIGKILL);
        }
    }

    /// Why slot `i`'s worker failed to start, if it is gone: how it ended
    /// (with the system call its sandbox refused, if that killed it).
    pub(crate) fn start_failure(&mut self, i: usize) -> String {
        let Some(p) = self.slots[i].proc.as_mut() else { return "no worker".into() };
        match p.child.try_wait() {
            Ok(Some(status)) => {
                let mut exit = crate::events::ExitStatus::of(status);
                if exit.by_sandbox() {
                    exit.forbidden_call =
                        self.shared.slots[i].region.forbidden_call(chronus_ipc::Recorder::Worker);
                }
                format!("worker {i} (pid {}) {exit}", p.pid)
            }
            _ => format!("worker {i} (pid {}) is still there but did not answer", p.pid),
        }
    }

    /// Kills and reaps every worker at once (start-up failed).
    pub(crate) fn kill_all(&mut self) {
        for slot in &mut self.slots {
            if let Some(mut p) = slot.proc.take() {
                let _ = chronus_sys::process::pidfd_send_signal(p.pidfd.as_fd(), libc::SIGKILL);
                let _ = p.child.wait();
            }
        }
    }

    /// Waits up to `timeout_us` µs for workers to end. Returns the slots
    /// whose worker's death word the kernel marked (it is exiting: seen
    /// before its memory is unmapped) and those whose pidfd is readable
    /// (it is gone), as masks. It waits on the death words when every
    /// worker has armed its own; otherwise (a worker still starting, or a
    /// kernel without `futex_waitv`) on the pidfds, as before the words.
    /// Never allocates.
    pub(crate) fn wait_exits(&mut self, timeout_us: u32) -> Exits {
        let mut fds = [-1; MAX_SLOTS];
        for (fd, slot) in fds.iter_mut().zip(&self.slots) {
            if let Some(p) = &slot.proc {
                *fd = p.pidfd.as_raw_fd();
            }
        }
        let died = self.death_words_marked();
        if died == 0 && self.death_words {
            let shared = self.shared.clone();
            let mut words = [(&shared.slots[0].region.control().death, 0); MAX_SLOTS];
            let (mut n, mut all_armed) = (0, true);
            for (slot, shared) in self.slots.iter().zip(&shared.slots) {
                let Some(p) = slot.proc.as_ref() else { continue };
                if slot.fate.ending() {
                    // Its pidfd is what is awaited now.
                    all_armed = false;
                    continue;
                }
                let word = &shared.region.control().death;
                let value = word.load(Acquire);
                match death::armed_by(value) {
                    Some(tid) if tid == p.pid => {
                        words[n] = (word, value);
                        n += 1;
                    }
                    _ => all_armed = false,
                }
            }
            if all_armed && n > 0 {
                let timeout = std::time::Duration::from_micros(u64::from(timeout_us));
                if death::wait_any(&words[..n], timeout) == death::Waited::Unsupported {
                    tracing::warn!(
                        "this kernel cannot wait on the workers' death words (futex_waitv): pidfds only"
                    );
                    self.death_words = false;
                } else {
                    let died = self.death_words_marked();
                    return Exits { died, exited: chronus_sys::process::poll_readable(&fds, 0) };
                }
            }
        }
        let timeout = if died != 0 { 0 } else { timeout_us };
        Exits { died, exited: chronus_sys::process::poll_readable(&fds, timeout) }
    }

    /// The slots whose worker's death word the kernel marked, not yet
    /// noticed.
    fn death_words_marked(&self) -> u32 {
        let mut mask = 0;
        for (i, (slot, shared)) in self.slots.iter().zip(&self.shared.slots).enumerate() {
            if slot.proc.is_some()
                && slot.fate.died.is_none()
                && death::owner_died(shared.region.control().death.load(Acquire))
            {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// The kernel marked slot `i`'s death word: its worker is exiting.
    /// The active plays on from the standby at once; everything else
    /// waits for its pidfd (`on_exit`), which proves it gone and tells how
    /// it ended.
    pub(crate) fn on_death_word(&mut self, i: usize) {
        let now = monotonic_ns();
        let switched = if self.slots[i].is_live() && self.shared.active() == i {
            self.standby().map(|next| {
                self.shared.active.store(next as u8, std::sync::atomic::Ordering::Release);
                monotonic_ns()
            })
        } else {
            None
        };
        let between_blocks = self.shared.slots[i].region.heartbeat().rendering.load(Acquire) == 0;
        self.slots[i].fate.died = Some((now, switched));
        self.slots[i].fate.died_between_blocks = between_blocks;
    }

    /// The pid of slot `i`'s worker.
    pub(crate) fn pid(&self, i: usize) -> Option<u32> {
        self.slots[i].pid()
    }

    /// CPU time slot `i`'s worker has used (ns), while it is not reaped.
    pub(crate) fn cpu_time(&self, i: usize) -> Option<u64> {
        self.pid(i).and_then(chronus_sys::clock::process_cpu_ns)
    }

    /// Whether slot `i`'s worker's render thread is runnable (`R`), read
    /// only for a worker stalled long enough to be a hang candidate.
    pub(crate) fn runnable(&self, i: usize) -> Option<bool> {
        self.pid(i).and_then(chronus_sys::process::process_state).map(|s| s == b'R')
    }
}
