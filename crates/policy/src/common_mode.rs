//! Common-mode faults: what hits every replica at once.
//!
//! Replicas in lockstep apply the same events at the same frames, so a
//! command that trips a bug in the DSP (a crash or a hang on some parameter
//! combination: a *poison*) strikes every replica, and every replacement
//! that replays it, inside the same block. Failing over cannot help; the
//! command must be cut out.
//!
//! * **Evidence.** A worker lost *inside* a block (its heartbeat says which,
//!   and which event numbers it was given for it) to a crash of its own (a
//!   signal such as SIGSEGV, an abort, a panic, a non-zero exit) or to a
//!   hang the watchdog ended. A SIGKILL from outside, or a kill for
//!   slowness or divergence, is no evidence: the DSP did not cause it.
//! * **Suspect.** The first such loss makes its block suspect. Starting
//!   replacements is held while a live replica still has to render that
//!   block (it will tell: pass it, or die in it); the suspicion lapses as
//!   soon as any worker passes the block, or after `hold_timeout`.
//! * **Common mode.** A second worker lost inside the same block: every
//!   replica that reached it died there. The suspects are the events
//!   given for that block. One suspect: it is cut. None: the DSP fails there
//!   by itself; nothing can be cut, so the replacements start from a reset
//!   DSP after it. Several: **trial runs** narrow them down: a spare starts
//!   from the checkpoint without the first half of the suspects; if it dies
//!   in the block again the poison is in the second half, if it passes it is
//!   in the first. Each trial halves the suspects; after `max_trials` the
//!   ones left are all cut. A trial runs in a fork of a spare (see
//!   `chronus_worker::Worker::fork_trials`), which the spare brought to
//!   the suspect block once: the fork renders that block alone. One that
//!   dies takes only the fork with it, so the same spare runs the next
//!   trial at once, and starts as a replica once the poison is cut: no
//!   spawn on that path. A trial still inside the suspect block after
//!   `trial_patience` (a block period: any replica must render a block
//!   faster than that) has hung in it, and so has one that burned more CPU
//!   time inside it than a block may take (the budget in [`Sight`]): a
//!   spinning trial is told from a descheduled one in about a millisecond.
//!
//! Every cut is final, applies to every replica and replacement from then
//! on (the bus's excision table), and is written to the journal, so the run
//! stays bit-identical to its journal rendered offline.

use super::Nanos;

/// Trial runs spent telling which of several suspect commands is a poison
/// ([`CommonModeConfig::max_trials`]); 8 trials single out one of 256. A
/// crash trial takes 1–2 ms, a hang trial a block period.
pub const POISON_TRIALS: u32 = 8;

/// Common-mode settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommonModeConfig {
    /// Longest replacements wait for another replica to pass a suspect
    /// block or die in it.
    pub hold_timeout: Nanos,
    /// Most trial runs spent telling which of several suspects is the
    /// poison; the ones still suspect then are all cut.
    pub max_trials: u32,
    /// A trial inside the suspect block this long has hung there.
    pub trial_patience: Nanos,
}

/// Why a worker was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// It crashed or exited on its own.
    Crash,
    /// The watchdog killed it for a hang.
    Hang,
    /// Anything else: a SIGKILL from outside, a kill for slowness or
    /// divergence. No evidence against its input.
    Other,
}

/// A lost worker, as evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loss {
    /// Its generation (workers are told apart by it).
    pub worker: u64,
    /// Why it was lost.
    pub cause: Cause,
    /// The first frame of the block it was inside, if any.
    pub block: Option<u64>,
    /// The event numbers it was given for that block: `events.0..events.1`.
    pub events: (u64, u64),
    /// It was a trial run.
    pub trial: bool,
}

impl Loss {
    fn evidence(&self) -> Option<u64> {
        self.block.filter(|_| self.cause != Cause::Other)
    }
}

