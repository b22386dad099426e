//! The hang and slowness watchdog.
//!
//! A watched worker that has work but writes no frame for `hang_timeout` is
//! hung; one whose blocks take longer than `slow_budget` `slow_blocks`
//! times in a row is slow. Either is killed and handled as dead.
//!
//! A stalled *machine* must not look like stalled workers: on a virtual
//! machine whose CPUs the host deschedules, every thread stops at once.
//! Two rules keep that from killing healthy workers:
//! * the supervisor measures its own gaps: when it was itself held off for
//!   more than half the hang timeout, nobody's lack of progress is held
//!   against them (the timers start afresh);
//! * when every live replica stalls together, that is far likelier one
//!   common cause than several faults, and killing all of them would lose
//!   the DSP's state: they are given `common_patience` hang timeouts, and
//!   when one moves again, all get a full hang timeout afresh (another may
//!   get its CPU a moment later).

use super::{MAX_SLOTS, Nanos};

/// The watchdog's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// No progress for this long while there is work: hung.
    pub hang_timeout: Nanos,
    /// A block rendering longer than this is over budget.
    pub slow_budget: Nanos,
    /// Over budget this many blocks in a row: slow.
    pub slow_blocks: u32,
    /// Hang timeouts that live replicas stalled together are given.
    pub common_patience: u32,
}

/// What the supervisor sees of a watched worker in one pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Its audio ring's write position.
    pub write_frame: u64,
    /// It may render and has room to (so no progress means a stall).
    pub has_work: bool,
    /// Blocks rendered so far.
    pub blocks: u64,
    /// Render time of its last block.
    pub last_render: Nanos,
}

/// Why the watchdog kills a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No progress for the hang timeout while it had work.
    Hung,
    /// Over its render budget `slow_blocks` blocks in a row.
    Slow,
}

/// The outcome of one pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// The supervisor itself was held off: nobody was judged.
    pub held_off: bool,
    /// Every live replica is stalled together: waiting (nobody killed yet).
    pub common_stall: bool,
    /// Workers to kill, and why.
    pub kills: [Option<Verdict>; MAX_SLOTS],
}

#[derive(Clone, Copy, Debug, Default)]
struct Track {
    watched: bool,
    replica: bool,
    last_write: u64,
    last_change: Nanos,
    last_blocks: u64,
    over_budget: u32,
}

/// What the watchdog sees of one slot this pass.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    verdict: Option<Verdict>,
    /// At least half the hang timeout without progress, or the last block
    /// over budget.
    suspect: bool,
}

/// The watchdog's state across slots.
#[derive(Clone, Debug)]
pub struct Watchdog {
    cfg: WatchdogConfig,
    tracks: [Track; MAX_SLOTS],
    last_pass: Option<Nanos>,
    common_since: Option<Nanos>,
}

impl Watchdog {
    /// A watchdog watching nobody.
    pub fn new(cfg: WatchdogConfig) -> Self {
        Self { cfg, tracks: [Track::default(); MAX_SLOTS], last_pass: None, common_since: None }
    }

    /// Starts watching `slot` afresh at `now`; `replica` if it is a live
    /// replica (the common-stall rule is about those), not a joining one.
    pub fn watch(&mut self, slot: usize, now: Nanos, replica: bool) {
        if let Some(t) = self.tracks.get_mut(slot) {
            *t = Track { watched: true, replica, last_change: now, ..Track::default() };
        }
    }

    /// Stops watching `slot`.
    pub fn unwatch(&mut self, slot: usize) {
        if let Some(t) = self.tracks.get_mut(slot) {
            t.watched = false;
        }
    }

    /// Whether `slot` is watched.
    pub fn is_watched(&self, slot: usize) -> bool {
        self.tracks.get(slot).is_some_and(|t| t.watched)
    }

    fn restart_timers(&mut self, now: Nanos) {
        for t in &mut self.tracks {
            t.last_change = now;
            t.over_budget = 0;
        }
    }

    /// One pass at `now` over what the supervisor sees of each slot
    /// (`None` for a slot it could not look at).
    pub fn pass(&mut self, now: Nanos, progress: &[Option<Progress>; MAX_SLOTS]) -> Pass {
        let previous = self.last_pass.replace(now);
        if previous.is_some_and(|p| now.saturating_sub(p) > self.cfg.hang_timeout / 2) {
            // The supervisor was not running either: no evidence against
            // anyone.
            self.restart_timers(now);
            self.common_since = None;
            return Pass { held_off: true, ..Pass::default() };
        }
        let mut seen = [Seen::default(); MAX_SLOTS];
        for (i, p) in progress.iter().enumerate() {
            if let Some(p) = p
                && self.tracks[i].watched
            {
                seen[i] = self.look(i, now, p);
            }
        }
        let replicas = || (0..MAX_SLOTS).filter(|&i| self.tracks[i].watched && self.tracks[i].replica);
        let common = replicas().count() >= 2
            && replicas().all(|i| seen[i].suspect)
            && replicas().any(|i| seen[i].verdict.is_some());
        if common {
            let since = *self.common_since.get_or_insert(now);
            let patience = self.cfg.hang_timeout.saturating_mul(u64::from(self.cfg.common_patience));
            if now - since < patience {
                return Pass { common_stall: true, ..Pass::default() };
            }
        } else if self.common_since.take().is_some() {
            // The common stall just ended: one moves again, and the others,
            // caught by the same cause, may get a CPU a moment later. All get
            // a full hang timeout from now.
            self.restart_timers(now);
            return Pass::default();
        }
        let mut pass = Pass { common_stall: common, ..Pass::default() };
        for (k, s) in pass.kills.iter_mut().zip(&seen) {
            *k = s.verdict;
        }
        pass
    }

