//! Every slot's life: spare, replacement, live replica.
//!
//! A slot that lost its worker is **refilled**: once the output no longer
//! reads it (its dead worker's frames may still be played when no replica
//! has them), its region is reset and a new worker spawned; once ready (its
//! DSP prepared), it is a **spare**: a process idle, attached, waiting. When
//! the engine needs a replica (fewer live than wanted), a spare **starts**:
//!
//! 1. from the best checkpoint ([`super::checkpoint`]): the newest taken at
//!    or before the frame the output is playing. It restores it, reads the
//!    log from the checkpoint's event number on, and renders as fast as it
//!    can. (With no checkpoint yet, one is asked for; with no live replica
//!    and no checkpoint, it starts from a reset DSP at the next block
//!    boundary: the state is lost.)
//! 2. **Verify**: its block checksums are compared with a reference
//!    replica's (a live one, else the dead ones' still in shared memory)
//!    from the start on. It becomes a live replica once
//!    [`JoinConfig::verify_blocks`] blocks agree, it has caught up, and it
//!    covers every frame still to be played (the output has reached where
//!    it started). A mismatch is a divergence.
//!
//! No spawn or exec is on that path: the spare was started beforehand.
//! Every step has a timeout; a failed step kills the worker, whose exit
//! counts as a failed restart (see [`super::restart`]).

use super::Nanos;
use super::restart::{RestartPolicy, Restarts, Retry};

/// Longest any step of a join may take ([`JoinConfig::step_timeout`]).
pub const JOIN_STEP_TIMEOUT: Nanos = 3_000_000_000;

/// Join settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinConfig {
    /// Longest any step may take.
    pub step_timeout: Nanos,
    /// Equal block checksums needed to trust a replacement.
    pub verify_blocks: u32,
    /// Frames per block (blocks are numbered `frame / block`).
    pub block: u64,
}

/// Where a slot stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// An empty slot nobody asked to fill (its worker is gone, and no
    /// refill was started).
    #[default]
    Idle,
    /// A verified live replica: its audio may be played.
    Live,
    /// Restarts keep failing: waiting until then.
    Backoff {
        /// When to try again.
        until: Nanos,
    },
    /// Given up on after repeated failures.
    Quarantined,
    /// Its worker died: waiting until the output no longer reads the slot.
    AwaitQuiet,
    /// Spawned; waiting for the worker to be ready.
    AwaitReady {
        /// When it was spawned.
        since: Nanos,
    },
    /// A ready spare, idle.
    Spare,
    /// Wanted as a replica, but no checkpoint to start from yet (one was
    /// asked for).
    AwaitCheckpoint {
        /// Since when.
        since: Nanos,
    },
    /// Told to start at frame `start`; waiting for the worker to say it did.
    AwaitStart {
        /// The frame it starts at.
        start: u64,
        /// A trial run (see [`super::common_mode`]): never promoted.
        trial: bool,
        /// The replica to verify against (`None`: nobody; a fresh start).
        against: Option<usize>,
        /// When.
        since: Nanos,
    },
    /// Started at `start`; comparing checksums from block `next` on.
    Verify {
        /// The frame it started at.
        start: u64,
        /// A trial run: never promoted.
        trial: bool,
        /// The replica compared with.
        against: Option<usize>,
        /// The next block to compare.
        next: u64,
        /// Blocks that agreed so far.
        matched: u32,
        /// When verification began.
        since: Nanos,
    },
}

/// What the supervisor sees of the slot this pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The output has left the slot ([`Phase::AwaitQuiet`]).
    pub output_left: bool,
    /// The worker reported ready ([`Phase::AwaitReady`]).
    pub ready: bool,
    /// The engine needs this slot's spare as a replica now.
    pub wanted: bool,
    /// The best checkpoint to start from: (slot, frame).
    pub checkpoint: Option<(usize, u64)>,
    /// Start as a trial run that skips event numbers `.0...1` (the spare
    /// is wanted for that).
    pub trial: Option<(u64, u64)>,
    /// No live replica and no checkpoint: nothing to restore.
    pub nothing_to_restore: bool,
    /// A replica to verify a replacement against.
    pub reference: Option<usize>,
    /// Where a fresh start would begin (the first block boundary at or
    /// after the render limit).
    pub fresh_frame: u64,
    /// The worker's answer to the start request ([`Phase::AwaitStart`]).
    pub started: Option<bool>,
    /// The reference is still a live replica ([`Phase::Verify`]).
    pub reference_live: bool,
    /// Checksums compared this pass ([`Phase::Verify`]).
    pub compared: Compared,
    /// The replacement has caught up with the live replicas.
    pub caught_up: bool,
    /// Frames the output has played.
    pub output_frame: u64,
}

