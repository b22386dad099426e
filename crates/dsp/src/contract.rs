//! The [`Dsp`] trait: what a DSP implements to run under failover.

use crate::address::{AddressSpec, Arg};
use crate::error::DspError;
use crate::event::{BlockEvent, Event};
use crate::files::Files;

/// What the engine runs a DSP at, fixed for the DSP's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Setup {
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Frames per block. The engine calls [`Dsp::render`] with exactly this
    /// many frames, on a fixed grid (block `k` starts at frame `k·block`),
    /// in every worker and in the offline render.
    pub block: u32,
}

/// One block to render: where it starts, where it goes, and the events that
/// apply inside it.
#[derive(Debug)]
pub struct Block<'a> {
    /// Absolute frame of `left[0]` (a multiple of [`Setup::block`] when the
    /// engine calls).
    pub frame: u64,
    /// Left channel; every sample must be written.
    pub left: &'a mut [f32],
    /// Right channel, as long as `left`; every sample must be written.
    pub right: &'a mut [f32],
    /// The events of this block, in the order they were stamped; offsets
    /// never decrease and are below `left.len()`.
    pub events: &'a [BlockEvent],
}

/// A piece of a block, for [`Block::split`]: a stretch of audio to render,
/// or an event to apply before the next stretch.
#[derive(Debug)]
pub enum Piece<'a> {
    /// Render these frames (absolute frame `frame` first).
    Audio {
        /// Absolute frame of `left[0]`.
        frame: u64,
        /// Left channel of the stretch.
        left: &'a mut [f32],
        /// Right channel of the stretch.
        right: &'a mut [f32],
    },
    /// Apply this event now (at the frame the next stretch starts).
    Event(&'a Event),
}

impl Block<'_> {
    /// Frames in the block.
    pub fn len(&self) -> usize {
        self.left.len().min(self.right.len())
    }

    /// Whether the block has no frames.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Walks the block in order: the audio before the first event, the
    /// event, the audio up to the next one, … — the usual way to apply
    /// events at their exact frames. Empty stretches are skipped.
    ///
    /// ```
    /// use chronus_dsp::{Block, BlockEvent, Event, Piece};
    /// let events = [BlockEvent { offset: 3, event: Event::new(0) }];
    /// let (mut l, mut r) = ([0.0f32; 8], [0.0f32; 8]);
    /// let block = Block { frame: 64, left: &mut l, right: &mut r, events: &events };
    /// let mut level = 0.0;
    /// block.split(|piece| match piece {
    ///     Piece::Event(_) => level = 1.0,
    ///     Piece::Audio { left, right, .. } => {
    ///         left.fill(level);
    ///         right.fill(level);
    ///     }
    /// });
    /// assert_eq!(l, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    /// ```
    pub fn split(self, mut each: impl FnMut(Piece<'_>)) {
        let n = self.len();
        let (mut left, mut right) = (&mut self.left[..n], &mut self.right[..n]);
        let mut at = 0usize;
        for e in self.events {
            let offset = (e.offset as usize).clamp(at, n);
            if offset > at {
                let (l, rest_l) = std::mem::take(&mut left).split_at_mut(offset - at);
                let (r, rest_r) = std::mem::take(&mut right).split_at_mut(offset - at);
                each(Piece::Audio { frame: self.frame + at as u64, left: l, right: r });
                (left, right) = (rest_l, rest_r);
                at = offset;
            }
            each(Piece::Event(&e.event));
        }
        if at < n {
            each(Piece::Audio { frame: self.frame + at as u64, left, right });
        }
    }
}

/// Counters a DSP reports (shown in status, summed over a run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DspStats {
    /// Events applied (possibly with clamped values).
    pub applied: u64,
    /// Events refused (a value the DSP cannot use).
    pub rejected: u64,
    /// Values clamped into range.
    pub clamped: u64,
    /// What is sounding now (voices, strings, …; 0 if the DSP does not say).
    pub active: u32,
}