/// What the supervisor sees of the suspect block this pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sight {
    /// Some running worker (not one of the lost) has rendered past it.
    pub passed: bool,
    /// Some live replica is running and has not rendered past it yet.
    pub pending: bool,
    /// The trial run has rendered past it.
    pub trial_passed: bool,
    /// The trial run is inside it.
    pub trial_inside: bool,
    /// The CPU time the trial's process has used, if known.
    pub trial_cpu_ns: Option<u64>,
    /// CPU time a block may take: a trial that used more inside the
    /// suspect block is spinning there (hung), however little wall time
    /// passed.
    pub trial_cpu_budget: Nanos,
}

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing now.
    Wait,
    /// Cut event numbers `from..to` (all of them) out of every replica
    /// and replacement, for good. A trial still running passed the block:
    /// it ends, and its worker starts as a replica like any spare.
    Cut {
        /// First frame of the block they killed every replica in.
        block: u64,
        /// First event number cut.
        from: u64,
        /// One past the last.
        to: u64,
        /// Trials it took.
        trials: u32,
    },
    /// Every replica died in `block`, which has no events: the DSP fails
    /// there by itself. Replacements start from a reset DSP after it.
    Reset {
        /// First frame of that block.
        block: u64,
    },
    /// The trial passed the block and told what it had to: end it (its
    /// worker is a spare again, for the next trial).
    EndTrial,
    /// The trial has been inside the suspect block for longer than any
    /// replica may take: kill it as hung there (its loss narrows the
    /// suspects down).
    TrialHung,
}

/// Where the engine stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// No suspicion.
    #[default]
    Watching,
    /// A worker was lost inside block `block`.
    Suspect {
        /// First frame of the block.
        block: u64,
        /// Events given for it.
        events: (u64, u64),
        /// The worker lost.
        worker: u64,
        /// Since when.
        since: Nanos,
    },
    /// Every replica died in `block`: narrowing `lo..hi` down.
    Bisecting {
        /// First frame of the block.
        block: u64,
        /// First suspect event number.
        lo: u64,
        /// One past the last.
        hi: u64,
        /// Trials run so far.
        trials: u32,
        /// A trial is running, skipping `lo..mid`.
        trial: Option<u64>,
        /// Since when the trial is inside the block, and the CPU time it
        /// had used then (if known).
        inside: Option<(Nanos, Option<u64>)>,
    },
}

/// The common-mode state.
#[derive(Clone, Copy, Debug)]
pub struct CommonMode {
    cfg: CommonModeConfig,
    phase: Phase,
}

impl CommonMode {
    /// Watching, with `cfg`.
    pub fn new(cfg: CommonModeConfig) -> Self {
        Self { cfg, phase: Phase::Watching }
    }

    /// Where it stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether starting replacements must wait (a suspect block is being
    /// told apart, or the poison is being narrowed down).
    pub fn hold(&self, now: Nanos, sight: &Sight) -> bool {
        match self.phase {
            Phase::Watching => false,
            Phase::Suspect { since, .. } => {
                sight.pending && !sight.passed && now.saturating_sub(since) < self.cfg.hold_timeout
            }
            Phase::Bisecting { .. } => true,
        }
    }

    /// The suspect block (its first frame), if any.
    pub fn block(&self) -> Option<u64> {
        match self.phase {
            Phase::Watching => None,
            Phase::Suspect { block, .. } | Phase::Bisecting { block, .. } => Some(block),
        }
    }

    /// The events a new trial run must skip, when one is wanted now.
    pub fn trial_wanted(&self) -> Option<(u64, u64)> {
        match self.phase {
            Phase::Bisecting { lo, hi, trial: None, .. } => Some((lo, midpoint(lo, hi))),
            _ => None,
        }
    }

    /// A trial run started, skipping what [`CommonMode::trial_wanted`] said.
    pub fn trial_started(&mut self) {
        if let Phase::Bisecting { lo, hi, trial: ref mut t @ None, .. } = self.phase {
            *t = Some(midpoint(lo, hi));
        }
    }

