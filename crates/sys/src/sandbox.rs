//! The worker's sandbox, the OS side: installing the seccomp filter, the
//! SIGSYS handler that records which call it refused, a real segmentation
//! fault (for fault injection), and the signal a sandboxed worker ends its
//! poison trial's fork with. (Which calls are allowed is the worker's
//! policy: `chronus_worker::sandbox`.)

use std::io;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::cvt;

/// Words in the set of refused calls: one bit per system call number.
pub const FORBIDDEN_WORDS: usize = 8;

/// Applies the seccomp `program` to every thread of the process, after
/// `PR_SET_NO_NEW_PRIVS` (rust-vmm's `seccompiler` does both).
///
/// # Errors
/// The OS error (a kernel without seccomp, a thread that cannot be synced).
pub fn install_seccomp(program: &seccompiler::BpfProgram) -> io::Result<()> {
    seccompiler::apply_filter_all_threads(program).map_err(io::Error::other)
}

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
        // SAFETY: the pointers come from `'static` references
        // (`report_forbidden_calls`): valid for the life of the process.
        if let Some(first) = unsafe { first.as_ref() } {
            let _ = first.compare_exchange(0, nr + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
        let set = FORBIDDEN_SET.load(Ordering::Acquire);
        let word = (nr / 64) as usize;
        if !set.is_null() && word < FORBIDDEN_WORDS {
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

/// Installs the SIGSYS handler (once per process: a fork keeps its
/// parent's, and the sandbox forbids installing another) and points it at
/// `first` (the first refused call, its number plus one) and `set` (one bit
/// per refused call). A refused call is recorded there; then the process
/// dies of SIGSYS, or, when `audit`, the call fails with `EPERM` and the
/// process goes on. Call again (a trial's fork) to record elsewhere.
///
/// # Errors
/// The OS error of `sigaction`.
pub fn report_forbidden_calls(
    first: &'static AtomicU32,
    set: &'static [AtomicU64; FORBIDDEN_WORDS],
    audit: bool,
) -> io::Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    FIRST_FORBIDDEN.store(std::ptr::from_ref(first).cast_mut(), Ordering::Release);
    FORBIDDEN_SET.store(set.as_ptr().cast_mut(), Ordering::Release);
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
/// leads ([`crate::process::leads_own_group`]): its trial forks end; it (blocking the
/// signal) does not.
///
/// # Errors
/// The OS error of `kill`.
pub fn end_trial_forks() -> io::Result<()> {
    let group = nix::unistd::Pid::from_raw(-(std::process::id() as i32));
    nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGUSR1)?;
    Ok(())
}
