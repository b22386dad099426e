//! The seam between Chronus's failover engine and the DSP it carries.
//!
//! The engine — worker processes in lockstep, shared-memory rings, pidfd
//! death detection, the watchdog, checksums, joins from snapshots, command
//! journals, offline rendering — knows nothing about what a DSP computes.
//! A DSP implements [`Dsp`]:
//!
//! * [`Dsp::prepare`] allocates everything, from the [`Setup`] (sample rate,
//!   block) and its own configuration;
//! * [`Dsp::render`] renders one [`Block`] with its [`Event`]s applied at
//!   their exact frames, never allocating, locking or panicking;
//! * [`Dsp::snapshot`] / [`Dsp::restore`] copy its complete state as bytes of
//!   a fixed length; [`Dsp::reset`] returns to silence;
//! * [`Dsp::addresses`] declares its address table ([`AddressSpec`]: names,
//!   argument types, ranges, units), through which OSC, scores, journals and
//!   `/error` replies reach it.
//!
//! The written contract — determinism above all — is on [`Dsp`]. The
//! control plane holds a DSP as a [`DspSpec`] (type erased); workers and the
//! offline renderer hold a prepared [`DynDsp`].
#![forbid(unsafe_code)]

pub mod address;
mod contract;
mod error;
mod event;
mod files;
mod spec;

pub use address::{AddressSpec, AddressTable, Arg, ArgKind, ArgSpec};
pub use contract::{Block, Dsp, DspStats, Piece, Setup};
pub use error::{AddressError, DspError, TableError};
pub use event::{BlockEvent, ENGINE_ADDRESSES, Event, MAX_ARGS, POISON, POISON_KINDS, TimedEvent};
pub use files::{AnyFile, FileError, Files, MAX_FILE_BYTES, NoFiles};
pub use spec::{DspSpec, DynDsp};
