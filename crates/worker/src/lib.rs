//! The Chronus DSP worker: a process that attaches to the shared memory the
//! supervisor handed over, prepares the engine's DSP, and renders blocks
//! into its audio ring, applying the events of the bus's log at their
//! frames, until asked to stop.
//!
//! A program is its own worker: [`init`] at the top of its `main` turns the
//! process into a worker when the supervisor started it as one (it set
//! [`ENV`]) and returns at once otherwise; the supervisor side starts
//! workers with [`spawn_worker`] (posix_spawn: no fork of a threaded
//! real-time process). [`Worker`] is the loop, usable in-process for tests;
//! a worker process (one thread) forks itself only to run a poison trial
//! ([`Worker::fork_trials`]).
#![forbid(unsafe_code)]

mod entry;
mod error;
mod fault;
mod process;
mod render_loop;
pub mod sandbox;
mod spawn;
mod test_entry;

pub use chronus_ipc::SandboxMode;
pub use entry::{WorkerEnv, init, run};
pub use error::WorkerError;
pub use fault::INJECTED_PANIC;
pub use process::{ProcessSetup, die_with_parent, enter_realtime};
pub use render_loop::{Step, Worker};
pub use spawn::{BUS_FD, REGION_FD, WorkerCommand, WorkerProcess, spawn_worker};

/// The environment variable that makes a process a worker (set by
/// [`spawn_worker`], read by [`init`]).
pub const ENV: &str = "CHRONUS_WORKER";

/// Exit code of a worker whose supervisor was gone before it started.
pub const EXIT_ORPHANED: u8 = 75;
/// Exit code of a worker that refused to run: shared memory refused (magic,
/// version, epoch, generation, size), another DSP, a malformed environment.
pub const EXIT_REFUSED: u8 = 76;
/// Exit code of a worker an OS call failed for.
pub const EXIT_OS: u8 = 71;
