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
mod engine;
mod error;
mod events;
mod lease;
mod output;
mod play_log;
mod report;
mod shared;
mod status;

pub use chronus_ipc::FaultKind;
pub use chronus_policy as policy;
pub use chronus_policy::health::UNDERRUN_WINDOW;
pub use config::{EngineConfig, Latency};
pub use control::Target;
pub use engine::Engine;
pub use error::EngineError;
pub use events::{Cut, DetectedBy, ExitStatus, FailoverEvent, History, Percentiles, Role};
pub use lease::{Lease, LeaseError};
pub use output::sink::{DEFAULT_BUFFER_PERIODS, FreeRunningSink, PacedSink, Sink};
pub use output::{FADE_FRAMES, OutputEngine};
pub use report::{FrameSpan, RunReport, UnderrunDetail};
pub use status::{Counters, Health, Status};

pub use chronus_policy::common_mode::POISON_TRIALS;
pub use chronus_policy::watchdog::COMMON_STALL_PATIENCE;