/// The outcome of comparing checksums from a block on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compared {
    /// Consecutive equal blocks found.
    pub matched: u32,
    /// The first block that differs, if any.
    pub mismatch: Option<u64>,
    /// The next block to compare.
    pub next: u64,
}

/// What the supervisor is to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing now.
    Wait,
    /// Reset the slot's region for a new generation and spawn a worker.
    Spawn,
    /// Ask the live replicas for a checkpoint now.
    RequestCheckpoint,
    /// Tell the spare to start from checkpoint slot `checkpoint`, whose
    /// frame is `frame`, skipping event numbers `skip.0..skip.1` (a trial;
    /// empty otherwise).
    StartFromCheckpoint {
        /// The checkpoint slot.
        checkpoint: usize,
        /// Its frame.
        frame: u64,
        /// Events it must not apply.
        skip: (u64, u64),
    },
    /// Tell the spare to start from a reset DSP at `frame` (the state is
    /// lost).
    StartFresh {
        /// The frame.
        frame: u64,
    },
    /// The worker is a verified live replica now.
    Promote,
    /// Kill the worker: this step failed.
    Fail(&'static str),
    /// Kill the worker: its block `block` differs from the reference's.
    Diverged {
        /// The first block that differs.
        block: u64,
    },
}

/// One slot's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Join {
    phase: Phase,
}

impl Join {
    /// Where it stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether a replica is on its way here (starting or verifying).
    pub fn starting(&self) -> bool {
        matches!(self.phase, Phase::AwaitCheckpoint { .. } | Phase::AwaitStart { .. } | Phase::Verify { .. })
    }

    /// Whether it holds a ready spare.
    pub fn is_spare(&self) -> bool {
        self.phase == Phase::Spare
    }

    /// The slot lost its worker: refill it, now or after a backoff, or give
    /// up.
    pub fn begin(&mut self, now: Nanos, restarts: &Restarts, policy: &RestartPolicy) {
        self.phase = match restarts.next(policy, now) {
            Retry::Now => Phase::AwaitQuiet,
            Retry::At(until) => Phase::Backoff { until },
            Retry::Quarantine => Phase::Quarantined,
        };
    }

    /// Stops for good (the DSP is not deterministic: replacements would only
    /// diverge again).
    pub fn quarantine(&mut self) {
        self.phase = Phase::Quarantined;
    }

    /// A worker that started with the engine is a live replica.
    pub fn live(&mut self) {
        self.phase = Phase::Live;
    }

    /// Its worker is gone (it died, or was killed): nothing in the slot
    /// until a refill begins ([`Join::begin`]).
    pub fn lost(&mut self) {
        self.phase = Phase::Idle;
    }

    /// Whether it holds a verified live replica.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// Whether a worker renders in it without being live yet (told to
    /// start, or verifying).
    pub fn is_joining(&self) -> bool {
        matches!(self.phase, Phase::AwaitStart { .. } | Phase::Verify { .. })
    }

    /// A worker spawned with the engine and not started is a ready spare.
    pub fn spare(&mut self) {
        self.phase = Phase::Spare;
    }

    /// Whether it is a trial run.
    pub fn is_trial(&self) -> bool {
        matches!(self.phase, Phase::AwaitStart { trial: true, .. } | Phase::Verify { trial: true, .. })
    }

    /// The trial run ended (it passed the suspect block, or died in it):
    /// the worker that ran it in a fork is a spare again, ready for the
    /// next trial or to start as a replica. No spawn or exec.
    pub fn trial_ended(&mut self) {
        if self.is_trial() {
            self.phase = Phase::Spare;
        }
    }

    /// A starting or verifying replacement is compared with `against`
    /// from now on, its count of agreeing blocks started over (the replica
    /// it was to be verified against turned out wrong: see
    /// [`super::referee`]).
    pub fn refer_to(&mut self, against: usize) {
        match &mut self.phase {
            Phase::AwaitStart { against: a, .. } => *a = Some(against),
            Phase::Verify { against: a, matched, .. } => {
                *a = Some(against);
                *matched = 0;
            }
            _ => {}
        }
    }

