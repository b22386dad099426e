//! Checkpoints: a recent copy of the DSP's whole state, in memory the
//! supervisor owns (the bus's checkpoint slots), and the event log since it.
//!
//! Every [`CheckpointConfig::every`] frames of output, the live replicas are
//! asked for a snapshot at the first block boundary at or after the render
//! limit; when both answer with the same hash (two replicas agreeing on
//! their whole state), one copy is stored in the slot least recently
//! written (never one a starting worker is reading). A replacement restores
//! the newest checkpoint taken at or before the frame the output is playing
//! and renders forward from its event number: it covers every frame still to
//! be played at once. The log keeps every event from the oldest checkpoint
//! still usable on.

use super::Nanos;

/// What a stored checkpoint holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The frame it was taken at.
    pub frame: u64,
    /// The first event number not applied at that frame.
    pub log_seq: u64,
    /// When it was stored.
    pub at: Nanos,
}

/// A request in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The slot it will be stored in.
    pub slot: usize,
    /// The frame asked for.
    pub frame: u64,
    /// When it was asked for.
    pub since: Nanos,
}

/// Checkpoint settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// Frames of output between checkpoints.
    pub every: u64,
    /// A request not answered within this is dropped (the next one retries).
    pub timeout: Nanos,
}

/// Number of checkpoint slots (one being written, the newest usable, one a
/// starting worker may be reading).
pub const SLOTS: usize = 3;

/// The checkpoints and the request in flight.
#[derive(Clone, Debug, Default)]
pub struct Checkpoints {
    slots: [Option<Stored>; SLOTS],
    /// Slots a starting worker reads now (must not be overwritten).
    reading: [u32; SLOTS],
    pending: Option<Pending>,
    /// The frame of the last request.
    last_frame: Option<u64>,
}

impl Checkpoints {
    /// Whether a new one is due at output frame `frame` (none in flight).
    pub fn due(&self, cfg: &CheckpointConfig, frame: u64) -> bool {
        self.pending.is_none() && self.last_frame.is_none_or(|last| frame >= last + cfg.every)
    }

    /// The request in flight, if any.
    pub fn pending(&self) -> Option<Pending> {
        self.pending
    }

    /// Starts a request for frame `frame` at `now`; returns the slot it
    /// will go to (the oldest one nobody reads), or `None` if every slot is
    /// being read.
    pub fn begin(&mut self, frame: u64, now: Nanos) -> Option<usize> {
        let slot = (0..SLOTS)
            .filter(|&k| self.reading[k] == 0)
            .min_by_key(|&k| self.slots[k].map_or((0, 0), |s| (1, s.frame)))?;
        self.pending = Some(Pending { slot, frame, since: now });
        self.last_frame = Some(frame);
        // Being rewritten: not usable until stored again.
        self.slots[slot] = None;
        Some(slot)
    }

    /// The request in flight was stored.
    pub fn stored(&mut self, frame: u64, log_seq: u64, now: Nanos) {
        if let Some(p) = self.pending.take() {
            self.slots[p.slot] = Some(Stored { frame, log_seq, at: now });
        }
    }

    /// The request in flight failed (replicas disagreed, a torn copy, a
    /// timeout): dropped; the next one comes at the next due time.
    pub fn failed(&mut self) {
        self.pending = None;
    }

    /// Drops the request in flight if it is older than the timeout.
    pub fn expire(&mut self, cfg: &CheckpointConfig, now: Nanos) {
        if self.pending.is_some_and(|p| now.saturating_sub(p.since) > cfg.timeout) {
            self.pending = None;
        }
    }

    /// Drops every checkpoint whose events the log no longer holds (its
    /// event number is older than `oldest_in_log`).
    pub fn forget_before(&mut self, oldest_in_log: u64) {
        for s in &mut self.slots {
            if s.is_some_and(|c| c.log_seq < oldest_in_log) {
                *s = None;
            }
        }
    }

    /// The checkpoint to start a replacement from, with the output at
    /// `output_frame`: the newest taken at or before it (the replacement then
    /// covers every frame still to be played at once), else the newest of
    /// all (it covers them once the output reaches it).
    pub fn best(&self, output_frame: u64) -> Option<(usize, Stored)> {
        let stored = || (0..SLOTS).filter_map(|k| self.slots[k].map(|s| (k, s)));
        stored()
            .filter(|(_, s)| s.frame <= output_frame)
            .max_by_key(|(_, s)| s.frame)
            .or_else(|| stored().max_by_key(|(_, s)| s.frame))
    }

