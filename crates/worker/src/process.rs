//! Process-level set-up of a worker: die with the supervisor; once prepared,
//! keep memory resident and take real-time priority.
//!
//! The two steps are apart on purpose: a DSP's preparation (allocating,
//! building tables) is not real-time work. Under SCHED_FIFO it would hold
//! off everything else on the machine — the audio server's own thread among
//! them — for as long as it takes, and memory allocated after `mlockall`
//! would not be locked.

use crate::WorkerError;

/// What [`enter_realtime`] managed to set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessSetup {
    /// Memory locked (mlockall); needs privilege or RLIMIT_MEMLOCK.
    pub memory_locked: bool,
    /// Running under SCHED_FIFO.
    pub realtime: bool,
}

/// Arranges for SIGKILL when the parent dies (PR_SET_PDEATHSIG), then checks
/// the parent is still `parent_pid` (it may have died before the prctl).
/// Call it first, before any other work.
///
/// # Errors
/// [`WorkerError::Orphaned`] if the parent is already gone,
/// [`WorkerError::Os`] if the prctl fails.
pub fn die_with_parent(parent_pid: Option<u32>) -> Result<(), WorkerError> {
    let still = chronus_sys::process::die_with_parent(parent_pid)
        .map_err(|source| WorkerError::Os { what: "PR_SET_PDEATHSIG", source })?;
    match parent_pid {
        Some(expected) if !still => Err(WorkerError::Orphaned { expected }),
        _ => Ok(()),
    }
}

/// Locks the memory the worker holds now (its DSP prepared, its buffers
/// allocated) and takes SCHED_FIFO at `rt_priority` if allowed. Call it
/// last, just before the render loop. Neither failure is fatal: the result
/// says what was set up.
pub fn enter_realtime(rt_priority: Option<i32>) -> ProcessSetup {
    let memory_locked = chronus_sys::sched::lock_memory().is_ok();
    let realtime = rt_priority.is_some_and(|p| chronus_sys::sched::set_thread_fifo(p).is_ok());
    ProcessSetup { memory_locked, realtime }
}
