//! The Chronus failover engine, for any DSP on the seam
//! ([`chronus_dsp::Dsp`]).
//!
//! An [`Engine`] runs replicas of a DSP in worker processes in lockstep (the
//! same events at the same frames, deterministic DSP), plays frame F from
//! the active replica's ring and, when it cannot supply F, from another's,
//! without waiting for anyone. A supervisor thread detects a worker's death
//! through its pidfd and a hang or slowness through a watchdog, switches the
//! active, and brings a replacement into verified lockstep in the
//! background from a snapshot.
//!
//! The rules — watchdog, joins, restarts, health, determinism — are plain
//! state machines in [`policy`], unit-tested with a fake clock; the
//! supervisor thread (`control`) does the process I/O around them; the
//! output thread (`output`) is the real-time path. The design as built is
//! in `docs/failover.md` of the repository.
#![forbid(unsafe_code)]

mod collector;
mod config;
mod control;
mod determinism;
mod engine;
mod error;
mod events;
mod lease;
mod output;
pub mod policy;
mod report;
mod shared;
mod status;
mod summary;
mod workload;

use std::time::Duration;

pub use chronus_ipc::FaultKind;
pub use config::EngineConfig;
pub use control::{Target, UNDERRUN_WINDOW};
pub use determinism::{DeterminismReport, check_determinism};
pub use engine::Engine;
pub use error::EngineError;
pub use events::{Cut, DetectedBy, ExitStatus, FailoverEvent, History, Percentiles, Role};
pub use lease::{Lease, LeaseError};
pub use output::sink::{DEFAULT_BUFFER_PERIODS, FreeRunningSink, PacedSink, Sink};
pub use output::{FADE_FRAMES, OutputEngine};
pub use report::{FileCheck, FrameSpan, RunReport, UnderrunDetail, first_difference, verify_files};
pub use status::{Health, Status};
pub use summary::FailoverSummary;
pub use workload::play_looped;

/// Hang timeouts that live replicas stalled together are given before the
/// watchdog kills them (see [`policy::watchdog`]).
pub const COMMON_STALL_PATIENCE: u32 = 10;

/// Trial runs spent telling which of several suspect commands is a poison
/// (see [`policy::common_mode`]); 8 trials single out one of 256. A crash
/// trial takes 1–2 ms, a hang trial a block period.
pub const POISON_TRIALS: u32 = 8;

/// Longest any step of a join may take.
pub(crate) const JOIN_STEP_TIMEOUT: policy::Nanos = Duration::from_secs(3).as_nanos() as policy::Nanos;
