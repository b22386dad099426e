//! The hang and slowness watchdog.
//!
//! A watched worker that has work but writes no frame for `hang_timeout` is
//! hung; one whose blocks take longer than `slow_budget` `slow_blocks`
//! times in a row *while another replica is on time* is slow. Either is
//! killed and handled as dead.
//!
//! **Overload is not a fault.** When every live replica is over budget at
//! once, the cause is the workload they share (too many voices, a flood of
//! commands), not one of them: nobody is killed, the pass says
//! `overloaded`, and the engine sheds load and reports it until the
//! replicas are back within budget.
//!
//! **A hang they share** is told from a stalled machine by where and how
//! they stall: when every live replica has stopped inside the *same* block
//! while burning CPU (their process CPU time grew by at least half the wall
//! time of the stall), they are stuck in the DSP on the same input (a
//! poison), and are killed at the hang timeout with no patience; the
//! common-mode policy (`super::common_mode`) then cuts the poison out.
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
//!   get its CPU a moment later);
//! * a *single* replica can be starved too: when the host takes away the
//!   virtual CPU a worker is running on, the guest still counts it as
//!   running (state `R`), so it is neither moved to the other CPU nor
//!   accounted any CPU time. Hung workers look different: a spinning one
//!   burns CPU, a stopped one is `T`, a blocked one `S` or `D`. A worker
//!   stalled past the hang timeout that is runnable and got less than half
//!   the wall time of the stall as CPU time is starved, not hung: it gets
//!   `common_patience` hang timeouts, as replicas stalled together do, and
//!   is counted ([`Pass::starved`]). The patience is a bound, so a worker
//!   that starves itself on purpose (it cannot lower its own priority
//!   below the others' under the sandbox, but say it could) is still
//!   killed.

use super::{MAX_SLOTS, Nanos};

/// Hang timeouts that live replicas stalled together are given before the
/// watchdog kills them ([`WatchdogConfig::common_patience`]).
pub const COMMON_STALL_PATIENCE: u32 = 10;

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
    /// Frames per block: the block a replica just rendered ends at its
    /// write position and starts this much before it.
    pub block: u64,
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
    /// The block it is inside (its first frame plus one; 0: between
    /// blocks).
    pub rendering: u64,
    /// Its process's CPU time, when [`Watchdog::wants_cpu`] asked for it.
    pub cpu_ns: Option<u64>,
    /// Whether its render thread is runnable (`R`: running or waiting
    /// for a CPU), asked for with [`Progress::cpu_ns`].
    pub runnable: Option<bool>,
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
    /// Every live replica is stuck spinning inside this block (its first
    /// frame): all are killed now (a hang they share, see the module
    /// docs).
    pub common_hang: Option<u64>,
    /// Every live replica is over its render budget: overload, not a fault.
    pub overloaded: bool,
    /// Workers to kill, and why.
    pub kills: [Option<Verdict>; MAX_SLOTS],
    /// Workers found starved (runnable, stalled past the hang timeout with
    /// next to no CPU time) for the first time in their current stall:
    /// given patience instead of a verdict.
    pub starved: [bool; MAX_SLOTS],
}

#[derive(Clone, Copy, Debug, Default)]
struct Track {
    watched: bool,
    replica: bool,
    last_write: u64,
    last_change: Nanos,
    last_blocks: u64,
    over_budget: u32,
    /// Where its current run of blocks over budget began (a write frame).
    over_from: u64,
    /// Where its current run of blocks within budget began.
    ok_from: u64,
    /// CPU time and wall time when first seen in the current stall.
    stall_cpu: Option<(u64, Nanos)>,
    /// Found starved in the current stall (counted once per stall).
    starved: bool,
}

