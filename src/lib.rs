//! Chronus: a real-time audio DSP engine that keeps playing when its DSP
//! process dies — for the built-in synth or for your own DSP.
//!
//! This facade re-exports the workspace crates so an application can depend
//! on `chronus` alone:
//! * [`dsp`]: the seam — the [`dsp::Dsp`] trait a DSP implements to run
//!   under failover, events, address tables;
//! * [`synth`]: the built-in synth (one DSP on the seam), usable in-process;
//! * [`worker`]: the worker process — [`worker::init`] at the top of `main`
//!   makes a program its own worker;
//! * [`supervisor`]: the failover engine ([`supervisor::Engine`]);
//! * [`harness`]: what measures and checks it — [`harness::check_determinism`]
//!   to check a DSP before shipping it, [`harness::FailoverSummary`] of a run;
//! * [`journal`]: scores, event journals and offline rendering;
//! * [`osc`]: OSC control (the UDP server);
//! * [`audio`]: audio outputs (WAV files; the sound card with the `device`
//!   feature, on by default);
//! * [`ipc`]: the shared memory between processes;
//! * [`policy`]: the failover rules as plain state machines;
//! * [`sys`]: the one OS layer (every system call, every `unsafe` OS block).
//!
//! The guide for embedding is `docs/embedding.md`.
#![forbid(unsafe_code)]

pub use chronus_audio as audio;
pub use chronus_dsp as dsp;
pub use chronus_harness as harness;
pub use chronus_ipc as ipc;
pub use chronus_journal as journal;
pub use chronus_osc as osc;
pub use chronus_policy as policy;
pub use chronus_supervisor as supervisor;
pub use chronus_synth as synth;
pub use chronus_sys as sys;
pub use chronus_worker as worker;
