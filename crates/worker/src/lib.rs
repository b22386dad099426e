//! The Chronus DSP worker: attach to the region the supervisor handed over,
//! then render blocks into its audio ring, applying commands at their
//! frames, until asked to stop.
//!
//! The same binary runs as supervisor and worker (`chronus worker …`, a
//! hidden subcommand). [`spawn_worker`] starts one; [`run_worker`] is what the
//! subcommand runs; [`Worker`] is the loop, usable in-process for tests.
#![forbid(unsafe_code)]

mod error;
mod fault;
mod process;
mod render_loop;
mod spawn;

pub use error::WorkerError;
pub use fault::INJECTED_PANIC;
pub use process::{ProcessSetup, prepare_process};
pub use render_loop::{Step, Worker};
pub use spawn::{WORKER_FD, WorkerProcess, spawn_worker};

use std::os::fd::RawFd;

/// What `chronus worker` was started with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerArgs {
    /// The inherited region fd.
    pub fd: RawFd,
    /// The generation the supervisor started this worker for.
    pub generation: u64,
    /// The supervisor's pid; the worker exits if its parent is another.
    pub parent_pid: Option<u32>,
    /// Run under SCHED_FIFO at this priority, if permitted.
    pub rt_priority: Option<i32>,
}

/// Runs a worker process to the end: prepare the process, attach, render
/// until stopped.
///
/// # Errors
/// [`WorkerError`] saying why the worker could not start or went on.
pub fn run_worker(args: WorkerArgs) -> Result<(), WorkerError> {
    prepare_process(args.parent_pid, args.rt_priority)?;
    let fd = chronus_ipc::adopt_fd(args.fd)
        .map_err(|e| WorkerError::Os { what: "inherited region fd", source: e })?;
    let region = chronus_ipc::Region::attach(fd, args.generation)?;
    let mut worker = Worker::new(&region)?;
    worker.run();
    Ok(())
}
