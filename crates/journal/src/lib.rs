//! Text formats of Chronus and offline rendering.
//!
//! * [`address`]: the address space shared by scores, journals and OSC.
//! * [`text`]: the command journal, one stamped command per line, which
//!   replays a run bit for bit.
//! * [`score`]: hand-written scores with times in seconds.
//! * [`render_offline`]: renders stamped commands in-process, exactly as a
//!   worker process would.
#![forbid(unsafe_code)]

pub mod address;
mod error;
mod render;
pub mod score;
pub mod text;

pub use address::{AddressError, Arg, parse_command};
pub use error::JournalError;
pub use render::{Rendered, default_length, render_offline};
pub use score::parse_score;
pub use text::{FrameSpan, JOURNAL_MAGIC, Journal, JournalWriter, format_line};
