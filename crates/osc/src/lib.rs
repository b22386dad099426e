//! OSC control of Chronus.
//!
//! [`OscServer`] binds a UDP socket (127.0.0.1:57120 by default) and turns
//! each message into engine events through the DSP's address table (the one
//! scores and journals use: [`chronus_dsp::AddressTable`]), plus the control
//! addresses `/status` and `/quit`. Bundles apply at the frame their time tag
//! names. Anything wrong — undecodable bytes, unknown addresses, wrong
//! argument types or counts, out-of-range voices, NaN, oversized packets,
//! files outside the patch directory — gets an `/error` reply and a
//! counter, never a crash and never a glitch. Senders not allowed
//! ([`Allow`]: loopback, and the networks the user named) are dropped
//! unread and counted; a socket beyond loopback with nobody named is
//! refused ([`OscError::Exposed`]). What a sender may make the DSP read is
//! a [`PatchDir`] or the [`Bundled`] presets, never any file. The address
//! space and who may do what are documented in `docs/osc.md`.
#![forbid(unsafe_code)]

mod decode;
mod files;
mod server;
mod status_reply;

pub use decode::{Decoded, Item, Target, decode_packet};
pub use files::{Bundled, PatchDir};
pub use server::{Allow, DEFAULT_ADDR, MAX_PACKET, OscError, OscListener, OscServer, OscStats};
pub use status_reply::{STATUS_FIELDS, ServerSide, StatusReply};
