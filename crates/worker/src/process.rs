//! Process-level preparation of a worker: die with the supervisor, keep
//! memory resident.

use nix::sys::signal::Signal;

use crate::WorkerError;

/// What [`prepare_process`] managed to set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessSetup {
    /// Memory locked (mlockall); needs privilege or RLIMIT_MEMLOCK.
    pub memory_locked: bool,
    /// Running under SCHED_FIFO.
    pub realtime: bool,
}

/// Arranges for SIGKILL when the parent dies (PR_SET_PDEATHSIG), then checks
/// the parent is still `parent_pid` (it may have died before the prctl), and
/// locks current memory and takes SCHED_FIFO at `rt_priority` if allowed.
///
/// # Errors
/// [`WorkerError::Orphaned`] if the parent is already gone,
/// [`WorkerError::Os`] if the prctl fails.
pub fn prepare_process(
    parent_pid: Option<u32>,
    rt_priority: Option<i32>,
) -> Result<ProcessSetup, WorkerError> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| WorkerError::Os { what: "PR_SET_PDEATHSIG", source: e.into() })?;
    if let Some(expected) = parent_pid
        && nix::unistd::getppid().as_raw() as u32 != expected
    {
        return Err(WorkerError::Orphaned { expected });
    }
    let memory_locked = nix::sys::mman::mlockall(nix::sys::mman::MlockAllFlags::MCL_CURRENT).is_ok();
    let realtime = rt_priority.is_some_and(|p| chronus_ipc::set_thread_fifo(p).is_ok());
    Ok(ProcessSetup { memory_locked, realtime })
}
