//! Spawning workers off the real-time supervisor thread.
//!
//! `posix_spawn` holds the thread that calls it until the child has
//! exec'd, and the child starts as an ordinary process (SCHED_OTHER): on
//! two cores busy with real-time replicas, that took milliseconds, during
//! which the supervisor thread — priority 80, the one that detects and
//! handles faults — waited on a process of the lowest priority (a
//! priority inversion). The spawner is a thread of its own at normal
//! priority: the supervisor sends it an order and collects the process
//! on a later pass. It lives as long as the supervisor: a worker's
//! PR_SET_PDEATHSIG fires when the *thread* that spawned it exits.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use chronus_worker::{SandboxMode, WorkerCommand, WorkerProcess};

use crate::EngineError;
use crate::policy::MAX_SLOTS;
use crate::shared::Shared;

/// A worker to start in `slot`, whose region the supervisor has reset for
/// `generation`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpawnOrder {
    pub slot: usize,
    pub generation: u64,
    /// The real-time priority the worker takes for its render loop.
    pub rt_priority: Option<i32>,
}

/// A started worker: the process, its pidfd and pid.
pub(crate) struct Started {
    pub child: WorkerProcess,
    pub pidfd: OwnedFd,
    pub pid: u32,
}

/// What became of a [`SpawnOrder`].
pub(crate) struct Spawned {
    pub slot: usize,
    pub generation: u64,
    pub result: Result<Started, String>,
}

enum Job {
    Spawn(SpawnOrder),
    /// A worker nobody wants any more (its order was overtaken): killed and
    /// reaped here, not on the real-time thread.
    Reap(WorkerProcess),
}

/// The spawner thread and its two queues (bounded: no allocation per
/// order).
pub(crate) struct Spawner {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Spawned>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    /// Starts the thread, which spawns `command` on the slots' regions of
    /// `shared` and the bus `bus_fd` (read-only), in `sandbox`.
    pub fn start(
        shared: Arc<Shared>,
        command: WorkerCommand,
        bus_fd: OwnedFd,
        sandbox: SandboxMode,
    ) -> Result<Self, EngineError> {
        // Room for an order per slot and a reap each, twice over: the
        // supervisor never waits to send.
        let (jobs, orders) = sync_channel::<Job>(4 * MAX_SLOTS);
        let (results, done) = sync_channel::<Spawned>(4 * MAX_SLOTS);
        let thread = std::thread::Builder::new()
            .name("chronus-spawner".into())
            .spawn(move || {
                for job in orders {
                    let order = match job {
                        Job::Spawn(order) => order,
                        Job::Reap(child) => {
                            drop(child);
                            continue;
                        }
                    };
                    let region = &shared.slots[order.slot].region;
                    let result = chronus_worker::spawn_worker(
                        &command,
                        region,
                        bus_fd.as_fd(),
                        order.rt_priority,
                        sandbox,
                    )
                    .map_err(|e| format!("cannot run {}: {e}", command.exe.display()))
                    .and_then(|child| {
                        let pid = child.id();
                        let pidfd =
                            chronus_sys::process::pidfd_open(pid).map_err(|e| format!("pidfd_open: {e}"))?;
                        Ok(Started { child, pidfd, pid })
                    });
                    let spawned = Spawned { slot: order.slot, generation: order.generation, result };
                    if results.send(spawned).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| EngineError::Thread(e.to_string()))?;
        Ok(Self { jobs: Some(jobs), done, thread: Some(thread) })
    }

    /// Orders a worker. Never waits (the queue has room for every slot).
    pub fn order(&self, order: SpawnOrder) -> Result<(), EngineError> {
        let sent = self.jobs.as_ref().map(|j| j.try_send(Job::Spawn(order)));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(EngineError::WorkerStart("the spawner thread is gone or its queue is full".into())),
        }
    }

    /// A worker that finished starting, if one did. Never waits.
    pub fn try_collect(&self) -> Option<Spawned> {
        self.done.try_recv().ok()
    }

    /// Waits up to `timeout` for a worker to finish starting (start-up
    /// only, not on the real-time path).
    pub fn collect_within(&self, timeout: std::time::Duration) -> Option<Spawned> {
        self.done.recv_timeout(timeout).ok()
    }

    /// Hands back a worker nobody wants: the spawner kills and reaps it.
    pub fn reap(&self, child: WorkerProcess) {
        if let Some(jobs) = &self.jobs
            && let Err(e) = jobs.try_send(Job::Reap(child))
        {
            // No room (never expected): reaped here after all.
            drop(e);
        }
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // The thread ends when its queue closes; what it still started is
        // killed and reaped with the results dropped.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() {
                while self.done.try_recv().is_ok() {}
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let _ = thread.join();
        }
        while self.done.try_recv().is_ok() {}
    }
}
