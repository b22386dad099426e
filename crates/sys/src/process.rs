//! Processes: spawning a worker, pidfds and polling them, waiting and
//! signalling, forking a single-threaded process, dying with the parent.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// This signal killed it.
    Signal(i32),
}

impl Exit {
    fn of(status: WaitStatus) -> Option<Self> {
        match status {
            WaitStatus::Exited(_, code) => Some(Self::Code(code)),
            WaitStatus::Signaled(_, sig, _) => Some(Self::Signal(sig as i32)),
            _ => None,
        }
    }

    /// "exited with status 1", "killed by SIGKILL", …
    pub fn describe(&self) -> String {
        match *self {
            Self::Code(code) => format!("exited with status {code}"),
            Self::Signal(sig) => format!("killed by {}", signal_name(sig)),
        }
    }
}

/// `SIGKILL`, or "signal N" for a number that names none.
pub fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.to_string())
}

/// A child process of this one. Dropping it kills and reaps it if it was
/// not waited for, so a caller that panics leaves no orphan or zombie.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    exit: Option<Exit>,
}

impl Child {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Reaps the process if it has ended; never blocks.
    ///
    /// # Errors
    /// The `waitpid` error.
    pub fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        if self.exit.is_none() {
            self.exit = Exit::of(waitpid(self.pid, Some(WaitPidFlag::WNOHANG))?);
        }
        Ok(self.exit)
    }

    /// Waits for the process to end and reaps it.
    ///
    /// # Errors
    /// The `waitpid` error.
    pub fn wait(&mut self) -> io::Result<Exit> {
        loop {
            if let Some(exit) = self.exit {
                return Ok(exit);
            }
            match waitpid(self.pid, None) {
                Ok(status) => self.exit = Exit::of(status),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
            let _ = self.wait();
        }
    }
}

/// What a spawned child's fds are.
#[derive(Debug)]
pub struct SpawnFds<'a> {
    /// `(fd here, number in the child)`: copied there without close-on-exec.
    pub inherit: &'a [(BorrowedFd<'a>, RawFd)],
    /// stdin and stdout on /dev/null (stderr is inherited).
    pub null_stdio: bool,
}

/// Starts `exe` with `args` (the first is its name) and exactly `env`,
/// with `fds`, in a process group of its own: `posix_spawn` (glibc:
/// `clone(CLONE_VM | CLONE_VFORK)`), not `fork` — a fork of a process with a
/// real-time thread would copy its page tables under the mmap lock and make
/// its writes copy-on-write until the child execs.
///
/// # Errors
/// Any error of spawning the process.
pub fn spawn(exe: &Path, args: &[CString], env: &[CString], fds: &SpawnFds<'_>) -> io::Result<Child> {
    use nix::fcntl::OFlag;
    use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
    use nix::sys::stat::Mode;
    let mut actions = PosixSpawnFileActions::init()?;
    // dup2 onto another number clears close-on-exec on the copy.
    for (fd, target) in fds.inherit {
        actions.add_dup2(fd.as_raw_fd(), *target)?;
    }
    if fds.null_stdio {
        actions.add_open(0, "/dev/null", OFlag::O_RDONLY, Mode::empty())?;
        actions.add_open(1, "/dev/null", OFlag::O_WRONLY, Mode::empty())?;
    }
    let mut attr = PosixSpawnAttr::init()?;
    attr.set_flags(PosixSpawnFlags::POSIX_SPAWN_SETPGROUP)?;
    attr.set_pgroup(Pid::from_raw(0))?;
    let pid = posix_spawn(exe, &actions, &attr, args, env)?;
    Ok(Child { pid, exit: None })
}

/// `pidfd_open(pid, 0)`: an fd that becomes readable when `pid` exits.
///
/// # Errors
/// The OS error (`ESRCH`: no such process).
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
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
///
/// # Errors
/// The OS error.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: the fd is valid for the call (borrowed); info is NULL, which
    // the kernel accepts; flags 0.
    let ret = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<u8>(), 0u32)
    };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Waits up to `timeout_us` µs for any of `fds` (−1: none) to become
/// readable; returns a bit mask of the readable ones. Never allocates.
pub fn poll_readable<const N: usize>(fds: &[RawFd; N], timeout_us: u32) -> u32 {
    let mut polls = [libc::pollfd { fd: -1, events: 0, revents: 0 }; N];
    for (p, fd) in polls.iter_mut().zip(fds) {
        *p = libc::pollfd { fd: *fd, events: libc::POLLIN, revents: 0 };
    }
    let ts = libc::timespec {
        tv_sec: libc::time_t::from(timeout_us / 1_000_000),
        tv_nsec: libc::c_long::from(timeout_us % 1_000_000) * 1_000,
    };
    // SAFETY: `polls` is a valid array of N pollfd structs and `ts` a valid
    // timespec for the duration of the call (negative fds are ignored by
    // the kernel); the count passed is the array's length; a null signal
    // mask leaves the thread's mask alone.
    let n = unsafe { libc::ppoll(polls.as_mut_ptr(), N as libc::nfds_t, &ts, std::ptr::null()) };
    if n <= 0 {
        return 0;
    }
    polls.iter().enumerate().filter(|(_, p)| p.fd >= 0 && p.revents != 0).fold(0, |m, (i, _)| m | 1 << i)
}

