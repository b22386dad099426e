//! Sinks: what paces the output. A real-time sink waits for the next period
//! and never waits for audio (a missing frame is an underrun); a
//! free-running sink runs as fast as the workers render and waits for audio
//! instead (for fast tests).

use std::time::{Duration, Instant};

/// Paces the output thread.
pub trait Sink: Send + 'static {
    /// Waits until the next period of `frames` frames is due.
    fn wait_period(&mut self, frames: u32);
    /// Whether this sink plays in real time (then the output never waits for
    /// audio).
    fn is_realtime(&self) -> bool;
}

/// A real-time sink with no device: wakes once per period on the monotonic
/// clock, at absolute deadlines, so it does not drift.
#[derive(Debug)]
pub struct PacedSink {
    sample_rate: u32,
    start: Option<Instant>,
    frames: u64,
}

impl PacedSink {
    /// A paced sink at `sample_rate` Hz.
    pub fn new(sample_rate: u32) -> Self {
        Self { sample_rate, start: None, frames: 0 }
    }
}

impl Sink for PacedSink {
    fn wait_period(&mut self, frames: u32) {
        let start = *self.start.get_or_insert_with(Instant::now);
        let due = start + Duration::from_nanos(self.frames * 1_000_000_000 / u64::from(self.sample_rate));
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        self.frames += u64::from(frames);
    }

    fn is_realtime(&self) -> bool {
        true
    }
}

/// A sink that never waits: the output runs as fast as the workers render.
#[derive(Debug, Default)]
pub struct FreeRunningSink;

impl Sink for FreeRunningSink {
    fn wait_period(&mut self, _frames: u32) {}

    fn is_realtime(&self) -> bool {
        false
    }
}
