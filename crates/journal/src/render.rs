//! Offline rendering of stamped events, in-process, block by block on the
//! run's grid: exactly what a worker process produces for the same events.

use chronus_dsp::{Block, BlockEvent, DspSpec, DspStats, DynDsp, Setup, TimedEvent};

use crate::JournalError;
use crate::text::{Annotations, FrameSpan};

/// Renders a journal's events block by block, streaming: the events are
/// pulled as they fall due, so a journal of any length renders in constant
/// memory.
pub struct Renderer<'a> {
    dsp: Box<dyn DynDsp>,
    block: usize,
    frame: u64,
    events: Box<dyn Iterator<Item = Result<TimedEvent, JournalError>> + 'a>,
    next: Option<TimedEvent>,
    /// Event number of `next`.
    seq: u64,
    excised: Vec<u64>,
    resets: Vec<u64>,
    silences: Vec<FrameSpan>,
    fade: Option<FrameSpan>,
    pending: Vec<BlockEvent>,
}

impl std::fmt::Debug for Renderer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("frame", &self.frame)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

impl<'a> Renderer<'a> {
    /// A renderer of `spec` at `setup` over `events` (in stamp order, as a
    /// journal holds them), honouring `notes`: excised events are skipped,
    /// the DSP is reset where the run restarted from silence, and with
    /// `as_played` the frames the run could not play (stalls and gaps) are
    /// silenced, so the render equals the recording.
    ///
    /// # Errors
    /// [`JournalError::Dsp`] if the DSP cannot be prepared.
    pub fn new(
        spec: &DspSpec,
        setup: Setup,
        notes: &Annotations,
        as_played: bool,
        events: impl Iterator<Item = Result<TimedEvent, JournalError>> + 'a,
    ) -> Result<Self, JournalError> {
        let dsp = spec.prepare(&setup)?;
        let mut excised = notes.excised.clone();
        excised.sort_unstable();
        let mut resets = notes.resets.clone();
        resets.sort_unstable();
        resets.reverse();
        let mut silences = if as_played { notes.silences() } else { Vec::new() };
        silences.reverse();
        excised.reverse();
        Ok(Self {
            dsp,
            block: setup.block as usize,
            frame: 0,
            events: Box::new(events),
            next: None,
            seq: 0,
            excised,
            resets,
            silences,
            fade: notes.fade,
            pending: Vec::with_capacity(256),
        })
    }

    /// The next frame to render.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// Frames per block.
    pub fn block(&self) -> usize {
        self.block
    }

    /// The DSP's counters so far.
    pub fn stats(&self) -> DspStats {
        self.dsp.stats()
    }

    fn peek(&mut self) -> Result<Option<TimedEvent>, JournalError> {
        if self.next.is_none() {
            self.next = self.events.next().transpose()?;
        }
        Ok(self.next)
    }

    /// Renders the next block into `left` and `right` (each one block long).
    ///
    /// # Errors
    /// A journal error met while pulling events.
    pub fn render_block(&mut self, left: &mut [f32], right: &mut [f32]) -> Result<(), JournalError> {
        let start = self.frame;
        let end = start + self.block as u64;
        while self.resets.last().is_some_and(|&r| r < end) {
            self.resets.pop();
            self.dsp.reset();
        }
        self.pending.clear();
        while let Some(e) = self.peek()?.filter(|e| e.frame < end) {
            self.next = None;
            let seq = self.seq;
            self.seq += 1;
            while self.excised.last().is_some_and(|&x| x < seq) {
                self.excised.pop();
            }
            if self.excised.last() == Some(&seq) || e.event.is_engine() {
                continue;
            }
            let offset = e.frame.saturating_sub(start) as u32;
            self.pending.push(BlockEvent { offset, event: e.event });
        }
        let n = self.block;
        self.dsp.render(Block {
            frame: start,
            left: &mut left[..n],
            right: &mut right[..n],
            events: &self.pending,
        });
        if let Some(fade) = self.fade.filter(|f| f.first < end) {
            for (k, (l, r)) in left[..n].iter_mut().zip(right[..n].iter_mut()).enumerate() {
                let g = crate::text::fade_gain(fade, start + k as u64);
                *l *= g;
                *r *= g;
            }
        }
        while let Some(s) = self.silences.last().copied().filter(|s| s.first < end) {
            let from = (s.first.max(start) - start) as usize;
            let to = (s.end().min(end) - start) as usize;
            left[from..to].fill(0.0);
            right[from..to].fill(0.0);
            if s.end() <= end {
                self.silences.pop();
            } else {
                break;
            }
        }
        self.frame = end;
        Ok(())
    }
}

/// Stereo audio rendered offline.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    /// Left channel.
    pub left: Vec<f32>,
    /// Right channel.
    pub right: Vec<f32>,
    /// The DSP's counters at the end (events refused, …).
    pub stats: DspStats,
}

/// Renders `frames` frames of `events` (in stamp order) on a fresh DSP of
/// `spec` at `setup`, honouring `notes` (see [`Renderer::new`]), into
/// memory: exactly what a worker process produces for the same events.
/// With `as_played`, device xruns' silence is inserted too (the result is
/// then longer than `frames`), so it equals the recording.
///
/// # Errors
/// [`JournalError::Dsp`] if the DSP cannot be prepared.
pub fn render_offline(
    spec: &DspSpec,
    setup: Setup,
    events: &[TimedEvent],
    notes: &Annotations,
    frames: u64,
    as_played: bool,
) -> Result<Rendered, JournalError> {
    let n = usize::try_from(frames).map_err(|_| JournalError::Dsp("too many frames".into()))?;
    let mut r = Renderer::new(spec, setup, notes, as_played, events.iter().copied().map(Ok))?;
    let block = r.block();
    let padded = n.div_ceil(block) * block;
    let (mut left, mut right) = (vec![0.0f32; padded], vec![0.0f32; padded]);
    for (l, rr) in left.chunks_mut(block).zip(right.chunks_mut(block)) {
        r.render_block(l, rr)?;
    }
    left.truncate(n);
    right.truncate(n);
    if as_played {
        notes.insert_xruns(&mut left, &mut right);
    }
    Ok(Rendered { left, right, stats: r.stats() })
}

/// A default length for events with no recorded end: the last event's
/// frame plus `tail_seconds`.
pub fn default_length(events: &[TimedEvent], sample_rate: u32, tail_seconds: f64) -> u64 {
    let last = events.iter().map(|c| c.frame).max().unwrap_or(0);
    last + (tail_seconds.max(0.0) * f64::from(sample_rate)).round() as u64
}
