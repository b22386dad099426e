//! Fds handed to a child process, adopted by it, and stderr silenced.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};

use crate::cvt;

/// Arranges for each `(fd, target)` to be open as `target` in a child
/// spawned from `cmd`, without close-on-exec; the parent's fds keep their
/// flags. Each fd is first copied above every target, so a source that
/// happens to have another pair's target number is not overwritten before
/// it is copied. At most 8 pairs.
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

/// Takes ownership of an inherited fd number, after checking it is open,
/// and marks it close-on-exec.
///
/// # Errors
/// `EBADF` if it is not open; the OS error of `fcntl`.
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

/// Runs `f` with stderr pointed at /dev/null (a library that prints its
/// own errors there while probing), then puts it back. Call it before other
/// threads write to stderr.
pub fn without_stderr<T>(f: impl FnOnce() -> T) -> T {
    let saved = nix::unistd::dup(std::io::stderr()).ok();
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null").ok();
    if let (Some(_), Some(null)) = (&saved, &null) {
        let _ = nix::unistd::dup2_stderr(null);
    }
    let out = f();
    if let Some(saved) = saved {
        let _ = nix::unistd::dup2_stderr(saved);
    }
    out
}