    /// A worker was lost.
    pub fn lost(&mut self, now: Nanos, loss: &Loss) -> Decision {
        let Some(block) = loss.evidence() else {
            // Lost for another reason, a trial tells nothing: run another.
            return if loss.trial { self.trial_inconclusive() } else { Decision::Wait };
        };
        match self.phase {
            Phase::Watching => {
                self.suspect(now, block, loss);
                Decision::Wait
            }
            Phase::Suspect { block: b, events, worker, .. } if b == block && worker != loss.worker => {
                let (lo, hi) = (events.0.min(loss.events.0), events.1.max(loss.events.1));
                self.phase = Phase::Bisecting { block, lo, hi, trials: 0, trial: None, inside: None };
                self.settle()
            }
            Phase::Suspect { .. } => {
                self.suspect(now, block, loss);
                Decision::Wait
            }
            Phase::Bisecting { block: b, hi, trials, trial: Some(mid), .. } if loss.trial && b == block => {
                // It died in the block without lo..mid: the poison is in mid..hi.
                self.phase =
                    Phase::Bisecting { block, lo: mid, hi, trials: trials + 1, trial: None, inside: None };
                self.settle()
            }
            Phase::Bisecting { .. } if loss.trial => self.trial_inconclusive(),
            Phase::Bisecting { .. } => Decision::Wait,
        }
    }

    /// One pass: a suspicion lapses when a worker passed the block; a trial
    /// that passed it tells the poison is among the events it skipped.
    pub fn poll(&mut self, now: Nanos, sight: &Sight) -> Decision {
        match self.phase {
            Phase::Bisecting { trial: Some(_), ref mut inside, .. }
                if sight.trial_inside && !sight.trial_passed =>
            {
                let (since, cpu_then) = *inside.get_or_insert((now, sight.trial_cpu_ns));
                let spun = match (cpu_then, sight.trial_cpu_ns) {
                    (Some(then), Some(cpu)) => cpu.saturating_sub(then) > sight.trial_cpu_budget,
                    _ => false,
                };
                if spun || now.saturating_sub(since) > self.cfg.trial_patience {
                    *inside = None;
                    return Decision::TrialHung;
                }
                Decision::Wait
            }
            Phase::Suspect { .. } if sight.passed => {
                // A worker rendered the block: it is no poison.
                self.phase = Phase::Watching;
                Decision::Wait
            }
            Phase::Bisecting { block, lo, trials, trial: Some(mid), .. } if sight.trial_passed => {
                self.phase =
                    Phase::Bisecting { block, lo, hi: mid, trials: trials + 1, trial: None, inside: None };
                match self.settle() {
                    Decision::Wait => Decision::EndTrial,
                    other => other,
                }
            }
            _ => Decision::Wait,
        }
    }

    fn suspect(&mut self, now: Nanos, block: u64, loss: &Loss) {
        self.phase = Phase::Suspect { block, events: loss.events, worker: loss.worker, since: now };
    }

    fn trial_inconclusive(&mut self) -> Decision {
        if let Phase::Bisecting { block, lo, hi, trials, trial: Some(_), .. } = self.phase {
            self.phase = Phase::Bisecting { block, lo, hi, trials: trials + 1, trial: None, inside: None };
            return self.settle();
        }
        Decision::Wait
    }

    /// Decides when the suspects are down to one (or none), or the trials
    /// are spent.
    fn settle(&mut self) -> Decision {
        let Phase::Bisecting { block, lo, hi, trials, .. } = self.phase else { return Decision::Wait };
        if hi <= lo {
            self.phase = Phase::Watching;
            return Decision::Reset { block };
        }
        if hi - lo == 1 || trials >= self.cfg.max_trials {
            self.phase = Phase::Watching;
            return Decision::Cut { block, from: lo, to: hi, trials };
        }
        Decision::Wait
    }
}

