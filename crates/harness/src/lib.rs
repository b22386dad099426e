//! What measures and checks a Chronus engine, apart from the engine: the
//! failover summary of a run ([`FailoverSummary`]), a run's files checked
//! against its journal ([`verify_files`]), the determinism check of a DSP
//! ([`check_determinism`]), and a looped workload ([`play_looped`]).
#![forbid(unsafe_code)]

mod determinism;
mod files;
mod summary;
mod workload;

pub use determinism::{DeterminismReport, check_determinism};
pub use files::{FileCheck, verify_files};
pub use summary::{ClassFigures, FailoverSummary};
pub use workload::play_looped;
