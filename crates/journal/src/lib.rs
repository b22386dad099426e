//! Text formats of Chronus and offline rendering, for any DSP on the seam.
//!
//! * [`text`]: the event journal, one stamped event per line plus what else
//!   the render needs (stalls, gaps, excisions, resets), which replays a run
//!   bit for bit; read whole or streamed.
//! * [`score`]: hand-written scores with times in seconds.
//! * [`render`]: renders stamped events in-process, block by block on the
//!   run's grid, exactly as a worker process does.
//!
//! Every line goes through the DSP's address table
//! ([`chronus_dsp::DspSpec`]): nothing here knows what the DSP is.
#![forbid(unsafe_code)]

mod compare;
mod error;
pub mod render;
pub mod score;
pub mod text;

pub use compare::{compare, first_difference};
pub use error::JournalError;
pub use render::{Rendered, Renderer, default_length, render_offline};
pub use score::parse_score;
pub use text::{
    Annotations, FrameSpan, JOURNAL_MAGIC, Journal, JournalHeader, JournalReader, JournalWriter, Line,
    fade_gain, format_event, read_header,
};