    fn start(&mut self, now: Nanos, f: &Facts) -> Action {
        let trial = f.trial.is_some();
        if let Some((checkpoint, frame)) = f.checkpoint.filter(|_| !f.nothing_to_restore) {
            self.phase = Phase::AwaitStart { start: frame, trial, against: f.reference, since: now };
            Action::StartFromCheckpoint { checkpoint, frame, skip: f.trial.unwrap_or_default() }
        } else if f.nothing_to_restore && !trial {
            let frame = f.fresh_frame;
            self.phase = Phase::AwaitStart { start: frame, trial, against: None, since: now };
            Action::StartFresh { frame }
        } else {
            if !matches!(self.phase, Phase::AwaitCheckpoint { .. }) {
                self.phase = Phase::AwaitCheckpoint { since: now };
            }
            Action::RequestCheckpoint
        }
    }

    /// Advances by whatever `f` says is ready; never waits.
    pub fn poll(&mut self, now: Nanos, cfg: &JoinConfig, f: &Facts) -> Action {
        let late = |since: Nanos| now.saturating_sub(since) > cfg.step_timeout;
        match self.phase {
            Phase::Idle | Phase::Live | Phase::Quarantined => Action::Wait,
            Phase::Backoff { until } => {
                if now >= until {
                    self.phase = Phase::AwaitQuiet;
                }
                Action::Wait
            }
            Phase::AwaitQuiet if f.output_left => {
                self.phase = Phase::AwaitReady { since: now };
                Action::Spawn
            }
            Phase::AwaitQuiet => Action::Wait,
            Phase::AwaitReady { .. } if f.ready => {
                self.phase = Phase::Spare;
                if f.wanted { self.start(now, f) } else { Action::Wait }
            }
            Phase::AwaitReady { since } if late(since) => Action::Fail("the worker did not report ready"),
            Phase::AwaitReady { .. } => Action::Wait,
            Phase::Spare if f.wanted => self.start(now, f),
            Phase::Spare => Action::Wait,
            Phase::AwaitCheckpoint { .. } if !f.wanted => {
                // No longer wanted (a replica came back, or starts are held).
                self.phase = Phase::Spare;
                Action::Wait
            }
            Phase::AwaitCheckpoint { .. } if f.checkpoint.is_some() || f.nothing_to_restore => {
                self.start(now, f)
            }
            Phase::AwaitCheckpoint { since } if late(since) => Action::Fail("no checkpoint came"),
            // Asked again each pass: a request no replica could answer (the
            // ones asked died) is made anew; one in flight is left alone.
            Phase::AwaitCheckpoint { .. } => Action::RequestCheckpoint,
            Phase::AwaitStart { start, trial, against, since } => match f.started {
                Some(true) => {
                    let next = start / cfg.block.max(1);
                    self.phase = Phase::Verify { start, trial, against, next, matched: 0, since: now };
                    Action::Wait
                }
                Some(false) => Action::Fail("the worker refused to start from the checkpoint"),
                None if late(since) => Action::Fail("the worker did not start"),
                None => Action::Wait,
            },
            Phase::Verify { start, trial, against, matched, since, .. } => {
                if let Some(block) = f.compared.mismatch {
                    return Action::Diverged { block };
                }
                let matched = matched + f.compared.matched;
                let covers_output = f.output_frame >= start;
                let verified = match against {
                    // Nobody to compare with (a fresh start): its own
                    // progress is all there is.
                    None => f.caught_up,
                    // The reference died since (its checksums stay where
                    // they are): what it rendered must agree.
                    Some(_) if !f.reference_live => matched > 0 || f.caught_up,
                    Some(_) => matched >= cfg.verify_blocks && f.caught_up,
                };
                if verified && (covers_output || !f.reference_live) && !trial {
                    self.phase = Phase::Live;
                    return Action::Promote;
                }
                if late(since) {
                    return Action::Fail("it did not catch up in lockstep in time");
                }
                self.phase = Phase::Verify { start, trial, against, next: f.compared.next, matched, since };
                Action::Wait
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ms;

    const CFG: JoinConfig = JoinConfig { step_timeout: ms(3_000), verify_blocks: 1, block: 256 };
    const POLICY: RestartPolicy = RestartPolicy { base: ms(1_000), max: ms(8_000), quarantine_after: 6 };

    fn begun() -> Join {
        let mut j = Join::default();
        j.begin(0, &Restarts::default(), &POLICY);
        j
    }

    /// Refills a slot up to a ready spare.
    fn to_spare(j: &mut Join) {
        assert_eq!(j.poll(1, &CFG, &Facts::default()), Action::Wait, "the output still reads the slot");
        assert_eq!(j.poll(2, &CFG, &Facts { output_left: true, ..Facts::default() }), Action::Spawn);
        assert_eq!(j.poll(3, &CFG, &Facts::default()), Action::Wait);
        assert_eq!(j.poll(4, &CFG, &Facts { ready: true, ..Facts::default() }), Action::Wait);
        assert!(j.is_spare());
    }

    fn wanted(checkpoint: Option<(usize, u64)>) -> Facts {
        Facts { wanted: true, checkpoint, reference: Some(1), ..Facts::default() }
    }

    fn verifying(matched: u32, caught_up: bool, output_frame: u64) -> Facts {
        Facts {
            reference_live: true,
            compared: Compared { matched, mismatch: None, next: 17 },
            caught_up,
            output_frame,
            ..Facts::default()
        }
    }

    /// A spare started from checkpoint 2 at frame 4096, now verifying.
    fn to_verify(j: &mut Join) {
        to_spare(j);
        assert_eq!(
            j.poll(5, &CFG, &wanted(Some((2, 4_096)))),
            Action::StartFromCheckpoint { checkpoint: 2, frame: 4_096, skip: (0, 0) }
        );
        assert_eq!(j.poll(6, &CFG, &Facts { started: Some(true), ..Facts::default() }), Action::Wait);
        assert!(matches!(j.phase(), Phase::Verify { start: 4_096, against: Some(1), next: 16, .. }));
    }

    #[test]
    fn a_spare_waits_until_wanted_then_starts_from_the_checkpoint() {
        let mut j = begun();
        to_spare(&mut j);
        assert_eq!(j.poll(5, &CFG, &Facts::default()), Action::Wait, "a spare idles");
        to_verify(&mut begun());
    }

    #[test]
    fn a_replacement_is_promoted_when_verified_caught_up_and_covering_the_output() {
        let mut j = begun();
        to_verify(&mut j);
        assert_eq!(j.poll(8, &CFG, &verifying(1, false, 5_000)), Action::Wait, "not caught up");
        assert_eq!(
            j.poll(9, &CFG, &verifying(0, true, 4_000)),
            Action::Wait,
            "the output is before its start"
        );
        assert_eq!(j.poll(10, &CFG, &verifying(0, true, 4_096)), Action::Promote);
        assert_eq!(j.phase(), Phase::Live);
    }

    #[test]
    fn with_no_checkpoint_one_is_asked_for_and_awaited() {
        let mut j = begun();
        to_spare(&mut j);
        assert_eq!(j.poll(5, &CFG, &wanted(None)), Action::RequestCheckpoint);
        assert_eq!(j.poll(6, &CFG, &wanted(None)), Action::RequestCheckpoint, "asks again while none");
        assert!(matches!(j.phase(), Phase::AwaitCheckpoint { since: 5 }));
        assert_eq!(
            j.poll(7, &CFG, &wanted(Some((0, 8_192)))),
            Action::StartFromCheckpoint { checkpoint: 0, frame: 8_192, skip: (0, 0) }
        );
        let mut j = begun();
        to_spare(&mut j);
        j.poll(5, &CFG, &wanted(None));
        assert!(matches!(j.poll(ms(3_100), &CFG, &wanted(None)), Action::Fail(_)));
    }

    #[test]
    fn with_nothing_to_restore_it_starts_fresh_and_needs_no_comparison() {
        let mut j = begun();
        to_spare(&mut j);
        let f = Facts { wanted: true, nothing_to_restore: true, fresh_frame: 8_192, ..Facts::default() };
        assert_eq!(j.poll(5, &CFG, &f), Action::StartFresh { frame: 8_192 });
        j.poll(6, &CFG, &Facts { started: Some(true), ..Facts::default() });
        assert_eq!(j.poll(7, &CFG, &Facts { caught_up: true, ..Facts::default() }), Action::Promote);
    }

    #[test]
    fn a_dead_reference_still_verifies_what_it_rendered() {
        let mut j = begun();
        to_verify(&mut j);
        // Every replica died (a double fault): the dead ones' checksums
        // still count, and the replacement need not wait for the output.
        let f = Facts { reference_live: false, ..verifying(1, false, 0) };
        assert_eq!(j.poll(8, &CFG, &f), Action::Promote);
    }

    #[test]
    fn a_replacement_can_be_pointed_at_another_reference() {
        let mut j = begun();
        to_verify(&mut j);
        j.refer_to(0);
        assert!(
            matches!(j.phase(), Phase::Verify { against: Some(0), next: 16, matched: 0, .. }),
            "compared with the new reference, its count started over: {:?}",
            j.phase()
        );
    }

    #[test]
    fn a_mismatch_is_a_divergence_and_every_step_times_out() {
        let mut j = begun();
        to_verify(&mut j);
        let f = Facts {
            compared: Compared { mismatch: Some(16), ..Compared::default() },
            ..verifying(0, true, 0)
        };
        assert_eq!(j.poll(8, &CFG, &f), Action::Diverged { block: 16 });
        let mut j = begun();
        j.poll(0, &CFG, &Facts { output_left: true, ..Facts::default() });
        assert_eq!(
            j.poll(ms(3_001), &CFG, &Facts::default()),
            Action::Fail("the worker did not report ready")
        );
        let mut j = begun();
        to_verify(&mut j);
        assert!(matches!(j.poll(ms(3_100), &CFG, &verifying(0, false, 0)), Action::Fail(_)));
    }

    #[test]
    fn a_trial_run_skips_its_events_and_is_never_promoted() {
        let mut j = begun();
        to_spare(&mut j);
        let f = Facts { trial: Some((10, 14)), ..wanted(Some((2, 4_096))) };
        assert_eq!(
            j.poll(5, &CFG, &f),
            Action::StartFromCheckpoint { checkpoint: 2, frame: 4_096, skip: (10, 14) }
        );
        assert!(j.is_trial());
        j.poll(6, &CFG, &Facts { started: Some(true), ..Facts::default() });
        assert!(j.is_trial());
        assert_eq!(j.poll(7, &CFG, &verifying(5, true, 8_192)), Action::Wait, "a trial is not a replica");
        assert!(j.is_trial());
    }

    #[test]
    fn a_worker_whose_trial_ended_is_a_spare_again_and_starts_the_next_trial() {
        let mut j = begun();
        to_spare(&mut j);
        let trial = |skip| Facts { trial: Some(skip), ..wanted(Some((2, 4_096))) };
        j.poll(5, &CFG, &trial((10, 13)));
        j.poll(6, &CFG, &Facts { started: Some(true), ..Facts::default() });
        j.trial_ended();
        assert!(j.is_spare() && !j.is_trial());
        assert_eq!(
            j.poll(7, &CFG, &trial((10, 11))),
            Action::StartFromCheckpoint { checkpoint: 2, frame: 4_096, skip: (10, 11) },
            "no spawn: the same worker starts again"
        );
        assert!(j.is_trial());
        // Only a trial ends so: a replacement on its way is left alone.
        let mut j = begun();
        to_verify(&mut j);
        j.trial_ended();
        assert!(matches!(j.phase(), Phase::Verify { .. }));
    }

    #[test]
    fn a_start_no_longer_wanted_while_awaiting_a_checkpoint_goes_back_to_spare() {
        let mut j = begun();
        to_spare(&mut j);
        assert_eq!(j.poll(5, &CFG, &wanted(None)), Action::RequestCheckpoint);
        assert_eq!(j.poll(6, &CFG, &Facts::default()), Action::Wait);
        assert!(j.is_spare());
    }

    #[test]
    fn failures_back_off_and_then_quarantine() {
        let mut r = Restarts::default();
        for _ in 0..2 {
            r.failed();
        }
        let mut j = Join::default();
        j.begin(ms(10), &r, &POLICY);
        assert_eq!(j.phase(), Phase::Backoff { until: ms(1_010) });
        assert_eq!(j.poll(ms(500), &CFG, &Facts::default()), Action::Wait);
        j.poll(ms(1_010), &CFG, &Facts::default());
        assert_eq!(j.phase(), Phase::AwaitQuiet);
        for _ in 0..4 {
            r.failed();
        }
        j.begin(0, &r, &POLICY);
        assert_eq!(j.phase(), Phase::Quarantined);
        assert_eq!(j.poll(ms(100_000), &CFG, &Facts { output_left: true, ..Facts::default() }), Action::Wait);
    }
}
