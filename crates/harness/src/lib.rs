//! What measures and checks a Chronus engine, apart from the engine: the
//! failover summary of a run ([`FailoverSummary`]), a run's files checked
//! against its journal ([`verify_files`]), the determinism check of a DSP
//! ([`check_determinism`]), a looped workload ([`play_looped`]), and the
//! kernel's floor for crash detection on this machine ([`kill_floor`]).
#![forbid(unsafe_code)]

mod determinism;
mod files;
pub mod kill_floor;
mod summary;
mod workload;

pub use determinism::{DeterminismReport, check_determinism};
pub use files::{FileCheck, verify_files};
pub use summary::{ClassFigures, FailoverSummary};
pub use workload::play_looped;
