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
//! layouts are in [`layout`]. All OS calls are in the private `sys` module;
//! all raw views into a mapping are made in the private `mapping` module.
//! Both are small and every `unsafe` block carries its `// SAFETY:`
//! argument.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod audio_ring;
mod bus;
mod error;
pub mod event_log;
mod fault;
pub mod layout;
mod mapping;
mod snapshot;
mod sys;
mod worker_region;

pub use audio_ring::{AudioReader, AudioWriter, NotAvailable};
pub use bus::Bus;
pub use error::IpcError;
pub use event_log::{Full, LogEntry, LogReader, LogWriter};
pub use fault::FaultKind;
pub use layout::{Geometry, SandboxMode, StartError, StartKind, WorkerState};
pub use snapshot::{HASH_SEED, SnapshotInfo, checksum_samples, hash_words};
pub use sys::{
    DIE_BY_CALL, TRIAL_END_SIGNAL, ThreadCounter, accept_trial_end_signal, adopt_fd, block_trial_end_signal,
    end_trial_forks, fork_single_threaded, futex_wait, futex_wake, inherit_fds, leads_own_group,
    monotonic_ns, segfault, set_thread_fifo, thread_policy,
};
pub use worker_region::{ForbiddenCalls, Recorder, StartRequest, TrialExit, WorkerRegion, stop_token};

#[cfg(test)]
mod tests;