    /// The newest checkpoint taken at or before `frame`, if any (a
    /// referee must render the disputed block itself: see
    /// [`super::referee`]).
    pub fn at_or_before(&self, frame: u64) -> Option<(usize, Stored)> {
        (0..SLOTS)
            .filter_map(|k| self.slots[k].map(|s| (k, s)))
            .filter(|(_, s)| s.frame <= frame)
            .max_by_key(|(_, s)| s.frame)
    }

    /// The lowest event number a usable checkpoint starts from (the log
    /// must keep everything from it on).
    pub fn oldest_log_seq(&self) -> Option<u64> {
        self.slots.iter().flatten().map(|s| s.log_seq).min()
    }

    /// A starting worker reads slot `k` until [`Checkpoints::done_reading`].
    pub fn reading(&mut self, k: usize) {
        if let Some(r) = self.reading.get_mut(k) {
            *r += 1;
        }
    }

    /// A starting worker is done with slot `k`.
    pub fn done_reading(&mut self, k: usize) {
        if let Some(r) = self.reading.get_mut(k) {
            *r = r.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ms;

    const CFG: CheckpointConfig = CheckpointConfig { every: 2_048, timeout: ms(500) };

    #[test]
    fn checkpoints_are_due_every_interval_and_one_at_a_time() {
        let mut c = Checkpoints::default();
        assert!(c.due(&CFG, 0));
        let k = c.begin(0, 0).unwrap();
        assert!(!c.due(&CFG, 10_000), "one in flight");
        c.stored(0, 0, 1);
        assert!(!c.due(&CFG, 2_047));
        assert!(c.due(&CFG, 2_048));
        assert_eq!(c.best(100), Some((k, Stored { frame: 0, log_seq: 0, at: 1 })));
    }

    #[test]
    fn the_best_is_the_newest_the_output_has_reached() {
        let mut c = Checkpoints::default();
        for (i, frame) in [0u64, 2_048, 4_096].into_iter().enumerate() {
            c.begin(frame, i as u64);
            c.stored(frame, 10 * i as u64, i as u64);
        }
        assert_eq!(c.best(3_000).map(|(_, s)| s.frame), Some(2_048));
        assert_eq!(c.best(5_000).map(|(_, s)| s.frame), Some(4_096));
        // Nothing reached yet: the newest all the same.
        let mut d = Checkpoints::default();
        d.begin(512, 0);
        d.stored(512, 3, 0);
        assert_eq!(d.best(100).map(|(_, s)| s.frame), Some(512));
        assert_eq!(c.oldest_log_seq(), Some(0));
        // A referee's start point is never after the frame asked for.
        assert_eq!(c.at_or_before(4_095).map(|(_, s)| s.frame), Some(2_048));
        assert_eq!(d.at_or_before(100), None);
    }

    #[test]
    fn a_slot_being_read_is_never_overwritten_and_old_ones_are_reused() {
        let mut c = Checkpoints::default();
        for (i, frame) in [0u64, 2_048, 4_096].into_iter().enumerate() {
            c.begin(frame, 0);
            c.stored(frame, i as u64, 0);
        }
        let (k, _) = c.best(100).unwrap();
        c.reading(k);
        // The next goes to the oldest slot nobody reads: not frame 0's.
        let next = c.begin(6_144, 0).unwrap();
        assert_ne!(next, k);
        c.stored(6_144, 9, 0);
        assert_eq!(c.best(100).map(|(_, s)| s.frame), Some(0));
        c.done_reading(k);
        assert_eq!(c.begin(8_192, 0), Some(k), "now the oldest");
    }

    #[test]
    fn failures_and_timeouts_free_the_request_and_lost_events_drop_checkpoints() {
        let mut c = Checkpoints::default();
        c.begin(0, 0);
        c.expire(&CFG, ms(100));
        assert!(c.pending().is_some());
        c.expire(&CFG, ms(501));
        assert!(c.pending().is_none());
        c.begin(2_048, 0);
        c.failed();
        assert_eq!(c.best(10_000), None);
        c.begin(4_096, 0);
        c.stored(4_096, 100, 0);
        c.forget_before(101);
        assert_eq!(c.best(10_000), None, "its events are gone from the log");
    }
}