/// What the watchdog sees of one slot this pass.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    verdict: Option<Verdict>,
    /// At least half the hang timeout without progress, or the last block
    /// over budget.
    suspect: bool,
    /// Stalled, and its CPU time grew by at least half the wall time since
    /// the stall was first measured (spinning, not descheduled).
    spinning: bool,
    /// The block it is stalled inside (0: none).
    rendering: u64,
    /// Found starved this pass for the first time in its stall.
    starved: bool,
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

    /// Whether the pass at `now` wants `slot`'s process CPU time (it has
    /// been stalled for a quarter of the hang timeout): [`Progress::cpu_ns`].
    pub fn wants_cpu(&self, slot: usize, now: Nanos) -> bool {
        self.tracks
            .get(slot)
            .is_some_and(|t| t.watched && now.saturating_sub(t.last_change) >= self.cfg.hang_timeout / 4)
    }

    fn restart_timers(&mut self, now: Nanos) {
        for t in &mut self.tracks {
            t.last_change = now;
            t.over_budget = 0;
            t.stall_cpu = None;
            t.starved = false;
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
        let starved: [bool; MAX_SLOTS] = std::array::from_fn(|i| seen[i].starved);
        let replicas = || (0..MAX_SLOTS).filter(|&i| self.tracks[i].watched && self.tracks[i].replica);
        // Slow only next to a replica on time at the same blocks: one whose
        // blocks within budget overlap this one's over budget. (One still
        // behind has not shown yet how long those blocks take it: no verdict
        // this pass.)
        let mut on_time = [false; MAX_SLOTS];
        for k in replicas() {
            on_time[k] = self.tracks[k].over_budget == 0 && seen[k].verdict.is_none();
        }
        let overloaded = replicas().count() >= 1 && replicas().all(|k| self.tracks[k].over_budget > 0);
        for (i, s) in seen.iter_mut().enumerate() {
            // Some block i rendered over budget, k rendered within it.
            let (t, over) = (&self.tracks, self.tracks[i].over_from..self.tracks[i].last_write);
            let same_blocks = |k: usize| t[k].ok_from < over.end && t[k].last_write > over.start;
            if s.verdict == Some(Verdict::Slow)
                && !(0..MAX_SLOTS).any(|k| k != i && on_time[k] && same_blocks(k))
            {
                s.verdict = None;
            }
        }
        let common = replicas().count() >= 2
            && replicas().all(|i| seen[i].suspect)
            && replicas().any(|i| seen[i].verdict.is_some());
        let first = replicas().next().map_or(0, |i| seen[i].rendering);
        let spinning_together = common
            && first != 0
            && replicas()
                .all(|i| seen[i].rendering == first && seen[i].spinning && seen[i].verdict.is_some());
        if spinning_together {
            self.common_since = None;
            let mut pass = Pass { common_hang: Some(first - 1), overloaded, starved, ..Pass::default() };
            for i in replicas() {
                pass.kills[i] = Some(Verdict::Hung);
            }
            return pass;
        }
        if common {
            let since = *self.common_since.get_or_insert(now);
            let patience = self.cfg.hang_timeout.saturating_mul(u64::from(self.cfg.common_patience));
            if now - since < patience {
                return Pass { common_stall: true, overloaded, starved, ..Pass::default() };
            }
        } else if self.common_since.take().is_some() {
            // The common stall just ended: one moves again, and the others,
            // caught by the same cause, may get a CPU a moment later. All get
            // a full hang timeout from now.
            self.restart_timers(now);
            return Pass { overloaded, starved, ..Pass::default() };
        }
        let mut pass = Pass { common_stall: common, overloaded, starved, ..Pass::default() };
        for (k, s) in pass.kills.iter_mut().zip(&seen) {
            *k = s.verdict;
        }
        pass
    }

    fn look(&mut self, i: usize, now: Nanos, p: &Progress) -> Seen {
        let cfg = self.cfg;
        let t = &mut self.tracks[i];
        let mut seen = Seen::default();
        // The block it rendered last (blocks rendered between two passes
        // are not seen: runs are counted conservatively, from the last one).
        let block_start = p.write_frame.saturating_sub(cfg.block);
        if p.write_frame != t.last_write || !p.has_work {
            t.last_write = p.write_frame;
            t.last_change = now;
            t.stall_cpu = None;
            t.starved = false;
        } else {
            let stalled = now.saturating_sub(t.last_change);
            seen.suspect = stalled > cfg.hang_timeout / 2;
            seen.rendering = p.rendering;
            // Measured over at least half a hang timeout: spinning (CPU
            // time grew by half the wall time or more) or not.
            let mut measured_idle = false;
            if let Some(cpu) = p.cpu_ns {
                let (cpu0, wall0) = *t.stall_cpu.get_or_insert((cpu, now));
                let wall = now.saturating_sub(wall0);
                let measured = wall >= cfg.hang_timeout / 2;
                seen.spinning = measured && cpu.saturating_sub(cpu0) * 2 >= wall;
                measured_idle = measured && !seen.spinning;
            }
            if stalled > cfg.hang_timeout {
                let patience = cfg.hang_timeout.saturating_mul(u64::from(cfg.common_patience));
                let starved = measured_idle && p.runnable == Some(true) && stalled <= patience;
                if starved {
                    seen.starved = !std::mem::replace(&mut t.starved, true);
                } else {
                    seen.verdict = Some(Verdict::Hung);
                }
            }
        }
        if p.blocks != t.last_blocks {
            t.last_blocks = p.blocks;
            if p.last_render > cfg.slow_budget {
                if t.over_budget == 0 {
                    t.over_from = block_start;
                }
                t.over_budget += 1;
            } else {
                if t.over_budget > 0 {
                    t.ok_from = block_start;
                }
                t.over_budget = 0;
            }
        }
        if t.over_budget >= cfg.slow_blocks && seen.verdict.is_none() {
            seen.verdict = Some(Verdict::Slow);
        }
        seen.suspect |= t.over_budget > 0;
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ms;

    const CFG: WatchdogConfig = WatchdogConfig {
        hang_timeout: ms(20),
        slow_budget: ms(5),
        slow_blocks: 2,
        common_patience: 10,
        block: 256,
    };

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
    fn every_replica_over_budget_is_overload_and_nobody_is_slow() {
        let mut sim = Sim::new();
        for blocks in 1..=20 {
            for p in sim.p.iter_mut().take(2) {
                let p = p.as_mut().unwrap();
                p.blocks = blocks;
                p.write_frame = blocks * 256;
                p.last_render = ms(7);
            }
            let pass = sim.dog.pass(sim.now, &sim.p);
            sim.now += ms(1);
            assert_eq!(pass.kills, [None; MAX_SLOTS], "block {blocks}: overload is not a fault");
            assert!(pass.overloaded);
        }
        // One recovers: the other, still over budget, is now slow.
        let p = sim.p[1].as_mut().unwrap();
        p.blocks = 21;
        p.write_frame = 21 * 256;
        p.last_render = ms(1);
        let p = sim.p[0].as_mut().unwrap();
        p.blocks = 21;
        p.write_frame = 21 * 256;
        let pass = sim.dog.pass(sim.now, &sim.p);
        assert!(!pass.overloaded);
        assert_eq!((pass.kills[0], pass.kills[1]), (Some(Verdict::Slow), None));
    }

    /// Both stall inside block 4096 while their CPU time grows by `cpu`
    /// per ms of wall time; returns the first pass that kills.
    fn stall_inside_a_block(cpu_per_ms: u64, other_block: bool) -> Option<Pass> {
        let mut sim = Sim::new();
        for i in 0..2 {
            sim.p[i].as_mut().unwrap().rendering = if other_block && i == 1 { 4_353 } else { 4_097 };
        }
        for _ in 0..400 {
            sim.now += ms(1);
            for i in 0..2 {
                let wants = sim.dog.wants_cpu(i, sim.now);
                let p = sim.p[i].as_mut().unwrap();
                p.cpu_ns = wants.then_some(sim.now / ms(1) * cpu_per_ms);
            }
            let pass = sim.dog.pass(sim.now, &sim.p);
            if pass.kills.iter().any(Option::is_some) {
                return Some(pass);
            }
        }
        None
    }

    #[test]
    fn a_replica_over_budget_is_not_slow_while_the_other_has_not_reached_its_blocks() {
        let mut sim = Sim::new();
        // Slot 0 renders blocks 1 and 2 over budget; slot 1 is still on
        // block 0 (on time so far, but it has not shown those blocks yet).
        let p = sim.p[0].as_mut().unwrap();
        (p.blocks, p.write_frame, p.last_render) = (1, 256, ms(7));
        sim.dog.pass(ms(1), &sim.p);
        let p = sim.p[0].as_mut().unwrap();
        (p.blocks, p.write_frame) = (2, 512);
        assert_eq!(sim.dog.pass(ms(2), &sim.p).kills, [None; MAX_SLOTS]);
        // Slot 1 renders the same blocks within budget: slot 0 is slow.
        let p = sim.p[1].as_mut().unwrap();
        (p.blocks, p.write_frame, p.last_render) = (2, 512, ms(1));
        assert_eq!(sim.dog.pass(ms(3), &sim.p).kills[0], Some(Verdict::Slow));
    }

    #[test]
    fn the_first_to_recover_from_overload_does_not_make_the_other_slow() {
        let mut sim = Sim::new();
        let render = |sim: &mut Sim, i: usize, blocks: u64, ms_each: u64| {
            let p = sim.p[i].as_mut().unwrap();
            (p.blocks, p.write_frame, p.last_render) = (blocks, blocks * 256, ms(ms_each));
        };
        for b in 1..=10 {
            render(&mut sim, 0, b, 7);
            render(&mut sim, 1, b, 7);
            sim.now += ms(1);
            assert_eq!(sim.dog.pass(sim.now, &sim.p).kills, [None; MAX_SLOTS]);
        }
        // The load goes: slot 1 renders blocks 11 and 12 fast before slot 0
        // shows its block 11. Slot 0's blocks over budget were slot 1's too.
        render(&mut sim, 1, 12, 1);
        sim.now += ms(1);
        assert_eq!(sim.dog.pass(sim.now, &sim.p).kills, [None; MAX_SLOTS]);
        render(&mut sim, 0, 11, 1);
        sim.now += ms(1);
        let pass = sim.dog.pass(sim.now, &sim.p);
        assert_eq!(pass.kills, [None; MAX_SLOTS]);
        assert!(!pass.overloaded);
    }

    #[test]
    fn replicas_spinning_inside_the_same_block_are_a_common_hang_killed_at_the_timeout() {
        let pass = stall_inside_a_block(ms(1), false).expect("killed");
        assert_eq!(pass.common_hang, Some(4_096));
        assert_eq!((pass.kills[0], pass.kills[1]), (Some(Verdict::Hung), Some(Verdict::Hung)));
        // Descheduled (no CPU): a stalled machine, given patience.
        let pass = stall_inside_a_block(0, false).expect("killed after the patience");
        assert_eq!(pass.common_hang, None);
        // Spinning, but in different blocks: not one poison.
        assert_eq!(stall_inside_a_block(ms(1), true).expect("killed").common_hang, None);
    }

    #[test]
    fn a_common_hang_is_found_within_two_hang_timeouts() {
        let mut sim = Sim::new();
        for i in 0..2 {
            sim.p[i].as_mut().unwrap().rendering = 1;
        }
        let mut killed_at = None;
        for _ in 0..400 {
            sim.now += ms(1);
            for i in 0..2 {
                let wants = sim.dog.wants_cpu(i, sim.now);
                sim.p[i].as_mut().unwrap().cpu_ns = wants.then_some(sim.now);
            }
            if sim.dog.pass(sim.now, &sim.p).common_hang.is_some() {
                killed_at = Some(sim.now);
                break;
            }
        }
        let t = killed_at.expect("found");
        assert!(t > CFG.hang_timeout && t <= 2 * CFG.hang_timeout, "at {t} ns");
    }

    /// Slot 0 stalls alone (slot 1 renders on) for up to 400 ms, in
    /// scheduler state `runnable`, its CPU time growing by `cpu_per_ms`
    /// per ms; returns when the pass that kills it came (ms) and how many
    /// passes counted it starved.
    fn stall_alone(runnable: bool, cpu_per_ms: u64) -> (Option<Nanos>, u32) {
        let mut sim = Sim::new();
        let mut starved = 0;
        for _ in 0..400 {
            sim.now += ms(1);
            let wants = sim.dog.wants_cpu(0, sim.now);
            let p = sim.p[0].as_mut().unwrap();
            p.cpu_ns = wants.then_some(sim.now / ms(1) * cpu_per_ms);
            p.runnable = wants.then_some(runnable);
            sim.p[1].as_mut().unwrap().write_frame += 256;
            let pass = sim.dog.pass(sim.now, &sim.p);
            starved += u32::from(pass.starved[0]);
            if pass.kills[0].is_some() {
                return (Some(sim.now / ms(1)), starved);
            }
        }
        (None, starved)
    }

    #[test]
    fn a_runnable_worker_without_cpu_time_is_starved_not_hung_for_a_bounded_patience() {
        // The host took its CPU away: runnable, no CPU time. Patience (10
        // hang timeouts), counted once, then killed all the same.
        let (killed, starved) = stall_alone(true, 0);
        assert_eq!(starved, 1);
        let t = killed.expect("killed after the patience");
        assert!(t > 200 && t <= 202, "at {t} ms");
        // Spinning (runnable, burning CPU): hung at the timeout.
        assert_eq!(stall_alone(true, ms(1)), (Some(21), 0));
        // Stopped or blocked (not runnable): hung at the timeout.
        assert_eq!(stall_alone(false, 0), (Some(21), 0));
    }

    #[test]
    fn a_joining_worker_is_not_part_of_a_common_stall() {
        let mut sim = Sim::new();
        sim.dog.watch(1, 0, false);
        let pass = sim.run(30, ms(1), [0, 0]).expect("no patience for a lone replica");
        assert_eq!(pass.kills[0], Some(Verdict::Hung));
    }
}
