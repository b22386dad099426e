//! Every OS call of this crate: memfd, seals, futex, fd inheritance.
//! Public modules stay free of `unsafe`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

/// Turns a `-1` return into the thread's `errno` as an `io::Error`.
fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// Creates an anonymous, close-on-exec, sealable memory file of `len` bytes
/// (zero-filled by the kernel), sealed against shrinking and growing so the
/// peer can never make a mapping fault.
pub(crate) fn sealed_memfd(name: &str, len: u64) -> io::Result<OwnedFd> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    nix::unistd::ftruncate(&fd, len)?;
    fcntl(
        &fd,
        FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL),
    )?;
    Ok(fd)
}

/// A new, read-only open file description of the file behind `fd` (through
/// `/proc/self/fd`): a process given it can map the file, but never
/// writably, whatever it tries.
pub(crate) fn reopen_read_only(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(nix::fcntl::open(
        path.as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?)
}

/// A new read-write open file description of `fd`'s file (tests: a second
/// process's view of a region).
#[cfg(test)]
pub(crate) fn reopen_read_write_for_test(fd: BorrowedFd<'_>) -> OwnedFd {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    nix::fcntl::open(
        path.as_str(),
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .expect("reopen")
}

/// Size in bytes of the file behind `fd`.
pub(crate) fn file_len(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok(st.st_size as u64)
}

/// Whether `fd` is sealed against shrinking (so a mapping of it can't fault).
pub(crate) fn is_shrink_sealed(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let seals = fcntl(fd, FcntlArg::F_GET_SEALS)?;
    Ok(SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_SHRINK))
}

/// Arranges for each `(fd, target)` to be open as `target` in a child
/// spawned from `cmd`, without close-on-exec; the parent's fds keep their
/// flags. Each fd is first copied above every target, so a source that
/// happens to have another pair's target number is not overwritten before
/// it is copied.
pub fn inherit_fds(cmd: &mut std::process::Command, pairs: &[(BorrowedFd<'_>, RawFd)]) {
    use std::os::unix::process::CommandExt;
    let mut raw = [(-1, -1); 8];
    for (slot, (fd, target)) in raw.iter_mut().zip(pairs) {
        *slot = (fd.as_raw_fd(), *target);
    }
    let n = pairs.len().min(raw.len());
    let above = raw[..n].iter().map(|(_, t)| *t).max().unwrap_or(0) + 1;
    // SAFETY: the closure runs in the forked child before exec and only calls
    // fcntl and dup2, which are async-signal-safe; it touches no heap or
    // locks (the pairs were copied into a fixed array beforehand).
    unsafe {
        cmd.pre_exec(move || {
            let mut moved = [-1; 8];
            for (m, (src, _)) in moved.iter_mut().zip(&raw[..n]) {
                *m = cvt(libc::fcntl(*src, libc::F_DUPFD, above).into())? as RawFd;
            }
            for (m, (_, target)) in moved.iter().zip(&raw[..n]) {
                cvt(libc::dup2(*m, *target).into())?;
            }
            Ok(())
        });
    }
}

/// Takes ownership of an inherited fd number, after checking it is open.
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    fcntl(
        // SAFETY: only used for the F_GETFD probe below, while `fd` is open.
        unsafe { BorrowedFd::borrow_raw(fd) },
        FcntlArg::F_GETFD,
    )?;
    // SAFETY: the fd is open (checked above) and was handed to this process
    // for it to own: nothing else in the process uses this number.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(owned)
}

/// Waits while `*word == expected`, at most `timeout`. Returns on a wake,
/// a value change, a signal or the timeout; callers re-check their
/// condition. The futex is shared (not private): the word lives in memory
/// mapped by several processes.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call and
    // `ts` outlives it; FUTEX_WAIT only reads them. Errors (EAGAIN when the
    // value already changed, EINTR, ETIMEDOUT) all mean "re-check".
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes up to `n` waiters on `word` (in any process). Never blocks.
pub fn futex_wake(word: &AtomicU32, n: u32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not access it
    // beyond using its address as the key.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n, 0usize, 0usize, 0u32);
    }
}

/// Nanoseconds of CLOCK_MONOTONIC, comparable across processes.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

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

/// Forks the calling process, if it has a single thread (checked; the
/// error is `WouldBlock` otherwise): `Some(child pid)` in the parent, `None`
/// in the child, a copy of the process whose memory is shared copy-on-write
/// until written. What a worker uses to run a poison trial without risking
/// itself.
///
/// # Errors
/// `WouldBlock` with more than one thread; the OS error of `fork`.
pub fn fork_single_threaded() -> io::Result<Option<u32>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name, in parentheses, may hold spaces: count after it.
    let threads = stat.rfind(')').and_then(|at| stat[at + 2..].split(' ').nth(17)).map(str::parse::<u32>);
    if !matches!(threads, Some(Ok(1))) {
        return Err(io::Error::new(io::ErrorKind::WouldBlock, "more than one thread: no fork"));
    }
    // SAFETY: the process has a single thread (checked just above, and a
    // single-threaded process creates none in between), so the child
    // inherits no lock another thread held: it may allocate and call
    // anything, as its parent could.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Some(child.as_raw() as u32)),
        nix::unistd::ForkResult::Child => Ok(None),
    }
}
