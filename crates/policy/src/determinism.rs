//! Deciding that a DSP is not deterministic.
//!
//! Replicas are compared block by block (checksums). One that disagrees
//! with the active is killed and replaced — that handles a worker that
//! went wrong on its own (a bit flip, a memory bug). But when replicas that
//! started from the *same* state disagree right away — a replacement during
//! its verification, just after restoring the active's snapshot, or the
//! first two workers — the fault is not in one worker: the DSP breaks its
//! contract (it reads a clock, the pid, uninitialised memory, …, or its
//! snapshot misses state). Replacing workers would only diverge again,
//! forever. After [`FRESH_DIVERGENCES`] such divergences in a row, or
//! [`WINDOW_DIVERGENCES`] divergences of any kind within [`WINDOW`], the
//! verdict is given: the engine stops respawning and says so, naming the
//! first frame where the audio differed.

use super::{Nanos, ms};

/// Divergences of workers that started from the same state, in a row,
/// that make the verdict.
pub const FRESH_DIVERGENCES: u32 = 2;
/// Divergences of any kind within [`WINDOW`] that make the verdict.
pub const WINDOW_DIVERGENCES: usize = 5;
/// See [`WINDOW_DIVERGENCES`].
pub const WINDOW: Nanos = ms(60_000);

/// The verdict: the DSP is not deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotDeterministic {
    /// The first frame at which two workers' audio differed (in the
    /// divergence that gave the verdict).
    pub frame: u64,
}

/// The evidence so far.
#[derive(Clone, Debug, Default)]
pub struct Determinism {
    fresh_in_a_row: u32,
    recent: [Nanos; WINDOW_DIVERGENCES],
    recent_len: usize,
    verdict: Option<NotDeterministic>,
}

impl Determinism {
    /// Two workers disagreed at `frame`, at `now`; `fresh` if they had
    /// started from the same state just before. Returns the verdict if this
    /// gives it (once).
    pub fn diverged(&mut self, frame: u64, fresh: bool, now: Nanos) -> Option<NotDeterministic> {
        if self.verdict.is_some() {
            return None;
        }
        if fresh {
            self.fresh_in_a_row += 1;
        }
        let kept = self.recent[..self.recent_len].iter().copied().filter(|t| now.saturating_sub(*t) < WINDOW);
        let mut recent = [0; WINDOW_DIVERGENCES];
        let mut n = 0;
        for t in kept.chain([now]) {
            if n < WINDOW_DIVERGENCES {
                recent[n] = t;
                n += 1;
            }
        }
        (self.recent, self.recent_len) = (recent, n);
        if self.fresh_in_a_row >= FRESH_DIVERGENCES || n >= WINDOW_DIVERGENCES {
            self.verdict = Some(NotDeterministic { frame });
            return self.verdict;
        }
        None
    }

    /// A replacement was verified in lockstep: the fresh streak ends.
    pub fn verified(&mut self) {
        self.fresh_in_a_row = 0;
    }

    /// The verdict, once given.
    pub fn verdict(&self) -> Option<NotDeterministic> {
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_fresh_divergences_in_a_row_give_the_verdict() {
        let mut d = Determinism::default();
        assert_eq!(d.diverged(256, true, 0), None);
        assert_eq!(d.diverged(9_000, true, ms(10)), Some(NotDeterministic { frame: 9_000 }));
        assert_eq!(d.verdict(), Some(NotDeterministic { frame: 9_000 }));
        assert_eq!(d.diverged(10_000, true, ms(20)), None, "given once");
    }

    #[test]
    fn a_verified_join_in_between_clears_the_streak() {
        let mut d = Determinism::default();
        assert_eq!(d.diverged(256, true, 0), None);
        d.verified();
        assert_eq!(d.diverged(512, true, ms(1_000)), None);
        assert_eq!(d.verdict(), None);
    }

    #[test]
    fn independent_divergences_are_faults_until_they_come_too_often() {
        let mut d = Determinism::default();
        // A diverged standby now and then (bit flips): replaced each time.
        for k in 0..10 {
            assert_eq!(d.diverged(k * 1_000, false, ms(20_000) * k), None);
            d.verified();
        }
        // Five within a minute: no longer believable as independent faults.
        let base = ms(1_000_000);
        for k in 0..4 {
            assert_eq!(d.diverged(k, false, base + ms(1_000) * k), None);
        }
        assert!(d.diverged(77, false, base + ms(5_000)).is_some());
    }
}
