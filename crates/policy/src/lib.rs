//! The failover policy: every rule about when a worker is dead, hung, slow
//! or diverged, how a replacement joins, when restarts back off or stop,
//! what the health is. Plain state machines with no I/O, driven by what the
//! supervisor observes and a clock it passes in (nanoseconds), so each rule
//! lives in one place and is unit-tested with a fake clock. The supervisor
//! thread (chronus-supervisor's `control`) gathers the observations and
//! carries out the decisions. No I/O, no unsafe, no clock of its own.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod common_mode;
pub mod determinism;
pub mod health;
pub mod join;
pub mod placement;
pub mod referee;
pub mod restart;
pub mod watchdog;

/// Nanoseconds on the clock the caller passes in (CLOCK_MONOTONIC in the
/// engine, a counter in tests).
pub type Nanos = u64;

/// Most worker slots an engine has (replicas and spares).
pub const MAX_SLOTS: usize = 8;

/// Milliseconds as [`Nanos`].
pub const fn ms(n: u64) -> Nanos {
    n * 1_000_000
}
