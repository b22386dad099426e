//! Clocks.

/// Nanoseconds of CLOCK_MONOTONIC, comparable across processes (the vDSO:
/// no system call, real-time safe).
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// CPU time used so far by process `pid` (all its threads), in ns; `None`
/// when it cannot be read (it was reaped). A system call, no I/O.
pub fn process_cpu_ns(pid: u32) -> Option<u64> {
    let clock = nix::time::clock_getcpuclockid(nix::unistd::Pid::from_raw(pid as i32)).ok()?;
    let t = clock.now().ok()?;
    Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}
