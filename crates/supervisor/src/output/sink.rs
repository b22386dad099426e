//! Sinks: what paces the output. A real-time sink waits for the next period
//! and never waits for audio (a missing frame is an underrun); a
//! free-running sink runs as fast as the workers render and waits for audio
//! instead (for fast tests).

use std::time::{Duration, Instant};

/// Paces the output thread.
pub trait Sink: Send + 'static {
    /// Waits until the next period of `frames` frames is due; returns the
    /// latest instant its frames can still be delivered in time (`None`: no
    /// limit, wait for the audio however long it takes).
    fn wait_period(&mut self, frames: u32) -> Option<Instant>;
    /// Whether this sink plays in real time.
    fn is_realtime(&self) -> bool;
}

/// A real-time sink with no device: wakes once per period on the monotonic
/// clock, at absolute deadlines, so it does not drift. It models a device
/// whose buffer holds `buffer_periods` periods: a period is due when the
/// device has room for it, and must be delivered before it starts playing,
/// `buffer_periods - 1` periods later. On time, the frames are already
/// rendered and nothing waits; an output thread that fell behind
/// (descheduled, a stalled machine) may wait for them until then, and only
/// then plays silence, as a real device would.
#[derive(Debug)]
pub struct PacedSink {
    sample_rate: u32,
    buffer_periods: u32,
    start: Option<Instant>,
    frames: u64,
}

/// Periods of buffer of [`PacedSink::new`]: a common ALSA set-up.
pub const DEFAULT_BUFFER_PERIODS: u32 = 3;

impl PacedSink {
    /// A paced sink at `sample_rate` Hz with [`DEFAULT_BUFFER_PERIODS`].
    pub fn new(sample_rate: u32) -> Self {
        Self::with_buffer(sample_rate, DEFAULT_BUFFER_PERIODS)
    }

    /// A paced sink modelling a device buffer of `buffer_periods` periods
    /// (at least 2: one playing, one being filled).
    pub fn with_buffer(sample_rate: u32, buffer_periods: u32) -> Self {
        Self { sample_rate, buffer_periods: buffer_periods.max(2), start: None, frames: 0 }
    }
}

impl Sink for PacedSink {
    fn wait_period(&mut self, frames: u32) -> Option<Instant> {
        let start = *self.start.get_or_insert_with(Instant::now);
        let at =
            |frame: u64| start + Duration::from_nanos(frame * 1_000_000_000 / u64::from(self.sample_rate));
        let due = at(self.frames);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let plays_at = at(self.frames + u64::from(self.buffer_periods - 1) * u64::from(frames));
        self.frames += u64::from(frames);
        Some(plays_at)
    }

    fn is_realtime(&self) -> bool {
        true
    }
}

/// A sink that never waits: the output runs as fast as the workers render.
#[derive(Debug, Default)]
pub struct FreeRunningSink;

impl Sink for FreeRunningSink {
    fn wait_period(&mut self, _frames: u32) -> Option<Instant> {
        None
    }

    fn is_realtime(&self) -> bool {
        false
    }
}
