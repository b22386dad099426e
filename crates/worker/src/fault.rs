//! Faults a worker inflicts on itself when the supervisor asks (and allowed
//! injection). Each kind behaves like the real thing, seen from outside.

use chronus_ipc::FaultKind;

/// The message of an injected panic (the worker's panic hook tells it from
/// a real one by it).
pub const INJECTED_PANIC: &str = "injected fault: panic in the render loop";

/// What `/test/poison` does to every worker that applies it: `0` crashes
/// (a segmentation fault), `1` hangs (an infinite loop), `2` makes a system
/// call the sandbox forbids (it dies of SIGSYS). Any other kind is ignored.
pub(crate) fn poison(kind: u32) {
    match kind {
        0 => chronus_sys::sandbox::segfault(),
        1 => loop {
            std::hint::spin_loop();
        },
        2 => forbidden_call(),
        _ => {}
    }
}

/// Opens a file, as a DSP that reads one while it renders would: a call
/// the sandbox forbids (without a sandbox, nothing happens).
fn forbidden_call() {
    let _ = std::fs::File::open("/etc/hostname");
}

/// Inflicts `kind`. Returns only for kinds that keep the worker running
/// (`slow`: returns true so the caller slows down; `diverge` is done by the
/// caller, which owns the synth).
pub(crate) fn inflict(kind: FaultKind) -> bool {
    match kind {
        FaultKind::Kill => {
            chronus_sys::process::raise(chronus_sys::SIGKILL);
        }
        FaultKind::Segv => chronus_sys::sandbox::segfault(),
        FaultKind::Abort => std::process::abort(),
        FaultKind::Panic => std::panic::panic_any(INJECTED_PANIC),
        FaultKind::Exit0 => std::process::exit(0),
        FaultKind::Exit1 => std::process::exit(1),
        FaultKind::Hang => loop {
            std::hint::spin_loop();
        },
        FaultKind::Stop => {
            chronus_sys::process::raise(chronus_sys::SIGSTOP);
        }
        FaultKind::Slow => return true,
        FaultKind::Diverge => {}
        FaultKind::Syscall => forbidden_call(),
    }
    false
}