    fn look(&mut self, i: usize, now: Nanos, p: &Progress) -> Seen {
        let cfg = self.cfg;
        let t = &mut self.tracks[i];
        let mut seen = Seen::default();
        if p.write_frame != t.last_write || !p.has_work {
            t.last_write = p.write_frame;
            t.last_change = now;
        } else {
            let stalled = now.saturating_sub(t.last_change);
            seen.suspect = stalled > cfg.hang_timeout / 2;
            if stalled > cfg.hang_timeout {
                seen.verdict = Some(Verdict::Hung);
            }
        }
        if p.blocks != t.last_blocks {
            t.last_blocks = p.blocks;
            if p.last_render > cfg.slow_budget {
                t.over_budget += 1;
            } else {
                t.over_budget = 0;
            }
            if t.over_budget >= cfg.slow_blocks {
                seen.verdict = Some(Verdict::Slow);
            }
        }
        seen.suspect |= t.over_budget > 0;
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ms;

    const CFG: WatchdogConfig =
        WatchdogConfig { hang_timeout: ms(20), slow_budget: ms(5), slow_blocks: 2, common_patience: 10 };

    /// Two live replicas; passes every `step` ns; `write[i]` advances the
    /// write position of slot i by that much per pass.
    struct Sim {
        dog: Watchdog,
        now: Nanos,
        p: [Option<Progress>; MAX_SLOTS],
    }

    impl Sim {
        fn new() -> Self {
            let mut dog = Watchdog::new(CFG);
            dog.watch(0, 0, true);
            dog.watch(1, 0, true);
            let mut p = [None; MAX_SLOTS];
            p[0] = Some(Progress { has_work: true, ..Progress::default() });
            p[1] = Some(Progress { has_work: true, ..Progress::default() });
            Self { dog, now: 0, p }
        }

        /// Runs `passes` passes `step` apart, advancing slot i by `advance[i]`
        /// frames each; returns the first pass that kills someone.
        fn run(&mut self, passes: u32, step: Nanos, advance: [u64; 2]) -> Option<Pass> {
            for _ in 0..passes {
                self.now += step;
                for (i, a) in advance.iter().enumerate() {
                    let p = self.p[i].as_mut().unwrap();
                    p.write_frame += a;
                }
                let pass = self.dog.pass(self.now, &self.p);
                if pass.kills.iter().any(Option::is_some) {
                    return Some(pass);
                }
            }
            None
        }
    }

    #[test]
    fn a_lone_stalled_worker_is_hung_after_the_timeout_and_not_before() {
        let mut sim = Sim::new();
        assert_eq!(sim.run(20, ms(1), [0, 256]), None, "20 ms is the timeout, not past it");
        let pass = sim.run(2, ms(1), [0, 256]).expect("killed just after the timeout");
        assert_eq!(pass.kills[0], Some(Verdict::Hung));
        assert_eq!(pass.kills[1], None);
    }

    #[test]
    fn a_worker_with_no_work_is_never_hung() {
        let mut sim = Sim::new();
        sim.p[0].as_mut().unwrap().has_work = false;
        assert_eq!(sim.run(100, ms(1), [0, 256]), None);
    }

    #[test]
    fn a_supervisor_held_off_judges_nobody() {
        let mut sim = Sim::new();
        sim.run(15, ms(1), [0, 256]);
        // The supervisor itself was not scheduled for 50 ms.
        sim.now += ms(50);
        let pass = sim.dog.pass(sim.now, &sim.p);
        assert!(pass.held_off);
        assert_eq!(pass.kills, [None; MAX_SLOTS]);
        // The timers started afresh: a full timeout from now.
        assert_eq!(sim.run(19, ms(1), [0, 256]), None);
        assert!(sim.run(3, ms(1), [0, 256]).is_some());
    }

    #[test]
    fn replicas_stalled_together_get_patience_then_are_killed() {
        let mut sim = Sim::new();
        // Both stop: a common stall. Not killed within 10 hang timeouts.
        assert_eq!(sim.run(200, ms(1), [0, 0]), None);
        let pass = sim.run(30, ms(1), [0, 0]).expect("killed after the patience");
        assert_eq!((pass.kills[0], pass.kills[1]), (Some(Verdict::Hung), Some(Verdict::Hung)));
    }

    #[test]
    fn when_a_common_stall_ends_the_straggler_gets_a_full_timeout() {
        let mut sim = Sim::new();
        assert_eq!(sim.run(50, ms(1), [0, 0]), None);
        // Slot 1 moves again; slot 0 gets its CPU a little later. Without the
        // fresh timeout it would be killed at once (stalled for 50 ms).
        assert_eq!(sim.run(19, ms(1), [0, 256]), None);
        assert_eq!(sim.run(5, ms(1), [256, 256]), None);
    }

    #[test]
    fn slow_blocks_in_a_row_are_slow_and_one_is_not() {
        let mut sim = Sim::new();
        let p = sim.p[0].as_mut().unwrap();
        p.blocks = 1;
        p.last_render = ms(7);
        assert_eq!(sim.run(1, ms(1), [256, 256]), None, "one slow block is not slowness");
        let p = sim.p[0].as_mut().unwrap();
        p.blocks = 2;
        let pass = sim.run(1, ms(1), [256, 256]).expect("two in a row are");
        assert_eq!(pass.kills[0], Some(Verdict::Slow));
    }

    #[test]
    fn a_joining_worker_is_not_part_of_a_common_stall() {
        let mut sim = Sim::new();
        sim.dog.watch(1, 0, false);
        let pass = sim.run(30, ms(1), [0, 0]).expect("no patience for a lone replica");
        assert_eq!(pass.kills[0], Some(Verdict::Hung));
    }
}
