//! Process I/O: spawning workers into slots, pidfds, signals, reaping.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use chronus_ipc::FaultKind;
use chronus_sys::clock::monotonic_ns;

use super::Supervisor;
use crate::EngineError;
use crate::events::DetectedBy;
use crate::policy::MAX_SLOTS;
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

/// The supervisor's per-slot bookkeeping of a worker's fate.
#[derive(Default)]
pub(crate) struct Fate {
    /// The supervisor is killing this worker: why and when it decided.
    pub killing: Option<(DetectedBy, u64)>,
    /// A fault sent from outside: when and which.
    pub sent_fault: Option<(u64, FaultKind)>,
}

impl Supervisor {
    /// Spawns a worker into slot `i`, its region reset for a new generation.
    /// It attaches, prepares its DSP and waits, ready, to be told where to
    /// start.
    pub(crate) fn spawn(&mut self, i: usize) -> Result<(), EngineError> {
        let region = &self.shared.slots[i].region;
        let generation = self.next_generation;
        self.next_generation += 1;
        region.reset(generation);
        region.enable_faults(self.cfg.faults_enabled);
        let child = chronus_worker::spawn_worker(
            &self.cfg.worker,
            region,
            self.bus_fd.as_fd(),
            self.worker_priority,
            self.cfg.sandbox,
        )
        .map_err(|e| {
            EngineError::WorkerStart(format!("cannot run {}: {e}", self.cfg.worker.exe.display()))
        })?;
        let pid = child.id();
        let pidfd = chronus_sys::process::pidfd_open(pid)
            .map_err(|e| EngineError::WorkerStart(format!("pidfd_open: {e}")))?;
        self.slots[i].proc = Some(Proc { child, pidfd, pid, generation, placed: Placement::ANY });
        self.slots[i].fate = Fate::default();
        Ok(())
    }

    /// Sends SIGKILL to slot `i`'s worker, remembering why and when.
    pub(crate) fn kill(&mut self, i: usize, why: DetectedBy) {
        let slot = &mut self.slots[i];
        if slot.fate.killing.is_some() {
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

    /// Waits up to `timeout_us` µs for workers to end; returns a mask of the
    /// slots whose pidfd became readable. Never allocates.
    pub(crate) fn poll_exits(&self, timeout_us: u32) -> u32 {
        let mut fds = [-1; MAX_SLOTS];
        for (fd, slot) in fds.iter_mut().zip(&self.slots) {
            if let Some(p) = &slot.proc {
                *fd = p.pidfd.as_raw_fd();
            }
        }
        chronus_sys::process::poll_readable(&fds, timeout_us)
    }

    /// The pid of slot `i`'s worker.
    pub(crate) fn pid(&self, i: usize) -> Option<u32> {
        self.slots[i].pid()
    }

    /// CPU time slot `i`'s worker has used (ns), while it is not reaped.
    pub(crate) fn cpu_time(&self, i: usize) -> Option<u64> {
        self.pid(i).and_then(chronus_sys::clock::process_cpu_ns)
    }
}
