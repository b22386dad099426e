//! Which slot the output played its frames from: a short log of runs (a
//! run is consecutive frames played from one slot), written by the output
//! thread alone, read by the supervisor to count exactly what a replica
//! found wrong had been heard — the outvoted active's frames, and a
//! standby's played as a fallback while the active was late.
//!
//! A run changes only when the output's source changes (a failover, a
//! fallback, an underrun between two runs), so [`RUNS`] of them reach back
//! far longer than a dispute lasts. Atomics only: the output never waits
//! on the supervisor.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::report::FrameSpan;

/// Runs kept.
pub const RUNS: usize = 32;

#[derive(Debug, Default)]
struct Run {
    slot: AtomicU64,
    from: AtomicU64,
    to: AtomicU64,
}

/// The log (one per engine, in the shared state).
#[derive(Debug, Default)]
pub struct PlayLog {
    /// Runs started so far; run `n` is at `runs[n % RUNS]`.
    started: AtomicU64,
    runs: [Run; RUNS],
}

/// One run as read back: frames `[from, to)` came from `slot`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Played {
    /// The slot.
    pub slot: usize,
    /// Its first frame.
    pub from: u64,
    /// One past its last frame.
    pub to: u64,
}

impl PlayLog {
    /// The output thread played `[from, from + len)` from `slot`
    /// (real-time safe: a few atomic stores).
    pub fn played(&self, slot: usize, from: u64, len: u64) {
        let n = self.started.load(Relaxed);
        if let Some(last) = n.checked_sub(1).map(|k| &self.runs[(k % RUNS as u64) as usize])
            && last.slot.load(Relaxed) == slot as u64
            && last.to.load(Relaxed) == from
        {
            last.to.store(from + len, Release);
            return;
        }
        let run = &self.runs[(n % RUNS as u64) as usize];
        run.slot.store(slot as u64, Relaxed);
        run.from.store(from, Relaxed);
        run.to.store(from + len, Release);
        self.started.store(n + 1, Release);
    }

    /// The runs still kept, oldest first, into `out` (which holds
    /// [`RUNS`]); returns how many, and whether older runs were dropped
    /// (the log does not reach back to the start of the play). For a
    /// slot the output no longer reads, its runs are final.
    pub fn runs(&self, out: &mut [Played; RUNS]) -> (usize, bool) {
        let n = self.started.load(Acquire);
        let kept = n.min(RUNS as u64);
        for (k, o) in (n - kept..n).zip(out.iter_mut()) {
            let run = &self.runs[(k % RUNS as u64) as usize];
            let to = run.to.load(Acquire);
            *o = Played { slot: run.slot.load(Relaxed) as usize, from: run.from.load(Relaxed), to };
        }
        // Runs started while reading may have overwritten the oldest.
        let overwritten = self.started.load(Acquire).saturating_sub(n) as usize;
        let kept = kept as usize;
        out.copy_within(overwritten.min(kept)..kept, 0);
        (kept - overwritten.min(kept), n > RUNS as u64 || overwritten > 0)
    }
}

/// The frames from `first` on that `runs` (oldest first) say were played
/// from `slot`, as spans in order, each given to `emit` (no allocation).
/// When the log was `truncated` and its oldest run starts after `first`,
/// the frames before it are unknown and counted as played from `slot`
/// (over, never under).
pub fn played_from(
    runs: &[Played],
    truncated: bool,
    slot: usize,
    first: u64,
    mut emit: impl FnMut(FrameSpan),
) {
    let mut pending: Option<FrameSpan> = None;
    let unknown = runs.first().filter(|r| truncated && r.from > first).map(|r| (first, r.from));
    let mine = runs.iter().filter(|r| r.slot == slot && r.to > first).map(|r| (r.from.max(first), r.to));
    for (from, to) in unknown.into_iter().chain(mine) {
        match pending.as_mut() {
            Some(p) if p.first + p.frames == from => p.frames += to - from,
            _ => {
                if let Some(p) = pending.replace(FrameSpan { first: from, frames: to - from }) {
                    emit(p);
                }
            }
        }
    }
    if let Some(p) = pending {
        emit(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(log: &PlayLog) -> (Vec<Played>, bool) {
        let mut out = [Played::default(); RUNS];
        let (n, truncated) = log.runs(&mut out);
        (out[..n].to_vec(), truncated)
    }

    #[test]
    fn runs_are_merged_while_the_source_stays_and_split_when_it_changes() {
        let log = PlayLog::default();
        log.played(0, 0, 256);
        log.played(0, 256, 256);
        log.played(1, 512, 256); // a fallback to the standby
        log.played(0, 768, 256);
        log.played(0, 1_280, 256); // after an underrun of 256
        let (runs, truncated) = read(&log);
        assert!(!truncated);
        let r = |slot, from, to| Played { slot, from, to };
        assert_eq!(runs, [r(0, 0, 512), r(1, 512, 768), r(0, 768, 1_024), r(0, 1_280, 1_536)]);
        let spans = |slot, first| {
            let mut out = Vec::new();
            played_from(&runs, truncated, slot, first, |s| out.push(s));
            out
        };
        let (one, zero, two) = (spans(1, 600), spans(0, 300), spans(2, 0));
        let spans = one;
        assert_eq!(
            spans,
            [FrameSpan { first: 600, frames: 168 }],
            "the standby's, from its first wrong frame"
        );
        assert_eq!(
            zero,
            [
                FrameSpan { first: 300, frames: 212 },
                FrameSpan { first: 768, frames: 256 },
                FrameSpan { first: 1_280, frames: 256 }
            ]
        );
        assert!(two.is_empty(), "never played from");
    }

    #[test]
    fn a_log_that_wrapped_counts_what_it_no_longer_holds_as_played() {
        let log = PlayLog::default();
        for k in 0..(RUNS as u64 + 4) {
            log.played((k % 2) as usize, k * 256, 256);
        }
        let (runs, truncated) = read(&log);
        assert!(truncated);
        assert_eq!(runs.len(), RUNS);
        assert_eq!(runs[0].from, 4 * 256);
        let mut spans = Vec::new();
        played_from(&runs, truncated, 1, 0, |s| spans.push(s));
        assert_eq!(spans[0], FrameSpan { first: 0, frames: 4 * 256 }, "what the log no longer holds");
        assert_eq!(spans[1], FrameSpan { first: 5 * 256, frames: 256 }, "then its oldest run kept");
        let heard: u64 = spans.iter().map(|s| s.frames).sum();
        assert_eq!(heard, 4 * 256 + RUNS as u64 / 2 * 256);
    }
}
