//! Bringing a replacement worker into verified lockstep, in the background.
//!
//! 1. **Quiet.** Wait until the output has left the dead slot (it is not in
//!    a period that started before the slot was marked dead), so its region
//!    can be reset for a new worker.
//! 2. **Spawn** the worker; wait until it is ready (its DSP prepared).
//! 3. **Snapshot.** Ask a live worker for a snapshot at the first block
//!    boundary at or after the render limit. It holds the DSP's state at
//!    frame S and the number of the first event not yet applied.
//! 4. **Start.** The supervisor copies it into a checkpoint of the bus and
//!    tells the replacement to start from it: it restores, reads the log
//!    from that event on, and renders from S as fast as it can. (With no
//!    live worker left, it starts from a reset DSP at the next block
//!    boundary: the state is lost.)
//! 5. **Verify.** Its block checksums are compared with the source's from
//!    S on. It becomes a live replica once [`JoinConfig::verify_blocks`]
//!    blocks agree, it has caught up, *and the output has played up to S*
//!    (frames before S exist only in the others' rings, so until then it
//!    could not stand in for them). A mismatch is a divergence.
//!
//! Every step has a timeout; a failed step kills the replacement, whose
//! exit counts as a failed restart (see [`super::restart`]).

use super::Nanos;
use super::restart::{RestartPolicy, Restarts, Retry};

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

/// Where a slot's join stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Nothing to do: the slot holds a live worker, or nothing was asked.
    #[default]
    Idle,
    /// Restarts keep failing: waiting until then.
    Backoff {
        /// When to try again.
        until: Nanos,
    },
    /// Given up on after repeated failures.
    Quarantined,
    /// Waiting for the output to leave the slot.
    AwaitQuiet,
    /// Spawned; waiting for the worker to be ready.
    AwaitReady {
        /// When it was spawned.
        since: Nanos,
    },
    /// Waiting for live worker `from`'s snapshot.
    AwaitSnapshot {
        /// The slot asked.
        from: usize,
        /// When.
        since: Nanos,
    },
    /// Told to start at frame `start`; waiting for the worker to say it did.
    AwaitStart {
        /// The frame it starts at.
        start: u64,
        /// The worker to compare with (`None`: nobody left; a fresh start).
        against: Option<usize>,
        /// When.
        since: Nanos,
    },
    /// Started at `start`; comparing checksums from block `next` on.
    Verify {
        /// The frame it started at.
        start: u64,
        /// The worker compared with.
        against: Option<usize>,
        /// The next block to compare.
        next: u64,
        /// Blocks that agreed so far.
        matched: u32,
        /// When verification began.
        since: Nanos,
    },
}

/// What the supervisor sees of the join this pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The output has left the slot ([`Phase::AwaitQuiet`]).
    pub output_left: bool,
    /// The worker reported ready ([`Phase::AwaitReady`]).
    pub ready: bool,
    /// A live worker to copy from (the active preferably).
    pub source: Option<usize>,
    /// The frame of the asked-for snapshot, once written
    /// ([`Phase::AwaitSnapshot`]).
    pub snapshot_frame: Option<u64>,
    /// Where a fresh start would begin (the first block boundary at or
    /// after the render limit).
    pub fresh_frame: u64,
    /// The worker's answer to the start request ([`Phase::AwaitStart`]).
    pub started: Option<bool>,
    /// The worker compared with is still live ([`Phase::Verify`]).
    pub against_live: bool,
    /// Checksums compared this pass ([`Phase::Verify`]).
    pub compared: Compared,
    /// The replacement has caught up with the worker compared with.
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
    /// Ask live worker `from` for a snapshot at the first block boundary at
    /// or after the render limit.
    RequestSnapshot {
        /// The slot to ask.
        from: usize,
    },
    /// Copy `from`'s snapshot into a checkpoint and tell the worker to start
    /// from it, at frame `frame`.
    StartFromSnapshot {
        /// The slot whose snapshot it is.
        from: usize,
        /// Its frame.
        frame: u64,
    },
    /// Tell the worker to start from a reset DSP at `frame` (the state is
    /// lost).
    StartFresh {
        /// The frame.
        frame: u64,
    },
    /// The worker is a verified live replica now.
    Promote,
    /// Kill the worker: this join failed.
    Fail(&'static str),
    /// Kill the worker: its block `block` differs from the worker it copied.
    Diverged {
        /// The first block that differs.
        block: u64,
    },
}

