//! Deterministic, allocation-free DSP for Chronus.
//!
//! The building blocks — [`SimpleSine`], [`Adsr`], [`Biquad`] — can be used
//! one sample at a time, chained in a [`Voice`], or run by the hundreds in a
//! [`Synth`], which lays voices out in 8-lane chunks so the chain vectorises.
//!
//! Contract of this crate:
//! * **Prepare, then run.** [`Synth::new`] allocates everything; applying
//!   commands and rendering never allocate, lock, log or panic.
//! * **Hostile input is harmless.** NaN and infinities are refused with a
//!   [`SynthError`]; finite out-of-range values are clamped; the output stays
//!   finite and bounded.
//! * **Deterministic.** The output is a pure function of the commands and
//!   the frames they apply at: the same journal renders bit-identically in any
//!   process running the same binary, however the blocks are split. Filter
//!   memories are flushed below 1e-20 every [`FLUSH_PERIOD`] frames so no
//!   state can become denormal.
//! * **Snapshots.** [`Synth::snapshot_into`] and [`Synth::restore`] copy the
//!   complete state as plain `#[repr(C)]` data.
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod adsr;
mod bank;
pub mod biquad;
mod command;
mod error;
pub mod gain;
pub mod master;
pub mod midi;
pub mod notes;
mod param;
pub mod patch;
pub mod patch_change;
pub mod rich;
mod seam;
pub mod simd;
pub mod sine;
mod snapshot;
mod synth;
mod voice;
pub mod wavetable;

pub use adsr::{Adsr, AdsrParams, Stage};
pub use bank::{LANES, VoiceChunk, VoiceControl};
pub use biquad::{Biquad, BiquadCoefs, FilterKind};
pub use command::{Command, CommandSource, SliceSource, TimedCommand};
pub use error::SynthError;
pub use master::{BusState, MasterBus};
pub use midi::MidiMap;
pub use notes::{ANONYMOUS, NoteSlot, NoteTable};
pub use param::{Param, VoiceParams};
pub use seam::{
    NOTE_OFF, NOTE_OFF_ID, NOTE_ON, NOTE_ON_ID, NOTE_SET, PARAM_NAMES, PATCH_BEGIN, SET, VOICE_SET,
};
pub use sine::SimpleSine;
pub use snapshot::{SNAPSHOT_MAGIC, SNAPSHOT_VERSION, SnapshotHeader, SynthSnapshot};
pub use synth::{MAX_VOICES, SAMPLE_RATE_RANGE, Synth, SynthConfig, SynthStats};
pub use voice::Voice;

/// Frames between flushes of tiny filter memories, aligned to absolute frame
/// numbers so the flush points do not depend on block boundaries.
pub const FLUSH_PERIOD: usize = 64;

/// Length of parameter ramps (amplitude, pan, filter, sustain glides), in
/// seconds.
pub const RAMP_SECONDS: f32 = 0.005;
