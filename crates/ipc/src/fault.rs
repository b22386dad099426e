//! Faults a worker can be told to inflict on itself (tests, benchmarks).
//! Honoured only when the supervisor enabled fault injection for the region.

/// A fault kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum FaultKind {
    /// `SIGKILL` itself.
    Kill = 1,
    /// `SIGSEGV` itself (a segmentation fault).
    Segv = 2,
    /// `abort()`.
    Abort = 3,
    /// Panic in the render loop.
    Panic = 4,
    /// `exit(0)` without being asked to stop.
    Exit0 = 5,
    /// `exit(1)`.
    Exit1 = 6,
    /// Spin forever in the render loop (an infinite loop).
    Hang = 7,
    /// Render every block far over its time budget.
    Slow = 8,
    /// `SIGSTOP` itself (frozen, as by `kill -STOP`).
    Stop = 9,
    /// Silently change its own synth state once (a bit flip, a bug):
    /// it keeps running but no longer agrees with the journal.
    Diverge = 10,
    /// Make a system call its sandbox forbids (open a file, as a DSP that
    /// reads one while rendering would): the sandbox kills it with SIGSYS.
    /// Only for a sandboxed worker.
    Syscall = 11,
}

impl FaultKind {
    /// Every kind the benchmarks and soak inflict.
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Kill,
        FaultKind::Segv,
        FaultKind::Abort,
        FaultKind::Panic,
        FaultKind::Exit0,
        FaultKind::Exit1,
        FaultKind::Hang,
        FaultKind::Slow,
        FaultKind::Stop,
        FaultKind::Syscall,
        FaultKind::Diverge,
    ];

    /// The kind with this code.
    pub fn from_u32(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u32 == code)
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Segv => "segv",
            FaultKind::Abort => "abort",
            FaultKind::Panic => "panic",
            FaultKind::Exit0 => "exit0",
            FaultKind::Exit1 => "exit1",
            FaultKind::Hang => "hang",
            FaultKind::Slow => "slow",
            FaultKind::Stop => "stop",
            FaultKind::Diverge => "diverge",
            FaultKind::Syscall => "syscall",
        }
    }

    /// The kind with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the process stays alive (so only the watchdog can catch it).
    pub fn is_stall(self) -> bool {
        matches!(self, FaultKind::Hang | FaultKind::Slow | FaultKind::Stop)
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