/// One slot's join.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Join {
    phase: Phase,
}

impl Join {
    /// Where it stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether a replacement is on its way (not idle, backing off or
    /// quarantined).
    pub fn in_progress(&self) -> bool {
        !matches!(self.phase, Phase::Idle | Phase::Backoff { .. } | Phase::Quarantined)
    }

    /// The slot lost its worker: start a replacement, now or after a backoff,
    /// or give up.
    pub fn begin(&mut self, now: Nanos, restarts: &Restarts, policy: &RestartPolicy) {
        self.phase = match restarts.next(policy, now) {
            Retry::Now => Phase::AwaitQuiet,
            Retry::At(until) => Phase::Backoff { until },
            Retry::Quarantine => Phase::Quarantined,
        };
    }

    /// Stops joining for good (the DSP is not deterministic: replacements
    /// would only diverge again).
    pub fn quarantine(&mut self) {
        self.phase = Phase::Quarantined;
    }

    /// Advances by whatever `f` says is ready; never waits.
    pub fn poll(&mut self, now: Nanos, cfg: &JoinConfig, f: &Facts) -> Action {
        let late = |since: Nanos| now.saturating_sub(since) > cfg.step_timeout;
        match self.phase {
            Phase::Idle | Phase::Quarantined => Action::Wait,
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
            Phase::AwaitReady { since } if f.ready => match f.source {
                Some(from) => {
                    self.phase = Phase::AwaitSnapshot { from, since: now };
                    Action::RequestSnapshot { from }
                }
                None => {
                    let frame = f.fresh_frame;
                    self.phase = Phase::AwaitStart { start: frame, against: None, since };
                    Action::StartFresh { frame }
                }
            },
            Phase::AwaitReady { since } if late(since) => Action::Fail("the worker did not report ready"),
            Phase::AwaitReady { .. } => Action::Wait,
            Phase::AwaitSnapshot { from, .. } if f.source != Some(from) => {
                // The worker we were copying from died too: ask another (or
                // start fresh if none is left).
                self.phase = Phase::AwaitReady { since: now };
                self.poll(now, cfg, &Facts { ready: true, ..*f })
            }
            Phase::AwaitSnapshot { from, .. } if f.snapshot_frame.is_some() => {
                let frame = f.snapshot_frame.unwrap_or_default();
                self.phase = Phase::AwaitStart { start: frame, against: Some(from), since: now };
                Action::StartFromSnapshot { from, frame }
            }
            Phase::AwaitSnapshot { since, .. } if late(since) => Action::Fail("no snapshot came"),
            Phase::AwaitSnapshot { .. } => Action::Wait,
            Phase::AwaitStart { start, against, since } => match f.started {
                Some(true) => {
                    let next = start / cfg.block.max(1);
                    self.phase = Phase::Verify { start, against, next, matched: 0, since: now };
                    Action::Wait
                }
                Some(false) => Action::Fail("the worker refused to start from the snapshot"),
                None if late(since) => Action::Fail("the worker did not start"),
                None => Action::Wait,
            },
            Phase::Verify { start, against, matched, since, .. } => {
                if let Some(block) = f.compared.mismatch {
                    return Action::Diverged { block };
                }
                let matched = matched + f.compared.matched;
                let covers_output = f.output_frame >= start;
                let verified = match against {
                    // Nobody to compare with (a fresh start): its own
                    // progress is all there is.
                    None => f.caught_up,
                    Some(_) if !f.against_live => matched > 0,
                    Some(_) => matched >= cfg.verify_blocks && f.caught_up,
                };
                if against.is_some() && !f.against_live && matched == 0 {
                    return Action::Fail("the worker it copied died before it could be verified");
                }
                if verified && (covers_output || !f.against_live || against.is_none()) {
                    self.phase = Phase::Idle;
                    return Action::Promote;
                }
                if late(since) {
                    return Action::Fail("it did not catch up in lockstep in time");
                }
                self.phase = Phase::Verify { start, against, next: f.compared.next, matched, since };
                Action::Wait
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ms;

    const CFG: JoinConfig = JoinConfig { step_timeout: ms(3_000), verify_blocks: 1, block: 256 };
    const POLICY: RestartPolicy = RestartPolicy { base: ms(1_000), max: ms(8_000), quarantine_after: 6 };

    fn begun() -> Join {
        let mut j = Join::default();
        j.begin(0, &Restarts::default(), &POLICY);
        j
    }

    /// Walks a join from the start to verification, with source slot 1.
    fn to_verify(j: &mut Join) {
        assert_eq!(j.poll(1, &CFG, &Facts::default()), Action::Wait, "the output still reads the slot");
        assert_eq!(j.poll(2, &CFG, &Facts { output_left: true, ..Facts::default() }), Action::Spawn);
        assert_eq!(j.poll(3, &CFG, &Facts::default()), Action::Wait);
        let ready = Facts { ready: true, source: Some(1), ..Facts::default() };
        assert_eq!(j.poll(4, &CFG, &ready), Action::RequestSnapshot { from: 1 });
        assert_eq!(j.poll(5, &CFG, &Facts { source: Some(1), ..Facts::default() }), Action::Wait);
        let done = Facts { source: Some(1), snapshot_frame: Some(4_096), ..Facts::default() };
        assert_eq!(j.poll(6, &CFG, &done), Action::StartFromSnapshot { from: 1, frame: 4_096 });
        assert_eq!(j.poll(7, &CFG, &Facts { started: Some(true), ..Facts::default() }), Action::Wait);
        assert!(matches!(j.phase(), Phase::Verify { start: 4_096, against: Some(1), next: 16, .. }));
    }

    fn verifying(matched: u32, caught_up: bool, output_frame: u64) -> Facts {
        Facts {
            against_live: true,
            compared: Compared { matched, mismatch: None, next: 17 },
            caught_up,
            output_frame,
            ..Facts::default()
        }
    }

    #[test]
    fn a_join_is_promoted_only_when_verified_caught_up_and_covering_the_output() {
        let mut j = begun();
        to_verify(&mut j);
        assert_eq!(j.poll(8, &CFG, &verifying(1, false, 5_000)), Action::Wait, "not caught up");
        assert_eq!(j.poll(9, &CFG, &verifying(0, true, 4_000)), Action::Wait, "the output is before S");
        assert_eq!(j.poll(10, &CFG, &verifying(0, true, 4_096)), Action::Promote);
        assert_eq!(j.phase(), Phase::Idle);
    }

    #[test]
    fn a_mismatch_is_a_divergence() {
        let mut j = begun();
        to_verify(&mut j);
        let f = Facts {
            compared: Compared { mismatch: Some(16), ..Compared::default() },
            ..verifying(0, true, 0)
        };
        assert_eq!(j.poll(8, &CFG, &f), Action::Diverged { block: 16 });
    }

    #[test]
    fn every_step_times_out() {
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
    fn with_no_live_worker_it_starts_fresh_and_needs_no_comparison() {
        let mut j = begun();
        j.poll(0, &CFG, &Facts { output_left: true, ..Facts::default() });
        let ready = Facts { ready: true, source: None, fresh_frame: 8_192, ..Facts::default() };
        assert_eq!(j.poll(1, &CFG, &ready), Action::StartFresh { frame: 8_192 });
        j.poll(2, &CFG, &Facts { started: Some(true), ..Facts::default() });
        assert_eq!(j.poll(3, &CFG, &Facts { caught_up: true, ..Facts::default() }), Action::Promote);
    }

    #[test]
    fn a_source_that_dies_is_replaced_by_another_or_verification_ends() {
        let mut j = begun();
        j.poll(0, &CFG, &Facts { output_left: true, ..Facts::default() });
        j.poll(1, &CFG, &Facts { ready: true, source: Some(1), ..Facts::default() });
        // Slot 1 died while snapshotting; slot 2 is live.
        assert_eq!(
            j.poll(2, &CFG, &Facts { source: Some(2), ..Facts::default() }),
            Action::RequestSnapshot { from: 2 }
        );
        // During verification: with one block matched, it holds the newest
        // state and is promoted; with none, the join fails.
        let mut j = begun();
        to_verify(&mut j);
        let gone = Facts { against_live: false, ..verifying(1, false, 0) };
        assert_eq!(j.poll(8, &CFG, &gone), Action::Promote);
        let mut j = begun();
        to_verify(&mut j);
        let gone = Facts { against_live: false, ..verifying(0, false, 0) };
        assert!(matches!(j.poll(8, &CFG, &gone), Action::Fail(_)));
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
        assert_eq!(j.phase(), Phase::Backoff { until: ms(1_010) });
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
