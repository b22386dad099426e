//! The Chronus failover engine.
//!
//! An [`Engine`] runs two DSP worker processes in lockstep (same commands at
//! the same frames, deterministic DSP), plays frame F from the active's ring
//! and, when the active cannot supply F, from the standby's, without waiting
//! for anyone. A supervisor thread detects a worker's death through its
//! pidfd and a hang or slowness through a watchdog, switches the active, and
//! brings a replacement into verified lockstep in the background from a
//! snapshot of the active.
//!
//! The design as built is in `docs/failover.md` of the repository.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod collector;
mod config;
mod engine;
mod error;
mod events;
mod join;
mod lease;
mod output;
mod report;
mod shared;
mod sink;
mod status;
mod summary;
mod supervise;
mod sys;
mod watchdog;
mod workload;

pub use chronus_ipc::FaultKind;
pub use config::EngineConfig;
pub use engine::Engine;
pub use error::EngineError;
pub use events::{DetectedBy, FailoverEvent, Percentiles, Role};
pub use lease::{Lease, LeaseError};
pub use output::OutputEngine;
pub use report::{FrameSpan, RunReport, UnderrunDetail};
pub use sink::{DEFAULT_BUFFER_PERIODS, FreeRunningSink, PacedSink, Sink};
pub use status::{Health, Status};
pub use summary::FailoverSummary;
pub use supervise::{Target, UNDERRUN_WINDOW};
pub use workload::play_looped;
