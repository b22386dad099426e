//! The worker's sandbox: once its DSP is prepared, a worker may make only
//! the system calls its render loop and its poison trials need. Anything
//! else is refused by a seccomp filter (rust-vmm's `seccompiler` builds
//! it) and the worker dies of SIGSYS, the call's number in its region, so
//! the engine can name it (`openat`, `socket`, `execve`, …); or, auditing
//! (`chronus check`), the call fails with `EPERM` and is recorded.
//!
//! [`ALLOWED`] is the whole list, with the reason for each call. A few are
//! allowed only with some arguments ([`rules`]): signals only to itself
//! (and its trials' end signal only to its own process group), `clone`
//! only as `fork` (a thread is refused: no threads inside a render),
//! `prctl` only for `PR_SET_PDEATHSIG`, `sched_setscheduler` only on
//! itself, `rt_sigaction` never for SIGSYS (the sandbox's own handler),
//! `write` only to stdout and stderr, `pread64` only of its thread counter,
//! `fcntl` only to ask whether an fd is open.

use std::collections::BTreeMap;

use chronus_ipc::{Recorder, SandboxMode, WorkerRegion};
use chronus_sys::process::ThreadCounter;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond,
    SeccompFilter, SeccompRule, TargetArch,
};
use syscalls::Sysno;

use crate::WorkerError;

/// The system calls a sandboxed worker may make, and why. Those marked in
/// [`rules`] only with some arguments.
pub const ALLOWED: &[(Sysno, &str)] = &[
    (Sysno::futex, "waiting for the render limit, the ring and requests; waking the supervisor; locks"),
    (Sysno::clock_gettime, "the clock (the vDSO answers when it can; the call itself when it cannot)"),
    (Sysno::clock_getres, "the clock's resolution (as clock_gettime)"),
    (Sysno::gettimeofday, "the wall clock (as clock_gettime)"),
    (Sysno::clock_nanosleep, "pauses: watching a trial's fork, the injected `slow` fault"),
    (Sysno::nanosleep, "pauses (as clock_nanosleep)"),
    (Sysno::sched_yield, "a wait that yields the CPU"),
    (Sysno::restart_syscall, "a sleep resumed after a signal"),
    (Sysno::getpid, "its own pid (raise(), abort())"),
    (Sysno::gettid, "its own thread id (raise(), abort())"),
    (Sysno::getppid, "a trial's fork checks its worker is still its parent"),
    (Sysno::tgkill, "signals to itself only: abort() and raise(), so a crash stays a crash"),
    (Sysno::tkill, "signals to itself only (as tgkill)"),
    (Sysno::kill, "signals to itself only, and its trials' end signal to its own process group"),
    (Sysno::wait4, "reaping its trial's fork (only its own children can be waited for)"),
    (Sysno::waitid, "reaping its trial's fork (as wait4)"),
    (Sysno::clone, "forking a poison trial, as fork() does; a thread's flags are refused"),
    (Sysno::set_robust_list, "glibc, in a forked trial"),
    (Sysno::rseq, "glibc, in a forked trial"),
    (Sysno::prctl, "PR_SET_PDEATHSIG only: a trial's fork dies with its worker"),
    (Sysno::sched_setscheduler, "on itself only: a trial's fork takes its worker's real-time priority"),
    (
        Sysno::rt_sigaction,
        "not for SIGSYS: Rust puts SIGSEGV's default back so a crash kills; abort(); a trial",
    ),
    (Sysno::rt_sigprocmask, "signal masks: abort(), raise(), a trial accepting its end signal"),
    (Sysno::rt_sigreturn, "returning from a signal handler"),
    (Sysno::sigaltstack, "Rust's stack-overflow handler"),
    (Sysno::pread64, "its thread counter only (/proc/self/stat, opened before): a fork needs one thread"),
    (Sysno::write, "stdout and stderr only: a panic's one line (stdout is /dev/null)"),
    (Sysno::writev, "stdout and stderr only (as write)"),
    (Sysno::mmap, "memory (a panic allocates its message); mappings of its own fds (the bus is sealed)"),
    (Sysno::munmap, "memory (what a panic allocated, given back)"),
    (Sysno::mremap, "memory (glibc's allocator growing a block)"),
    (Sysno::mprotect, "memory (glibc's allocator; a read-only mapping of the bus cannot become writable)"),
    (Sysno::madvise, "memory (glibc's allocator giving pages back)"),
    (Sysno::brk, "memory (glibc's allocator)"),
    (Sysno::close, "its own fds, when it stops"),
    (Sysno::fcntl, "F_GETFD only: Rust's runtime checks an fd is open before it closes it (debug builds)"),
    (Sysno::exit, "ending (a thread)"),
    (Sysno::exit_group, "ending (the process: a stop, a panic, an exit)"),
];

