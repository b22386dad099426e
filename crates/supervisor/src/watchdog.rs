//! The hang and slowness watchdog. A worker that has work but writes no
//! frame for `hang_timeout`, or whose blocks take longer than their budget
//! `slow_blocks` times in a row, is killed and handled as dead.
//!
//! A stalled *machine* must not look like stalled workers: on a virtual
//! machine whose CPUs the host deschedules, every thread stops at once.
//! Two rules keep that from killing healthy workers:
//! * the supervisor measures its own gaps: when it was itself held off for
//!   more than half the hang timeout, nobody's lack of progress is held
//!   against them (the timers start afresh);
//! * when both live workers stall together, that is far likelier one common
//!   cause than two faults, and killing both would lose the synth's state:
//!   they are given [`COMMON_STALL_PATIENCE`] hang timeouts before the
//!   watchdog kills them, and when one moves again, both get a full hang
//!   timeout afresh (the other may get its CPU a moment later).

use std::sync::atomic::Ordering::{Acquire, Relaxed};

use chronus_ipc::monotonic_ns;

use crate::events::DetectedBy;
use crate::join::Phase;
use crate::shared::{JOINING, LIVE};
use crate::supervise::Supervisor;

/// How many hang timeouts two workers stalled together are given.
pub const COMMON_STALL_PATIENCE: u32 = 10;

/// Progress tracking for one slot.
#[derive(Default)]
pub(crate) struct Watch {
    last_write: u64,
    last_change_ns: u64,
    last_blocks: u64,
    over_budget: u32,
}

impl Watch {
    /// Tracking for a worker that starts now.
    pub fn started() -> Self {
        Self { last_change_ns: monotonic_ns(), ..Self::default() }
    }

    /// Starts the timers afresh (a worker that just joined, or after the
    /// supervisor itself was held off).
    pub fn last_change_ns_reset(&mut self) {
        self.last_change_ns = monotonic_ns();
        self.over_budget = 0;
    }
}

/// The watchdog's state across slots.
#[derive(Default)]
pub(crate) struct Watchdog {
    /// When the supervisor last looked (0: never).
    last_pass_ns: u64,
    /// Since when both live workers have been stalled together.
    common_stall_since: Option<u64>,
}

/// What the watchdog sees of one slot.
#[derive(Clone, Copy, Default)]
struct Seen {
    /// Stalled long enough to kill, and how it was seen.
    verdict: Option<DetectedBy>,
    /// Stalled or over budget at all (at least half the hang timeout
    /// without progress, or its last block over budget).
    suspect: bool,
}

impl Supervisor {
    /// One pass of the watchdog over both slots.
    pub(crate) fn watch_for_stalls(&mut self) {
        let now = monotonic_ns();
        let half_timeout = self.cfg.hang_timeout.as_nanos() as u64 / 2;
        let previous = std::mem::replace(&mut self.watchdog.last_pass_ns, now);
        if previous != 0 && now.saturating_sub(previous) > half_timeout {
            // The supervisor was not running either: no evidence against
            // anyone.
            self.shared.supervisor_stalls.fetch_add(1, Relaxed);
            for c in &mut self.ctl {
                c.watch.last_change_ns_reset();
            }
            self.watchdog.common_stall_since = None;
            return;
        }
        let seen = [self.look(0, now), self.look(1, now)];
        let both_live = self.shared.slots.iter().all(|s| s.state() == LIVE);
        let common = both_live && seen.iter().all(|s| s.suspect) && seen.iter().any(|s| s.verdict.is_some());
        if common {
            let since = *self.watchdog.common_stall_since.get_or_insert(now);
            let patience = self.cfg.hang_timeout.as_nanos() as u64 * u64::from(COMMON_STALL_PATIENCE);
            if now - since < patience {
                return;
            }
        } else if self.watchdog.common_stall_since.take().is_some() {
            // The common stall just ended: one worker moves again, and the
            // other, caught by the same cause, may get a CPU a moment later.
            // Both get a full hang timeout from now.
            for c in &mut self.ctl {
                c.watch.last_change_ns_reset();
            }
            return;
        }
        for (i, s) in seen.iter().enumerate() {
            if let Some(why) = s.verdict {
                self.kill(i, why);
            }
        }
    }

    /// Updates slot `i`'s progress tracking and says what it sees.
    fn look(&mut self, i: usize, now: u64) -> Seen {
        let slot = &self.shared.slots[i];
        let watched = match slot.state() {
            LIVE => true,
            JOINING => matches!(self.ctl[i].phase, Phase::AwaitVerify { .. }),
            _ => false,
        };
        if !watched || self.ctl[i].proc.is_none() || self.ctl[i].killing.is_some() {
            return Seen::default();
        }
        let region = &slot.region;
        let write = region.audio_write_frame();
        let limit = region.control().render_limit.load(Acquire);
        let has_work = write < limit && region.audio_space() > 0;
        let hang_timeout = self.cfg.hang_timeout.as_nanos() as u64;
        let w = &mut self.ctl[i].watch;
        let mut seen = Seen::default();
        if write != w.last_write || !has_work {
            w.last_write = write;
            w.last_change_ns = now;
        } else {
            let stalled = now.saturating_sub(w.last_change_ns);
            seen.suspect = stalled > hang_timeout / 2;
            if stalled > hang_timeout {
                seen.verdict = Some(DetectedBy::Watchdog);
            }
        }
        let hb = region.heartbeat();
        let blocks = hb.blocks.load(Acquire);
        if blocks != w.last_blocks {
            w.last_blocks = blocks;
            let budget = self.cfg.block_duration().as_nanos() as f64 * self.cfg.slow_factor;
            if hb.render_ns_last.load(Relaxed) as f64 > budget {
                w.over_budget += 1;
            } else {
                w.over_budget = 0;
            }
            if w.over_budget >= self.cfg.slow_blocks {
                seen.verdict = Some(DetectedBy::Slow);
            }
        }
        seen.suspect |= w.over_budget > 0;
        seen
    }
}
