//! Shared memory between the Chronus supervisor and its DSP workers.
//!
//! * One [`WorkerRegion`] per worker: control words, heartbeat, the
//!   [`audio_ring`] (worker → supervisor, indexed by absolute frame) and a
//!   snapshot area.
//! * One [`Bus`] per engine, read-only for workers: the render limit, the
//!   [`event_log`] every worker reads (one producer, fixed-size stamped
//!   slots), checkpoints to start from, the excision table, the DSP's name
//!   and configuration.
//!
//! Each is a sealed `memfd` (no `/dev/shm` name, nothing left behind when
//! anything is SIGKILLed) with a versioned header checked on attach. The
//! layouts are in [`layout`]. The OS calls are chronus-sys's; all raw views
//! into a mapping are made in the private `mapping` module, the only one
//! allowed `unsafe` (every block carries its `// SAFETY:` argument).
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod audio_ring;
mod bus;
mod error;
pub mod event_log;
mod fault;
pub mod layout;
#[allow(unsafe_code)] // typed views into the shared mapping
mod mapping;
pub mod protocol;
mod snapshot;
mod worker_region;

pub use audio_ring::{AudioReader, AudioWriter, NotAvailable};
pub use bus::Bus;
pub use error::IpcError;
pub use event_log::{Full, LogEntry, LogReader, LogWriter};
pub use fault::FaultKind;
pub use layout::{Geometry, SandboxMode, StartError, StartKind, WorkerState};
pub use snapshot::{HASH_SEED, SnapshotInfo, checksum_samples, hash_words};
pub use worker_region::{Recorder, StartRequest, TrialExit, WorkerRegion, stop_token};

#[cfg(test)]
mod tests;