/// glibc's `fork()`: `clone(CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID |
/// SIGCHLD)`, the only `clone` allowed.
const FORK_FLAGS: u64 = (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as u64;

/// The name of system call `nr` on this architecture (`openat`), or its
/// number when it has none here.
pub fn call_name(nr: u32) -> String {
    Sysno::new(nr as usize).map_or_else(|| format!("system call {nr}"), |s| s.name().to_owned())
}

/// Whether system call `nr` is on the allowed list (some only with some
/// arguments).
pub fn is_allowed(nr: u32) -> bool {
    ALLOWED.iter().any(|(s, _)| s.id() as u32 == nr)
}

/// An `arg == value` condition on the low 32 bits (an `int` argument).
fn eq32(arg: u8, value: u32) -> Cond {
    Cond::new(arg, Len::Dword, Op::Eq, u64::from(value)).expect("a valid condition")
}

fn rule(conditions: Vec<Cond>) -> SeccompRule {
    SeccompRule::new(conditions).expect("a rule with conditions")
}

/// The argument rules of the calls allowed only with some arguments, for a
/// worker of pid `pid`, leading its own process group if `leads_group`,
/// reading its thread count through fd `thread_counter`.
pub fn rules(pid: u32, leads_group: bool, thread_counter: i32) -> BTreeMap<i64, Vec<SeccompRule>> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|(s, _)| (i64::from(s.id()), Vec::new())).collect();
    let mut only = |call: Sysno, r: Vec<SeccompRule>| {
        rules.insert(i64::from(call.id()), r);
    };
    let to_self = || vec![rule(vec![eq32(0, pid)])];
    only(Sysno::tgkill, to_self());
    only(Sysno::tkill, to_self());
    let mut kill = to_self();
    if leads_group {
        // kill(-pgid, TRIAL_END_SIGNAL): its group is itself and its forks.
        let group = (pid as i32).wrapping_neg() as u32;
        kill.push(rule(vec![eq32(0, group), eq32(1, chronus_sys::sandbox::TRIAL_END_SIGNAL as u32)]));
    }
    only(Sysno::kill, kill);
    only(Sysno::clone, vec![rule(vec![Cond::new(0, Len::Qword, Op::Eq, FORK_FLAGS).expect("valid")])]);
    only(Sysno::prctl, vec![rule(vec![eq32(0, libc::PR_SET_PDEATHSIG as u32)])]);
    only(Sysno::sched_setscheduler, vec![rule(vec![eq32(0, 0)])]);
    only(
        Sysno::rt_sigaction,
        vec![rule(vec![Cond::new(0, Len::Dword, Op::Ne, libc::SIGSYS as u64).expect("valid")])],
    );
    only(Sysno::pread64, vec![rule(vec![eq32(0, thread_counter as u32)])]);
    only(Sysno::fcntl, vec![rule(vec![eq32(1, libc::F_GETFD as u32)])]);
    let std_out_err = || vec![rule(vec![eq32(0, 1)]), rule(vec![eq32(0, 2)])];
    only(Sysno::write, std_out_err());
    only(Sysno::writev, std_out_err());
    rules
}

