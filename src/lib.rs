//! Chronus: a real-time audio DSP engine that keeps playing when its DSP
//! process dies.
//!
//! This facade re-exports the workspace crates so an application can depend
//! on `chronus` alone:
//! * [`dsp`]: the DSP (`Synth`, `Voice`, `SimpleSine`, `Adsr`, `Biquad`), usable
//!   in-process with no supervisor;
//! * [`journal`]: scores, command journals and offline rendering;
//! * [`ipc`]: the shared-memory regions and rings between processes;
//! * [`worker`]: the DSP worker process;
//! * [`supervisor`]: the failover engine (`Engine`), to embed the whole thing;
//! * [`osc`]: OSC control (the UDP server);
//! * [`audio`]: audio outputs (WAV).
#![forbid(unsafe_code)]

pub use chronus_audio as audio;
pub use chronus_dsp as dsp;
pub use chronus_ipc as ipc;
pub use chronus_journal as journal;
pub use chronus_osc as osc;
pub use chronus_supervisor as supervisor;
pub use chronus_worker as worker;
