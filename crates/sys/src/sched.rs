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

/// Keeps the process's memory resident without mapping what it never
/// touches. `mlockall(MCL_CURRENT | MCL_ONFAULT)` locks the pages of the
/// present mappings that are mapped now and each one as it is faulted in;
/// every private writable mapping (heap, stack, buffers, `.data`, `.bss`)
/// is then locked and populated whole (`mlock`), so writing to it later
/// takes no page fault. What the process never read of its code, its
/// read-only data and the files it maps stays unmapped: a dying process's
/// pages are unmapped before its pidfd reports the death (~0.45 µs per
/// 4 KiB page on the VM this was measured on), so every page mapped and
/// never used is paid in failover time. Needs privilege or
/// RLIMIT_MEMLOCK.
///
/// # Errors
/// The first OS error (`mlockall`, reading `/proc/self/maps`, or an
/// `mlock` of one mapping; the others are still locked).
pub fn lock_memory() -> io::Result<()> {
    let flags = nix::sys::mman::MlockAllFlags::from_bits_retain(libc::MCL_CURRENT | libc::MCL_ONFAULT);
    nix::sys::mman::mlockall(flags).map_err(crate::io)?;
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut first_error = None;
    for (start, end) in private_writable(&maps) {
        // SAFETY: `start..end` is a mapping of this process as the kernel
        // lists it; mlock faults its pages in and keeps them resident
        // without reading or writing what they hold. A range that changed
        // since it was listed only makes the call fail (ENOMEM).
        let ret = unsafe { libc::mlock(start as *const libc::c_void, end - start) };
        if ret != 0 && first_error.is_none() {
            first_error = Some(io::Error::last_os_error());
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The address ranges of the private writable mappings listed in
/// `/proc/<pid>/maps` text (`start-end rw?p offset dev inode [path]`).
fn private_writable(maps: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    maps.lines().filter_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let (range, perms) = (fields.next()?, fields.next()?.as_bytes());
        if perms.len() < 4 || &perms[..2] != b"rw" || perms[3] != b'p' {
            return None;
        }
        let (start, end) = range.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        (end > start).then_some((start, end))
    })
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

#[cfg(test)]
mod tests {
    use super::private_writable;

    #[test]
    fn only_private_writable_mappings_are_listed() {
        let maps = "\
55d0c0000000-55d0c0200000 r-xp 00000000 fe:01 123 /usr/bin/chronus
55d0c0400000-55d0c0401000 rw-p 00200000 fe:01 123 /usr/bin/chronus
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000100000 rw-s 00000000 00:01 9 /memfd:chronus-worker (deleted)
7f0000200000-7f0000300000 r--s 00000000 00:01 8 /memfd:chronus-bus (deleted)
7f0000400000-7f0000401000 ---p 00000000 00:00 0
7f0000500000-7f0000580000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
garbage line
7f00-7e00 rw-p 0 0 0
";
        let got: Vec<_> = private_writable(maps).collect();
        assert_eq!(
            got,
            [
                (0x55d0c0400000, 0x55d0c0401000),
                (0x55d0c1000000, 0x55d0c1021000),
                (0x7f0000500000, 0x7f0000580000),
                (0x7ffd00000000, 0x7ffd00021000),
            ]
        );
    }
}