/// A DSP that runs under Chronus's failover engine.
///
/// The engine keeps live replicas of it in separate worker processes, feeds
/// each the same events at the same frames, plays whichever is on time, and
/// replaces a replica that dies, hangs or disagrees with one restored from a
/// snapshot. All of that rests on this contract:
///
/// 1. **Deterministic.** Given the same [`Setup`], configuration, events at
///    the same frames and the same starting state (a fresh
///    [`Dsp::prepare`], or a [`Dsp::restore`]d snapshot), `render` produces
///    the same bits in every process running the same binary. No clocks, no
///    randomness outside the state (a noise generator's seed *is* state), no
///    uninitialised memory, no iteration over `HashMap`s, no threads inside a
///    render, no reading of anything that differs between processes (pid,
///    addresses, environment). Floating point is deterministic in one binary
///    as long as the code does not change the FPU mode. The engine checks
///    this continuously (block checksums of every replica) and reports a DSP
///    that breaks it.
/// 2. **Prepare, then run.** Everything is allocated in `prepare`.
///    `render` (and with it applying events) never allocates, frees, locks,
///    logs, makes a system call or panics, whatever the events say.
/// 3. **Events are already checked** against the address table (known
///    address, right argument count, ints and names in range, finite
///    floats); the DSP enforces its own ranges (clamp and count) and never
///    lets a NaN or infinity reach its output.
/// 4. **Snapshots are complete.** `snapshot` writes *all* state that
///    influences future output into exactly `snapshot_len()` bytes (the same
///    length for the DSP's whole life); `restore` of those bytes into a DSP
///    prepared with the same setup and configuration continues bit for bit.
///    `restore` treats the bytes as untrusted: it checks them, changes
///    nothing on error, and never panics.
/// 5. **`reset`** returns to the state right after `prepare`.
///
/// `Config` travels to the worker processes as JSON; `NAME` tells workers
/// which DSP a region is for (a worker built for another refuses it).
///
/// The guide, with a complete example, is `docs/embedding.md`.
pub trait Dsp: Send + 'static {
    /// The DSP's own configuration (voice count, string count, …).
    type Config: Clone
        + std::fmt::Debug
        + Send
        + Sync
        + serde::Serialize
        + serde::de::DeserializeOwned
        + 'static;

    /// A name that identifies this DSP (and its snapshot format) across
    /// processes, e.g. `"my-synth/1"`.
    const NAME: &'static str;

    /// The addresses this DSP understands, in event-index order: event
    /// address `i` is entry `i`.
    fn addresses(config: &Self::Config) -> Vec<AddressSpec>;

    /// A check beyond the table's, run where events enter the engine (so the
    /// sender gets an `/error` reply): e.g. a parameter that exists only
    /// globally sent to one voice. Pure; the default accepts everything.
    ///
    /// # Errors
    /// A message saying why the event is refused.
    fn validate(config: &Self::Config, setup: &Setup, event: &Event) -> Result<(), String> {
        let _ = (config, setup, event);
        Ok(())
    }

    /// Expands an address that is not an event — a convenience handled
    /// where commands enter the engine, such as `/patch/load s:path` turned
    /// into the events that set a patch — into events appended to `out`.
    /// `None` if `path` is not such an address (it is then looked up in the
    /// table). Never runs in a worker. A file it needs it reads through
    /// `files`, never by itself: the caller decides what a sender may make
    /// it read (any file for a local score; for OSC, only patch files under
    /// the directory the user named).
    fn expand(
        config: &Self::Config,
        setup: &Setup,
        path: &str,
        args: &[Arg<'_>],
        files: &dyn Files,
        out: &mut Vec<Event>,
    ) -> Option<Result<(), String>> {
        let _ = (config, setup, path, args, files, out);
        None
    }

    /// Builds the DSP; everything it will ever need is allocated here.
    /// In a worker it runs as an ordinary process (SCHED_OTHER, memory not
    /// yet locked), however the engine runs: allocating, reading files and
    /// building tables here hold nothing real-time off. Only the render
    /// loop, after it, runs real-time.
    ///
    /// # Errors
    /// [`DspError::InvalidSetup`] or [`DspError::InvalidConfig`].
    fn prepare(setup: &Setup, config: &Self::Config) -> Result<Self, DspError>
    where
        Self: Sized;

    /// Bytes of a snapshot of this DSP (fixed for its life).
    fn snapshot_len(&self) -> usize;

    /// Renders one block, applying its events at their offsets. Never
    /// allocates, locks, blocks or panics.
    fn render(&mut self, block: Block<'_>);

    /// Writes the complete state into `out` (`snapshot_len()` bytes).
    fn snapshot(&self, out: &mut [u8]);

    /// Replaces the whole state with a snapshot written by [`Dsp::snapshot`]
    /// of a DSP with the same setup and configuration.
    ///
    /// # Errors
    /// [`DspError::BadSnapshot`]; nothing changed.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), DspError>;

    /// Returns to the state right after `prepare` (silence).
    fn reset(&mut self);

    /// Counters, for status and reports. The default reports nothing.
    fn stats(&self) -> DspStats {
        DspStats::default()
    }
}
