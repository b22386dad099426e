//! Shared memory between the Chronus supervisor and its DSP workers.
//!
//! One [`Region`] per worker: a sealed `memfd` (no `/dev/shm` name, nothing
//! left behind when anything is SIGKILLed) mapped by both processes, with a
//! versioned header checked on attach, a control block, heartbeat counters,
//! an [`audio_ring`] (worker → supervisor, indexed by absolute frame), a
//! [`command_ring`] (supervisor → worker, fixed-size stamped slots) and a
//! snapshot area. The layout is in [`layout`].
//!
//! All OS calls are in the private `sys` module; all raw views into the
//! mapping are made in the private `shm` module. Both are small and every
//! `unsafe` block carries its `// SAFETY:` argument.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod audio_ring;
pub mod command_ring;
mod control;
mod error;
mod fault;
pub mod layout;
mod shm;
mod snapshot_area;
mod sys;

pub use audio_ring::{AudioReader, AudioWriter, NotAvailable};
pub use command_ring::{CommandReader, CommandWriter, Full, Slot};
pub use control::{CHECKSUM_SEED, checksum_samples, stop_token};
pub use error::IpcError;
pub use fault::FaultKind;
pub use layout::{Geometry, WorkerState};
pub use shm::Region;
pub use snapshot_area::{SnapshotBuffers, copy_snapshot, snapshot_frame};
pub use sys::{adopt_fd, futex_wait, futex_wake, inherit_fd, monotonic_ns, set_thread_fifo};

#[cfg(test)]
mod tests;
