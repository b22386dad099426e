//! OSC control of Chronus.
//!
//! [`OscServer`] binds a UDP socket (127.0.0.1:57120 by default) and turns
//! each message into engine events through the DSP's address table (the one
//! scores and journals use: [`chronus_dsp::AddressTable`]), plus the control
//! addresses `/status` and `/quit`. Bundles apply at the frame their time tag
//! names. Anything wrong — undecodable bytes, unknown addresses, wrong
//! argument types or counts, out-of-range voices, NaN, oversized packets,
//! senders not allowed — gets an `/error` reply and a counter, never a crash
//! and never a glitch. The address space is documented in `docs/osc.md`.
#![forbid(unsafe_code)]

mod decode;
mod server;

pub use decode::{Decoded, Item, Target, decode_packet};
pub use server::{Allow, DEFAULT_ADDR, MAX_PACKET, OscServer, OscStats};
