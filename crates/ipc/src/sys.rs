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
/// peer can never make a mapping fault. With `final_seals`, no seal can be
/// added later either; without, the caller adds [`seal_writes`] once its own
/// writable mapping exists.
pub(crate) fn sealed_memfd(name: &str, len: u64, final_seals: bool) -> io::Result<OwnedFd> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    nix::unistd::ftruncate(&fd, len)?;
    let mut seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW;
    if final_seals {
        seals |= SealFlag::F_SEAL_SEAL;
    }
    fcntl(&fd, FcntlArg::F_ADD_SEALS(seals))?;
    Ok(fd)
}

/// Seals the file behind `fd` against every write from now on:
/// `F_SEAL_FUTURE_WRITE` (no new writable mapping, by any fd or process,
/// reopened through `/proc` or not; no `write(2)`, no hole punched; a
/// read-only shared mapping can never be made writable), then `F_SEAL_SEAL`.
/// Writable mappings made before keep working: the writer's.
pub(crate) fn seal_writes(fd: BorrowedFd<'_>) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_FUTURE_WRITE | SealFlag::F_SEAL_SEAL))?;
    Ok(())
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

/// Whether `fd` is sealed against shrinking (so a mapping of it can't
/// fault), and whether against every new write ([`seal_writes`]).
pub(crate) fn seals(fd: BorrowedFd<'_>) -> io::Result<(bool, bool)> {
    let seals = SealFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GET_SEALS)?);
    Ok((seals.contains(SealFlag::F_SEAL_SHRINK), seals.contains(SealFlag::F_SEAL_FUTURE_WRITE)))
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

// ---------------------------------------------------------------------------
// The worker's sandbox: reporting the system calls seccomp refused.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

/// Where the SIGSYS handler records a refused call: the first one (number
/// plus one) and the set of all of them (one bit per number), in the
/// region's control block; null while nothing is armed.
static FIRST_FORBIDDEN: AtomicPtr<AtomicU32> = AtomicPtr::new(std::ptr::null_mut());
static FORBIDDEN_SET: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
/// Refuse the call and go on (`true`), or die of SIGSYS (`false`).
static AUDIT: AtomicBool = AtomicBool::new(false);

/// `si_code` of a SIGSYS sent by seccomp.
const SYS_SECCOMP: libc::c_int = 1;
/// A system call no sandbox allows, made by the SIGSYS handler to die: the
/// kernel, finding SIGSYS blocked in its own handler, puts its default
/// action back and kills the process with it. Harmless if it ever ran.
pub const DIE_BY_CALL: libc::c_long = libc::SYS_getcpu;

/// The head of the kernel's `siginfo_t` for SIGSYS (`_sigsys` in the
/// union): where the refused call's number is. The same on every 64-bit
/// architecture the sandbox supports (x86_64, aarch64).
#[repr(C)]
struct SigsysInfo {
    signo: libc::c_int,
    errno: libc::c_int,
    code: libc::c_int,
    _pad: libc::c_int,
    call_addr: *mut libc::c_void,
    syscall: libc::c_int,
    arch: libc::c_uint,
}

/// Makes the interrupted system call return `-EPERM` (auditing).
///
/// # Safety
/// `ctx` is the `ucontext_t` the kernel passed a SA_SIGINFO handler.
unsafe fn refuse_with_eperm(ctx: *mut libc::c_void) {
    let ctx = ctx.cast::<libc::ucontext_t>();
    #[cfg(target_arch = "x86_64")]
    // SAFETY: per the contract, `ctx` is this handler's live ucontext_t;
    // RAX holds the call's return value when the handler returns.
    unsafe {
        (*ctx).uc_mcontext.gregs[libc::REG_RAX as usize] = -i64::from(libc::EPERM);
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above; x0 holds the return value.
    unsafe {
        (*ctx).uc_mcontext.regs[0] = (-i64::from(libc::EPERM)) as u64;
    }
}

/// The SIGSYS handler: async-signal-safe (atomics and raw system calls).
extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to a SA_SIGINFO handler;
    // SigsysInfo mirrors its head for SIGSYS.
    let (code, call) = unsafe {
        let info = &*info.cast::<SigsysInfo>();
        (info.code, info.syscall)
    };
    if code == SYS_SECCOMP && call >= 0 {
        let nr = call as u32;
        let first = FIRST_FORBIDDEN.load(Ordering::Acquire);
        // SAFETY: armed pointers are valid until disarmed (the contract of
        // `arm_sigsys_report`).
        if let Some(first) = unsafe { first.as_ref() } {
            let _ = first.compare_exchange(0, nr + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
        let set = FORBIDDEN_SET.load(Ordering::Acquire);
        let word = (nr / 64) as usize;
        if !set.is_null() && word < crate::layout::FORBIDDEN_WORDS {
            // SAFETY: as above, and `word` is within the set's words.
            unsafe { (*set.add(word)).fetch_or(1 << (nr % 64), Ordering::Relaxed) };
        }
        if AUDIT.load(Ordering::Relaxed) {
            // SAFETY: `ctx` is this handler's ucontext_t.
            unsafe { refuse_with_eperm(ctx) };
            return;
        }
    }
    // SAFETY: a raw system call with no pointer arguments; the sandbox
    // refuses it, and with SIGSYS blocked here the kernel kills the process
    // with SIGSYS's default action. `_exit` only if it somehow returned.
    unsafe {
        libc::syscall(DIE_BY_CALL, 0, 0, 0);
        libc::_exit(128 + libc::SIGSYS);
    }
}

/// Installs the SIGSYS handler that records a call seccomp refused (see
/// [`arm_sigsys_report`]) and then kills the process with SIGSYS, or, when
/// `audit`, makes the call fail with `EPERM` and lets it go on. Once per
/// process (a fork keeps its parent's: the sandbox forbids installing
/// another).
pub(crate) fn install_sigsys_handler(audit: bool) -> io::Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.load(Ordering::Acquire) {
        return Ok(());
    }
    AUDIT.store(audit, Ordering::Relaxed);
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the
    // handler is async-signal-safe and has the SA_SIGINFO signature.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigsys as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        cvt(libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut()).into())?;
    }
    INSTALLED.store(true, Ordering::Release);
    Ok(())
}

