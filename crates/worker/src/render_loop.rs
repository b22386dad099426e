//! The worker's render loop.

use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::{Duration, Instant};

use chronus_dsp::{Command, Param, Synth, SynthConfig};
use chronus_ipc::{
    AudioWriter, CHECKSUM_SEED, CommandReader, FaultKind, Region, Slot, SnapshotBuffers, WorkerState,
    checksum_samples, monotonic_ns,
};

use crate::WorkerError;
use crate::fault::inflict;

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
/// How long a joining worker waits for its snapshot.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A worker attached to its region.
#[derive(Debug)]
pub struct Worker<'r> {
    region: &'r Region,
    synth: Synth,
    writer: AudioWriter<'r>,
    reader: CommandReader<'r>,
    snapshot: SnapshotBuffers,
    left: Vec<f32>,
    right: Vec<f32>,
    /// Checksum of the grid block being rendered, so far.
    block_hash: u64,
    /// An injected `slow` fault is active.
    slow: bool,
    /// An injected `diverge` fault was done.
    diverged: bool,
}

impl<'r> Worker<'r> {
    /// Builds the synth for the region's geometry (all allocation happens
    /// here), pre-faults the buffers and reports [`WorkerState::Ready`]. A
    /// joining worker then waits for its snapshot and starts from it.
    ///
    /// # Errors
    /// [`WorkerError::Synth`] if the geometry does not make a synth;
    /// [`WorkerError::Region`] if a joining worker gets no usable snapshot.
    pub fn new(region: &'r Region) -> Result<Self, WorkerError> {
        let g = *region.geometry();
        let config = SynthConfig::new(g.sample_rate, g.voices);
        let block = g.max_block as usize;
        let mut worker = Self {
            region,
            synth: Synth::new(config)?,
            writer: AudioWriter::new(region),
            reader: CommandReader::new(region),
            snapshot: SnapshotBuffers::for_config(config)?,
            // vec! of zeros writes every page: pre-faulted.
            left: vec![0.0; block],
            right: vec![0.0; block],
            block_hash: CHECKSUM_SEED,
            slow: false,
            diverged: false,
        };
        region.control().pid.store(std::process::id(), Release);
        region.set_worker_state(WorkerState::Ready);
        if region.is_join() {
            worker.join()?;
        }
        Ok(worker)
    }

    /// Waits for the supervisor's snapshot, restores it, and drops the
    /// commands it already contains (those before its frame).
    fn join(&mut self) -> Result<(), WorkerError> {
        let deadline = Instant::now() + JOIN_TIMEOUT;
        while !self.region.restore_ready() {
            if self.region.stop_requested() || Instant::now() > deadline {
                return Err(WorkerError::Region(chronus_ipc::IpcError::BufCorrupt(
                    "no snapshot to join from",
                )));
            }
            self.region.worker_sleep(Duration::from_millis(10), || self.region.restore_ready());
        }
        let start = self.snapshot.load(&mut self.synth, self.region)?;
        self.writer = AudioWriter::new(self.region);
        debug_assert_eq!(self.writer.write_frame(), start);
        while let Slot::Command(c) = self.reader.peek() {
            if c.frame >= start {
                break;
            }
            self.reader.advance();
        }
        Ok(())
    }

    /// The synth (for inspection).
    pub fn synth(&self) -> &Synth {
        &self.synth
    }

    fn block(&self) -> u64 {
        self.left.len() as u64
    }

    /// Frames this worker may render now: up to the render limit, the ring's
    /// space and the next multiple of the block size (so every worker renders
    /// the same block grid).
    fn renderable(&self) -> usize {
        let frame = self.synth.frame();
        let limit = self.region.render_limit();
        let to_grid = self.block() - frame % self.block();
        limit.saturating_sub(frame).min(self.writer.space()).min(to_grid) as usize
    }

    /// At a block boundary, writes the snapshot the supervisor asked for.
    fn serve_snapshot(&mut self) {
        let frame = self.synth.frame();
        if !frame.is_multiple_of(self.block()) {
            return;
        }
        if let Some((id, at)) = self.region.pending_snapshot()
            && frame >= at
            && self.snapshot.store(&self.synth, self.region).is_ok()
        {
            self.region.snapshot_written(id);
        }
    }

    /// Renders and publishes at most one block. Never allocates, locks or
    /// blocks (unless told to inflict a fault).
    pub fn step(&mut self) -> Step {
        if self.region.stop_requested() {
            return Step::Stop;
        }
        if let Some(kind) = self.region.requested_fault() {
            self.region.heartbeat().fault_at_ns.compare_exchange(0, monotonic_ns(), Relaxed, Relaxed).ok();
            if kind == FaultKind::Diverge && !self.diverged {
                self.diverged = true;
                let _ = self.synth.apply(&Command::Set { param: Param::Master, value: 0.123 });
            }
            self.slow = kind == FaultKind::Slow || inflict(kind);
        }
        self.serve_snapshot();
        let n = self.renderable();
        if n == 0 {
            return Step::Idle;
        }
        let start = monotonic_ns();
        let (left, right) = (&mut self.left[..n], &mut self.right[..n]);
        self.synth.render_with(left, right, &mut self.reader);
        // Cannot fail: n ≤ space, and only this worker writes.
        let _ = self.writer.write(left, right);
        self.block_hash = checksum_samples(self.block_hash, left, right);
        let end_frame = self.synth.frame();
        if end_frame.is_multiple_of(self.block()) {
            self.region.publish_checksum(end_frame / self.block() - 1, self.block_hash);
            self.block_hash = CHECKSUM_SEED;
        }
        if self.slow {
            // Three block periods per block: far over any budget.
            let period = 3 * self.block() * 1_000_000_000 / u64::from(self.region.geometry().sample_rate);
            std::thread::sleep(Duration::from_nanos(period));
        }
        let end = monotonic_ns();
        let hb = self.region.heartbeat();
        let stats = self.synth.stats();
        hb.commands_applied.store(stats.applied, Relaxed);
        hb.voices_in_use.store(u64::from(self.synth.voices_in_use()), Relaxed);
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
                    region.worker_sleep(IDLE_SLEEP, || {
                        region.stop_requested()
                            || self.renderable() > 0
                            || region.pending_snapshot().is_some()
                            || region.requested_fault().is_some()
                    });
                }
            }
        }
        self.region.set_worker_state(WorkerState::Stopped);
    }
}
