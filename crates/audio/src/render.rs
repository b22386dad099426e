//! What an audio driver (a cpal device, a JACK client) calls: the renderer
//! interface and the counters the driver keeps.

use std::sync::atomic::{AtomicU32, AtomicU64};

/// What a device callback tells the renderer besides the buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallbackInfo {
    /// Frames the device played as silence just before this buffer (an
    /// xrun): measured from the stream's timestamps, at least one period
    /// when the device reported an xrun.
    pub xrun_frames: u64,
    /// Frames per callback the device is configured for now.
    pub period: u32,
    /// Frames the device may ask for in quick succession: its whole buffer
    /// (two periods), which it drains at once when its graph runs a larger
    /// quantum, and asks for at once when a stream starts.
    pub buffer: u32,
    /// The driver calls exactly once per period, a period apart (JACK): the
    /// frames of the next call need only be ready by then.
    pub steady: bool,
    /// CLOCK_MONOTONIC ns at which this buffer's first frame reaches the
    /// output, when the driver knows it (0: unknown).
    pub output_time_ns: u64,
}

/// Renders what a device callback asks for.
pub trait DeviceRender: Send + 'static {
    /// Called before the stream starts (and before each rebuild), off the
    /// device's thread, with the device's buffer ([`CallbackInfo::buffer`]):
    /// that many frames may be asked for back to back, so that much should
    /// be ready from the first callback on.
    fn prepare(&mut self, buffer: u32) {
        let _ = buffer;
    }

    /// Fills `left` and `right` (equal lengths, any number of frames).
    /// Called on the device's thread: it must not allocate, lock or wait.
    fn render(&mut self, left: &mut [f32], right: &mut [f32], info: &CallbackInfo);

    /// A MIDI message that arrived `offset` frames into the buffer the next
    /// [`DeviceRender::render`] call fills (JACK MIDI input), in order.
    /// Called on the device's thread, before that call: it must not
    /// allocate, lock or wait.
    fn midi(&mut self, offset: u32, bytes: &[u8]) {
        let _ = (offset, bytes);
    }
}

/// Counters of a device output, readable while it plays.
#[derive(Debug, Default)]
pub struct DeviceCounters {
    /// Xruns the device reported.
    pub xruns: AtomicU64,
    /// Frames the device played as silence (see [`CallbackInfo::xrun_frames`]).
    pub xrun_frames: AtomicU64,
    /// Other errors the device reported.
    pub errors: AtomicU64,
    /// Times the stream was rebuilt with a larger period, or a JACK client
    /// reconnected after its server came back.
    pub rebuilds: AtomicU64,
    /// The period now, frames.
    pub period: AtomicU32,
}