/// Sends `signal` to process `pid` (a child: its pid cannot be recycled
/// until it is reaped).
///
/// # Errors
/// The OS error.
pub fn kill(pid: u32, signal: i32) -> io::Result<()> {
    let signal = Signal::try_from(signal).map_err(crate::io)?;
    nix::sys::signal::kill(Pid::from_raw(pid as i32), signal).map_err(crate::io)
}

/// Sends `signal` to the calling thread (`raise`).
pub fn raise(signal: i32) {
    if let Ok(signal) = Signal::try_from(signal) {
        let _ = nix::sys::signal::raise(signal);
    }
}

/// Reaps child `pid` if it ended (`block`: waits for it to end).
///
/// # Errors
/// The `waitpid` error.
pub fn wait_child(pid: u32, block: bool) -> io::Result<Option<Exit>> {
    let flags = (!block).then_some(WaitPidFlag::WNOHANG);
    loop {
        match waitpid(Pid::from_raw(pid as i32), flags) {
            Ok(status) => return Ok(Exit::of(status)),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Arranges for SIGKILL when the parent (the spawning thread) dies
/// (`PR_SET_PDEATHSIG`), then returns whether the parent is still
/// `expected` (it may have died before the prctl).
///
/// # Errors
/// The OS error of the prctl.
pub fn die_with_parent(expected: Option<u32>) -> io::Result<bool> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    Ok(expected.is_none_or(|p| parent_pid() == p))
}

/// The parent's pid.
pub fn parent_pid() -> u32 {
    nix::unistd::getppid().as_raw() as u32
}

/// This process's real user id.
pub fn user_id() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `PR_SET_DUMPABLE(0)`: no core dumps, and a process of the same (non-root)
/// user cannot ptrace this one or open its `/proc` files (fds, memory).
///
/// # Errors
/// The OS error.
pub fn set_undumpable() -> io::Result<()> {
    nix::sys::prctl::set_dumpable(false).map_err(crate::io)
}

/// The scheduler state of process `pid`'s main thread, the letter of
/// `/proc/<pid>/stat`'s third field (`R` runnable or running, `S`
/// sleeping, `D` in the kernel, `T` stopped, `t` traced, `Z` a zombie);
/// `None` when it cannot be read (it was reaped). Reads one short procfs
/// file (no I/O device, no allocation beyond the path on the stack).
pub fn process_state(pid: u32) -> Option<u8> {
    use std::io::Write as _;
    let mut path = [0u8; 32];
    let len = {
        let mut w = &mut path[..];
        write!(w, "/proc/{pid}/stat").ok()?;
        32 - w.len()
    };
    let path = std::str::from_utf8(&path[..len]).ok()?;
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 512];
    let n = nix::unistd::read(&fd, &mut buf).ok()?;
    state_of_stat(&buf[..n])
}

/// The state letter of a `/proc/<pid>/stat` line: the first field after
/// the command name (in parentheses, which may hold spaces or `)`).
fn state_of_stat(line: &[u8]) -> Option<u8> {
    let after = line.iter().rposition(|&b| b == b')')?;
    line[after + 1..].iter().copied().find(|&b| b != b' ')
}

/// Counts the calling process's threads through `/proc/self/stat`, opened
/// once: a sandbox that forbids opening files still lets it be read again
/// (`pread` on [`ThreadCounter::fd`]), and reading it allocates nothing.
#[derive(Debug)]
pub struct ThreadCounter {
    stat: OwnedFd,
}

impl ThreadCounter {
    /// Opens `/proc/self/stat`.
    ///
    /// # Errors
    /// The OS error of opening it.
    pub fn open() -> io::Result<Self> {
        let stat = nix::fcntl::open(
            "/proc/self/stat",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        Ok(Self { stat })
    }

    /// The fd it reads (for a sandbox to allow).
    pub fn fd(&self) -> RawFd {
        self.stat.as_raw_fd()
    }

    /// Threads the process has now.
    ///
    /// # Errors
    /// The OS error of reading, or `InvalidData` for a line it cannot read.
    pub fn threads(&self) -> io::Result<u32> {
        let mut buf = [0u8; 1024];
        let n = nix::sys::uio::pread(&self.stat, &mut buf, 0)?;
        let line = &buf[..n];
        // The command name, in parentheses, may hold spaces: count after
        // the last ')'; the thread count is the 18th field after it.
        let bad = || io::Error::from(io::ErrorKind::InvalidData);
        let after = line.iter().rposition(|&b| b == b')').ok_or_else(bad)?;
        let field =
            line[after + 1..].split(|&b| b == b' ').filter(|f| !f.is_empty()).nth(17).ok_or_else(bad)?;
        std::str::from_utf8(field).ok().and_then(|f| f.parse().ok()).ok_or_else(bad)
    }
}

/// Forks the calling process, if it has a single thread (checked with
/// `threads`; the error is `WouldBlock` otherwise): `Some(child pid)` in
/// the parent, `None` in the child, a copy of the process whose memory is
/// shared copy-on-write until written. What a worker uses to run a poison
/// trial without risking itself.
///
/// # Errors
/// `WouldBlock` with more than one thread; the OS error of `fork`.
pub fn fork_single_threaded(threads: &ThreadCounter) -> io::Result<Option<u32>> {
    if threads.threads()? != 1 {
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

/// Whether the calling process leads its own process group (its pgid is
/// its pid): then its group holds only it and its forks.
pub fn leads_own_group() -> bool {
    nix::unistd::getpgrp() == nix::unistd::getpid()
}