/// The seccomp program for a worker of pid `pid` (see [`rules`]): allowed
/// calls pass, any other traps into the sandbox's SIGSYS handler.
///
/// # Errors
/// [`WorkerError::Sandbox`] on an architecture `seccompiler` does not
/// support.
pub fn program(pid: u32, leads_group: bool, thread_counter: i32) -> Result<BpfProgram, WorkerError> {
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|_| WorkerError::Sandbox(format!("no seccomp filter for {}", std::env::consts::ARCH)))?;
    let filter = SeccompFilter::new(
        rules(pid, leads_group, thread_counter),
        SeccompAction::Trap,
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| WorkerError::Sandbox(format!("the filter: {e}")))?;
    filter.try_into().map_err(|e: seccompiler::BackendError| WorkerError::Sandbox(format!("the filter: {e}")))
}

/// Puts the calling worker under its sandbox in `mode` (nothing for
/// [`SandboxMode::Off`]): `PR_SET_NO_NEW_PRIVS`, the SIGSYS handler that
/// records refused calls in `region`, and the filter, on every thread.
/// Call once prepared (everything allocated, memory locked, priority
/// taken), just before the render loop; `threads` must be open already;
/// `leads_group`: the worker leads its own process group (its trials'
/// forks may then be ended by a signal to the group).
///
/// # Errors
/// [`WorkerError::Sandbox`]: the handler or the filter could not be set up
/// (the worker must not run unsandboxed when asked to run sandboxed).
pub fn enter(
    region: &'static WorkerRegion,
    mode: SandboxMode,
    threads: &ThreadCounter,
    leads_group: bool,
) -> Result<(), WorkerError> {
    if mode == SandboxMode::Off {
        return Ok(());
    }
    let program = program(std::process::id(), leads_group, threads.fd())?;
    region
        .record_forbidden_calls(Recorder::Worker, mode == SandboxMode::Audit)
        .map_err(|e| WorkerError::Sandbox(format!("the SIGSYS handler: {e}")))?;
    // Its trials' forks end by this signal, sent to the group; the worker
    // itself must not.
    chronus_sys::sandbox::block_trial_end_signal()
        .map_err(|e| WorkerError::Sandbox(format!("sigprocmask: {e}")))?;
    chronus_sys::sandbox::install_seccomp(&program)
        .map_err(|e| WorkerError::Sandbox(format!("the seccomp filter: {e}")))?;
    region.set_sandbox(mode);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allowed_call_has_a_reason_and_the_dangerous_ones_are_not_allowed() {
        for (call, why) in ALLOWED {
            assert!(why.len() > 8, "{call:?}");
        }
        let names: Vec<&str> = ALLOWED.iter().map(|(s, _)| s.name()).collect();
        for forbidden in [
            "openat",
            "open",
            "read",
            "socket",
            "connect",
            "execve",
            "ptrace",
            "process_vm_writev",
            "clone3",
            "pidfd_open",
            "pidfd_send_signal",
            "dup2",
            "dup3",
            "setsockopt",
            "ioctl",
            "getrandom",
            "unshare",
            "setns",
            "memfd_create",
            "fchmod",
            "ftruncate",
            "fallocate",
        ] {
            assert!(!names.contains(&forbidden), "{forbidden} must not be allowed");
        }
        assert!(
            !is_allowed(chronus_sys::sandbox::DIE_BY_CALL as u32),
            "the handler dies by a call nobody allows"
        );
        assert_eq!(call_name(Sysno::openat.id() as u32), "openat");
        assert!(program(4242, true, 5).unwrap().len() > ALLOWED.len());
    }

    #[test]
    fn docs_security_lists_every_allowed_call() {
        let doc = include_str!("../../../docs/security.md");
        for (call, _) in ALLOWED {
            assert!(
                doc.contains(&format!("`{}`", call.name())),
                "docs/security.md does not list {}",
                call.name()
            );
        }
    }
}
