//! Scheduling and memory locking.

use std::io;

/// Puts the calling thread under SCHED_FIFO at `priority` (1–99), with
/// `SCHED_RESET_ON_FORK`: processes and threads it creates start under
/// SCHED_OTHER. Without that flag a worker spawned by the supervisor thread
/// (priority 80) ran its start-up — exec, loading, the DSP's preparation —
/// above the output thread (70), and two spawned at once held both cores
/// off the output for 10–20 ms: stalls that looked like the machine's.
///
/// # Errors
/// The OS error, typically `EPERM` without privilege or RLIMIT_RTPRIO.
pub fn set_thread_fifo(priority: i32) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: priority };
    // SAFETY: pid 0 is the calling thread (Linux schedules threads, not
    // processes); `param` outlives the call.
    let ret = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param) };
    if ret != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The calling thread's scheduling policy (`SCHED_OTHER`, `SCHED_FIFO`, …,
/// without the `SCHED_RESET_ON_FORK` flag).
pub fn thread_policy() -> i32 {
    // SAFETY: pid 0 is the calling thread; no pointers.
    let policy = unsafe { libc::sched_getscheduler(0) };
    policy & !libc::SCHED_RESET_ON_FORK
}

/// Locks every page the process maps now in memory (`mlockall
/// (MCL_CURRENT)`); needs privilege or RLIMIT_MEMLOCK.
///
/// # Errors
/// The OS error.
pub fn lock_current_memory() -> io::Result<()> {
    nix::sys::mman::mlockall(nix::sys::mman::MlockAllFlags::MCL_CURRENT).map_err(crate::io)
}

/// Lets process `pid`'s main thread (a worker's render loop) run only on
/// the CPUs `cpus` names (CPU numbers, as in [`allowed_cpus`]).
///
/// # Errors
/// The OS error (`ESRCH` for a process gone, `EINVAL` for a CPU not there
/// or an empty set).
pub fn set_affinity(pid: u32, cpus: impl IntoIterator<Item = usize>) -> io::Result<()> {
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let mut set = nix::sched::CpuSet::new();
    for cpu in cpus {
        set.set(cpu).map_err(io::Error::from)?;
    }
    nix::sched::sched_setaffinity(pid, &set).map_err(io::Error::from)
}

/// The CPU numbers this process may run on (its affinity mask), in order.
///
/// # Errors
/// The OS error.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).map_err(io::Error::from)?;
    Ok((0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect())
}