/// Points the SIGSYS handler at `first` and the `FORBIDDEN_WORDS` words
/// from `set`.
///
/// # Safety
/// Both must stay valid (mapped) until [`disarm_sigsys_report`] or the end
/// of the process.
pub(crate) unsafe fn arm_sigsys_report(first: &AtomicU32, set: &[AtomicU64]) {
    assert_eq!(set.len(), crate::layout::FORBIDDEN_WORDS);
    FIRST_FORBIDDEN.store(std::ptr::from_ref(first).cast_mut(), Ordering::Release);
    FORBIDDEN_SET.store(set.as_ptr().cast_mut(), Ordering::Release);
}

/// Stops the SIGSYS handler recording (it still kills, or refuses).
pub(crate) fn disarm_sigsys_report() {
    FIRST_FORBIDDEN.store(std::ptr::null_mut(), Ordering::Release);
    FORBIDDEN_SET.store(std::ptr::null_mut(), Ordering::Release);
}

/// Dies of a real segmentation fault: a write to a page mapped with no
/// access, as a DSP's stray pointer would (no signal sent, so no system
/// call a sandbox must allow but mmap).
pub fn segfault() -> ! {
    // SAFETY: an anonymous private mapping of one page, no fd; the page
    // is never accessible, so the volatile write faults: the default
    // SIGSEGV action (Rust's handler puts it back for a fault outside a
    // guard page) ends the process. Nothing Rust owns is touched.
    unsafe {
        let page = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if page != libc::MAP_FAILED {
            loop {
                page.cast::<u8>().write_volatile(1);
            }
        }
        loop {
            libc::raise(libc::SIGSEGV);
        }
    }
}

/// The signal a worker ends its poison trial's fork with, sent to its own
/// process group (the fork's pid is not known when the sandbox is set up,
/// so the sandbox allows only this signal to the group, and the worker
/// itself blocks it): see [`end_trial_forks`].
pub const TRIAL_END_SIGNAL: i32 = libc::SIGUSR1;

/// Whether the calling process leads its own process group (its pgid is
/// its pid): then its group holds only it and its forks.
pub fn leads_own_group() -> bool {
    nix::unistd::getpgrp() == nix::unistd::getpid()
}

/// Blocks [`TRIAL_END_SIGNAL`] in the calling thread (a worker: only its
/// trial's fork takes it).
///
/// # Errors
/// The OS error of `sigprocmask`.
pub fn block_trial_end_signal() -> io::Result<()> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR1);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(())
}

/// In a trial's fork: [`TRIAL_END_SIGNAL`] back to its default action
/// (ending the process) and unblocked, so the worker's signal ends it
/// (one sent before this is pending, and ends it here).
///
/// # Errors
/// The OS error of `sigaction` or `sigprocmask`.
pub fn accept_trial_end_signal() -> io::Result<()> {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
    // SAFETY: SIG_DFL installs no handler.
    unsafe { signal(Signal::SIGUSR1, SigHandler::SigDfl) }?;
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR1);
    sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None)?;
    Ok(())
}

/// Sends [`TRIAL_END_SIGNAL`] to the calling process's group, which it
/// leads ([`leads_own_group`]): its trial forks end; it (blocking the
/// signal) does not.
///
/// # Errors
/// The OS error of `kill`.
pub fn end_trial_forks() -> io::Result<()> {
    let group = nix::unistd::Pid::from_raw(-(std::process::id() as i32));
    nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGUSR1)?;
    Ok(())
}
