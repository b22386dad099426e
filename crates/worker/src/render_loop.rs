//! The worker's render loop.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::Duration;

use chronus_dsp::{Synth, SynthConfig};
use chronus_ipc::{AudioWriter, CommandReader, Region, WorkerState, monotonic_ns};

use crate::WorkerError;

/// What one [`Worker::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Rendered and published this many frames.
    Rendered(usize),
    /// Nothing to do: not allowed past the render limit, or the ring is full.
    Idle,
    /// A stop was requested.
    Stop,
}

/// Longest sleep between checks for a stop request.
const IDLE_SLEEP: Duration = Duration::from_millis(100);

/// A worker attached to its region.
#[derive(Debug)]
pub struct Worker<'r> {
    region: &'r Region,
    synth: Synth,
    writer: AudioWriter<'r>,
    reader: CommandReader<'r>,
    left: Vec<f32>,
    right: Vec<f32>,
}

impl<'r> Worker<'r> {
    /// Builds the synth for the region's geometry (all allocation happens
    /// here), pre-faults the buffers and reports [`WorkerState::Ready`].
    ///
    /// # Errors
    /// [`WorkerError::Synth`] if the geometry does not make a synth.
    pub fn new(region: &'r Region) -> Result<Self, WorkerError> {
        let g = *region.geometry();
        let synth = Synth::new(SynthConfig::new(g.sample_rate, g.voices))?;
        let block = g.max_block as usize;
        let worker = Self {
            region,
            synth,
            writer: AudioWriter::new(region),
            reader: CommandReader::new(region),
            // vec! of zeros writes every page: pre-faulted.
            left: vec![0.0; block],
            right: vec![0.0; block],
        };
        region.control().pid.store(std::process::id(), Release);
        region.set_worker_state(WorkerState::Ready);
        Ok(worker)
    }

    /// The synth (for inspection).
    pub fn synth(&self) -> &Synth {
        &self.synth
    }

    /// Frames this worker may render now: up to the render limit, the ring's
    /// space and the next multiple of the block size (so every worker renders
    /// the same block grid).
    fn renderable(&self) -> usize {
        let frame = self.synth.frame();
        let block = self.left.len() as u64;
        let limit = self.region.control().render_limit.load(Acquire);
        let to_grid = block - frame % block;
        limit.saturating_sub(frame).min(self.writer.space()).min(to_grid) as usize
    }

    /// Renders and publishes at most one block. Never allocates, locks or
    /// blocks.
    pub fn step(&mut self) -> Step {
        if self.region.stop_requested() {
            return Step::Stop;
        }
        let n = self.renderable();
        if n == 0 {
            return Step::Idle;
        }
        let start = monotonic_ns();
        let (left, right) = (&mut self.left[..n], &mut self.right[..n]);
        self.synth.render_with(left, right, &mut self.reader);
        // Cannot fail: n ≤ space, and only this worker writes.
        let _ = self.writer.write(left, right);
        let end = monotonic_ns();
        let hb = self.region.heartbeat();
        let stats = self.synth.stats();
        hb.commands_applied.store(stats.applied, Relaxed);
        hb.commands_rejected.store(stats.rejected + self.reader.corrupt(), Relaxed);
        hb.commands_late.store(stats.late + self.reader.out_of_order(), Relaxed);
        hb.render_ns_last.store(end - start, Relaxed);
        hb.render_ns_max.fetch_max(end - start, Relaxed);
        hb.last_progress_ns.store(end, Relaxed);
        hb.blocks.fetch_add(1, Release);
        Step::Rendered(n)
    }

    /// Steps until a stop is requested, sleeping on the region's wake futex
    /// while idle; then reports [`WorkerState::Stopped`].
    pub fn run(&mut self) {
        loop {
            match self.step() {
                Step::Rendered(_) => {}
                Step::Stop => break,
                Step::Idle => {
                    let region = self.region;
                    region.worker_sleep(IDLE_SLEEP, || region.stop_requested() || self.renderable() > 0);
                }
            }
        }
        self.region.set_worker_state(WorkerState::Stopped);
    }
}
