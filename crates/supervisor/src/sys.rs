//! OS calls of the supervisor: pidfds and real-time scheduling.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `pidfd_open(pid, 0)`: an fd that becomes readable when `pid` exits.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
    // no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0u32) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(pidfd, sig)`: signals exactly the process behind the
/// pidfd, never a recycled pid.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: the fd is valid for the call (borrowed); info is NULL, which
    // the kernel accepts; flags 0.
    let ret = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<u8>(), 0u32)
    };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Waits up to `timeout_us` µs for any of `fds` (−1: none) to become
/// readable; returns a bit mask of the readable ones. Never allocates.
pub(crate) fn poll_readable(fds: &[i32; crate::policy::MAX_SLOTS], timeout_us: u32) -> u32 {
    let mut polls = [libc::pollfd { fd: -1, events: 0, revents: 0 }; crate::policy::MAX_SLOTS];
    for (p, fd) in polls.iter_mut().zip(fds) {
        *p = libc::pollfd { fd: *fd, events: libc::POLLIN, revents: 0 };
    }
    let ts = libc::timespec {
        tv_sec: libc::time_t::from(timeout_us / 1_000_000),
        tv_nsec: libc::c_long::from(timeout_us % 1_000_000) * 1_000,
    };
    // SAFETY: `polls` is a valid array of MAX_SLOTS pollfd structs and `ts`
    // a valid timespec for the duration of the call (negative fds are
    // ignored by the kernel); the count passed is the array's length; a null
    // signal mask leaves the thread's mask alone.
    let n = unsafe { libc::ppoll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, &ts, std::ptr::null()) };
    if n <= 0 {
        return 0;
    }
    polls.iter().enumerate().filter(|(_, p)| p.fd >= 0 && p.revents != 0).fold(0, |m, (i, _)| m | 1 << i)
}

/// CPU time used so far by process `pid` (all its threads), in ns; `None`
/// when it cannot be read (it was reaped). A vDSO-free syscall, no I/O.
pub(crate) fn process_cpu_ns(pid: u32) -> Option<u64> {
    let clock = nix::time::clock_getcpuclockid(nix::unistd::Pid::from_raw(pid as i32)).ok()?;
    let t = clock.now().ok()?;
    Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}