/// Where a trial splits `lo..hi` (two or more suspects): it skips
/// `lo..mid` and applies `mid..hi`, both non-empty.
fn midpoint(lo: u64, hi: u64) -> u64 {
    lo + (hi - lo).div_ceil(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ms;

    const CFG: CommonModeConfig =
        CommonModeConfig { hold_timeout: ms(20), max_trials: 4, trial_patience: ms(5) };

    fn crash(worker: u64, block: u64, events: (u64, u64)) -> Loss {
        Loss { worker, cause: Cause::Crash, block: Some(block), events, trial: false }
    }

    fn trial(cause: Cause, block: u64) -> Loss {
        Loss { worker: 99, cause, block: Some(block), events: (0, 0), trial: true }
    }

    const PENDING: Sight = Sight {
        passed: false,
        pending: true,
        trial_passed: false,
        trial_inside: false,
        trial_cpu_ns: None,
        trial_cpu_budget: 0,
    };

    #[test]
    fn one_loss_holds_replacements_until_another_replica_passes_the_block() {
        let mut c = CommonMode::new(CFG);
        assert_eq!(c.lost(0, &crash(1, 4_096, (10, 13))), Decision::Wait);
        assert!(c.hold(ms(1), &PENDING), "the standby has yet to render the block");
        assert!(!c.hold(ms(21), &PENDING), "not longer than the hold timeout");
        assert!(!c.hold(ms(1), &Sight::default()), "nobody left to tell: a replacement will");
        let passed = Sight { passed: true, ..PENDING };
        assert_eq!(c.poll(0, &passed), Decision::Wait);
        assert_eq!(c.phase(), Phase::Watching, "it passed: no poison");
        assert!(!c.hold(ms(1), &PENDING));
    }

    #[test]
    fn no_evidence_from_outside_kills_or_from_between_blocks() {
        let mut c = CommonMode::new(CFG);
        let outside = Loss { cause: Cause::Other, ..crash(1, 4_096, (10, 13)) };
        c.lost(0, &outside);
        c.lost(0, &Loss { worker: 2, ..outside });
        assert_eq!(c.phase(), Phase::Watching, "a double SIGKILL is no poison");
        let between = Loss { block: None, ..crash(1, 4_096, (10, 13)) };
        c.lost(0, &between);
        c.lost(0, &Loss { worker: 2, ..between });
        assert_eq!(c.phase(), Phase::Watching);
    }

    #[test]
    fn two_losses_in_the_same_block_with_one_event_cut_it() {
        let mut c = CommonMode::new(CFG);
        c.lost(0, &crash(1, 4_096, (10, 11)));
        assert_eq!(
            c.lost(ms(1), &crash(1, 4_096, (10, 11))),
            Decision::Wait,
            "the same worker twice is not two"
        );
        let d = c.lost(ms(1), &Loss { cause: Cause::Hang, ..crash(2, 4_096, (10, 11)) });
        assert_eq!(d, Decision::Cut { block: 4_096, from: 10, to: 11, trials: 0 });
        assert_eq!(c.phase(), Phase::Watching);
    }

    #[test]
    fn losses_in_different_blocks_are_not_common() {
        let mut c = CommonMode::new(CFG);
        c.lost(0, &crash(1, 4_096, (10, 11)));
        assert_eq!(c.lost(ms(1), &crash(2, 4_352, (11, 12))), Decision::Wait);
        assert!(matches!(c.phase(), Phase::Suspect { block: 4_352, .. }));
    }

    #[test]
    fn a_block_without_events_that_kills_every_replica_resets_the_dsp() {
        let mut c = CommonMode::new(CFG);
        c.lost(0, &crash(1, 4_096, (10, 10)));
        assert_eq!(c.lost(0, &crash(2, 4_096, (10, 10))), Decision::Reset { block: 4_096 });
    }

    /// Finds the poison among events 10..18 (8 suspects) by trials, the
    /// poison being `poison`; returns the decision and the trials started.
    fn bisect(poison: u64) -> (Decision, u32) {
        let mut c = CommonMode::new(CFG);
        c.lost(0, &crash(1, 4_096, (10, 18)));
        assert_eq!(c.lost(0, &crash(2, 4_096, (10, 18))), Decision::Wait, "8 suspects: trials");
        assert!(c.hold(0, &Sight::default()), "no replacement while narrowing down");
        let mut started = 0;
        loop {
            let (skip_from, skip_to) = c.trial_wanted().expect("a trial is wanted");
            assert!(skip_from < skip_to);
            c.trial_started();
            assert_eq!(c.trial_wanted(), None, "one at a time");
            started += 1;
            let d = if (skip_from..skip_to).contains(&poison) {
                c.poll(0, &Sight { trial_passed: true, ..Sight::default() })
            } else {
                c.lost(0, &trial(Cause::Crash, 4_096))
            };
            match d {
                Decision::Wait | Decision::EndTrial => continue,
                d => return (d, started),
            }
        }
    }

    #[test]
    fn several_suspects_are_narrowed_down_to_the_poison_by_trials() {
        for poison in 10..18 {
            let (d, trials) = bisect(poison);
            let Decision::Cut { from, to, .. } = d else { panic!("{d:?}") };
            assert_eq!((from, to), (poison, poison + 1), "poison {poison}");
            assert_eq!(trials, 3, "log2(8) trials");
        }
    }

    /// Both replicas died in block 4096 with suspects 10 and 11; the first
    /// trial (skipping 10) is running.
    fn trial_running() -> CommonMode {
        let mut c = CommonMode::new(CFG);
        c.lost(0, &crash(1, 4_096, (10, 12)));
        c.lost(0, &crash(2, 4_096, (10, 12)));
        c.trial_started();
        c
    }

    #[test]
    fn a_trial_stuck_inside_the_block_past_its_patience_has_hung() {
        let mut c = trial_running();
        let inside = Sight { trial_inside: true, ..Sight::default() };
        assert_eq!(c.poll(ms(100), &inside), Decision::Wait);
        assert_eq!(c.poll(ms(105), &inside), Decision::Wait, "a block period is allowed");
        assert_eq!(c.poll(ms(106), &inside), Decision::TrialHung);
        // Its loss (killed as hung, inside the block) narrows the suspects.
        let d = c.lost(ms(107), &trial(Cause::Hang, 4_096));
        assert_eq!(d, Decision::Cut { block: 4_096, from: 11, to: 12, trials: 1 });
    }

    #[test]
    fn a_trial_that_burns_more_cpu_inside_the_block_than_a_block_takes_has_hung() {
        let mut c = trial_running();
        let cpu = |ns| Sight {
            trial_inside: true,
            trial_cpu_ns: Some(ns),
            trial_cpu_budget: ms(1),
            ..Sight::default()
        };
        assert_eq!(c.poll(ms(100), &cpu(ms(7))), Decision::Wait);
        // Descheduled (a stalled machine): no CPU used, only the wall-time
        // patience counts.
        assert_eq!(c.poll(ms(104), &cpu(ms(7))), Decision::Wait);
        assert_eq!(c.poll(ms(104), &cpu(ms(8))), Decision::Wait, "a block's worth");
        assert_eq!(c.poll(ms(104), &cpu(ms(8) + 1)), Decision::TrialHung, "more: spinning");
        // Unknown CPU time (the process is gone): the patience alone.
        let mut c = trial_running();
        let unknown = Sight { trial_cpu_ns: None, ..cpu(0) };
        assert_eq!(c.poll(ms(100), &unknown), Decision::Wait);
        assert_eq!(c.poll(ms(105), &unknown), Decision::Wait);
        assert_eq!(c.poll(ms(106), &unknown), Decision::TrialHung);
    }

    #[test]
    fn trials_are_bounded_and_an_inconclusive_trial_is_run_again() {
        let mut c = CommonMode::new(CommonModeConfig { max_trials: 1, ..CFG });
        c.lost(0, &crash(1, 4_096, (10, 18)));
        c.lost(0, &crash(2, 4_096, (10, 18)));
        c.trial_started();
        // Killed from outside: tells nothing, but counts; out of trials,
        // every suspect is cut.
        let d = c.lost(0, &trial(Cause::Other, 4_096));
        assert_eq!(d, Decision::Cut { block: 4_096, from: 10, to: 18, trials: 1 });
        let mut c = CommonMode::new(CFG);
        c.lost(0, &crash(1, 4_096, (10, 18)));
        c.lost(0, &crash(2, 4_096, (10, 18)));
        c.trial_started();
        assert_eq!(c.lost(0, &trial(Cause::Other, 4_096)), Decision::Wait);
        assert_eq!(c.trial_wanted(), Some((10, 14)), "the same trial again");
        let mut c = CommonMode::new(CommonModeConfig { max_trials: 1, ..CFG });
        c.lost(0, &crash(1, 4_096, (10, 18)));
        c.lost(0, &crash(2, 4_096, (10, 18)));
        c.trial_started();
        let d = c.lost(0, &trial(Cause::Crash, 4_096));
        assert_eq!(d, Decision::Cut { block: 4_096, from: 14, to: 18, trials: 1 });
    }
}
