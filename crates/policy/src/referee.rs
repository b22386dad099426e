//! Refereeing two replicas that disagree.
//!
//! With two live replicas, a block whose checksums differ says that one of
//! them is wrong, not which: assuming the active is right would keep
//! playing a silently wrong active (a bit flip) and replace the healthy
//! standby. So a **dispute** is opened instead, and a third opinion
//! rendered: a spare restores the newest checkpoint taken at or before the
//! disputed block (a kept checkpoint is one the replicas agreed on, see
//! [`super::checkpoint`]), renders forward from it with the same events,
//! and its checksum of the disputed block decides, two against one:
//!
//! - it agrees with the standby: the active is wrong ([`Ruling::ActiveWrong`]),
//!   the output switches to the standby and the active is replaced;
//! - it agrees with the active: the standby is wrong ([`Ruling::StandbyWrong`]);
//! - it agrees with neither ([`Ruling::NoMajority`]): three renders of the
//!   same events differ, the DSP itself is in question;
//! - it cannot tell in time ([`Ruling::Undecided`]): no spare or no
//!   checkpoint old enough, the referee died, its checksum of the block was
//!   overwritten, or [`REFEREE_TIMEOUT`] passed.
//!
//! Both replicas keep rendering meanwhile, and the active keeps playing:
//! with the output's lead, the ruling usually comes before the disputed
//! block is heard. One dispute at a time; the referee, once the ruling is
//! in, joins as the replacement of the replica it ruled against.

use super::Nanos;
use super::ms;

/// Longest a dispute stays open before it is ruled [`Ruling::Undecided`].
pub const REFEREE_TIMEOUT: Nanos = ms(1_000);

/// An open dispute: the active and the standby wrote grid block `block`
/// with different checksums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispute {
    /// The disputed block (grid number: `frame / block`).
    pub block: u64,
    /// The active's slot.
    pub active: usize,
    /// The standby's slot.
    pub standby: usize,
    /// The active's checksum of the block.
    pub active_sum: u64,
    /// The standby's checksum of the block.
    pub standby_sum: u64,
    /// The slot whose spare renders the third opinion, once one started.
    pub referee: Option<usize>,
    /// When it was opened.
    pub since: Nanos,
}

/// What the referee has of the disputed block this pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opinion {
    /// It has not rendered the block yet.
    NotYet,
    /// Its checksum of the block.
    Sum(u64),
    /// It can no longer say: it rendered past the block and its checksum
    /// ring no longer holds it, or it died.
    Gone,
}

impl Opinion {
    /// What a referee that is still running has of grid block `block`:
    /// `started`, its start's outcome (`None`: not served yet; before it,
    /// its ring holds a previous run's blocks); `written`, the blocks it has
    /// written audio for; `sum`, its checksum ring's entry for the block;
    /// `ring`, how many checksums the ring keeps. A worker publishes a
    /// block's checksum just *after* its audio: a block written whose
    /// checksum is not there yet is not an answer yet; only a ring lapped
    /// past the block is.
    pub fn of(started: Option<bool>, written: u64, block: u64, sum: Option<u64>, ring: u64) -> Self {
        match started {
            None => Opinion::NotYet,
            Some(false) => Opinion::Gone,
            Some(true) if written <= block => Opinion::NotYet,
            Some(true) => match sum {
                Some(x) => Opinion::Sum(x),
                None if written > block + ring => Opinion::Gone,
                None => Opinion::NotYet,
            },
        }
    }
}

/// Why a dispute could not be ruled on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undecided {
    /// No checkpoint from at or before the disputed block.
    NoCheckpoint,
    /// No spare became ready in time.
    NoSpare,
    /// The referee died, or no longer holds the block's checksum.
    RefereeLost,
    /// The referee did not render the block in time.
    Timeout,
}

/// A dispute's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ruling {
    /// Not yet.
    Wait,
    /// The referee agrees with the standby: replace the active.
    ActiveWrong,
    /// The referee agrees with the active: replace the standby.
    StandbyWrong,
    /// The referee agrees with neither.
    NoMajority,
    /// No ruling (why); the caller falls back on a rule of its own.
    Undecided(Undecided),
}

/// The referee's state: at most one open dispute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Referee {
    dispute: Option<Dispute>,
}

impl Referee {
    /// The open dispute, if any.
    pub fn dispute(&self) -> Option<Dispute> {
        self.dispute
    }

    /// Whether `slot` is a party to the open dispute or its referee.
    pub fn involves(&self, slot: usize) -> bool {
        self.dispute.is_some_and(|d| d.active == slot || d.standby == slot || d.referee == Some(slot))
    }

    /// Opens a dispute over `block`, unless one is open already (returns
    /// whether it opened). The checksums are kept here: the replicas' rings
    /// move on while the referee renders.
    pub fn open(&mut self, block: u64, parties: (usize, usize), sums: (u64, u64), now: Nanos) -> bool {
        if self.dispute.is_some() {
            return false;
        }
        let (active, standby) = parties;
        let (active_sum, standby_sum) = sums;
        self.dispute =
            Some(Dispute { block, active, standby, active_sum, standby_sum, referee: None, since: now });
        true
    }

    /// The spare in `slot` was told to render the third opinion.
    pub fn assign(&mut self, slot: usize) {
        if let Some(d) = &mut self.dispute {
            d.referee = Some(slot);
        }
    }

    /// Closes the open dispute without a ruling (a party died: the dispute
    /// is moot).
    pub fn drop_dispute(&mut self) -> Option<Dispute> {
        self.dispute.take()
    }

    /// Rules on the open dispute from what the referee has, or from the
    /// reason it has nothing (`missing`: no spare or checkpoint to start
    /// one from, when none is assigned). A ruling other than
    /// [`Ruling::Wait`] closes the dispute.
    pub fn judge(&mut self, now: Nanos, opinion: Opinion, missing: Option<Undecided>) -> Ruling {
        let Some(d) = self.dispute else { return Ruling::Wait };
        let ruling = match (d.referee, opinion) {
            (None, _) => match missing {
                Some(Undecided::NoCheckpoint) => Ruling::Undecided(Undecided::NoCheckpoint),
                _ if now.saturating_sub(d.since) > REFEREE_TIMEOUT => Ruling::Undecided(Undecided::NoSpare),
                _ => Ruling::Wait,
            },
            (Some(_), Opinion::Sum(x)) if x == d.standby_sum => Ruling::ActiveWrong,
            (Some(_), Opinion::Sum(x)) if x == d.active_sum => Ruling::StandbyWrong,
            (Some(_), Opinion::Sum(_)) => Ruling::NoMajority,
            (Some(_), Opinion::Gone) => Ruling::Undecided(Undecided::RefereeLost),
            (Some(_), Opinion::NotYet) if now.saturating_sub(d.since) > REFEREE_TIMEOUT => {
                Ruling::Undecided(Undecided::Timeout)
            }
            (Some(_), Opinion::NotYet) => Ruling::Wait,
        };
        if ruling != Ruling::Wait {
            self.dispute = None;
        }
        ruling
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened() -> Referee {
        let mut r = Referee::default();
        assert!(r.open(40, (0, 1), (0xA, 0xB), ms(10)));
        r
    }

    #[test]
    fn the_referee_agreeing_with_the_standby_rules_against_the_active() {
        let mut r = opened();
        r.assign(2);
        assert_eq!(r.judge(ms(11), Opinion::NotYet, None), Ruling::Wait);
        assert!(r.involves(2) && r.involves(0) && r.involves(1));
        assert_eq!(r.judge(ms(12), Opinion::Sum(0xB), None), Ruling::ActiveWrong);
        assert_eq!(r.dispute(), None, "a ruling closes the dispute");
    }

    #[test]
    fn the_referee_agreeing_with_the_active_rules_against_the_standby() {
        let mut r = opened();
        r.assign(2);
        assert_eq!(r.judge(ms(12), Opinion::Sum(0xA), None), Ruling::StandbyWrong);
    }

    #[test]
    fn a_third_checksum_is_no_majority() {
        let mut r = opened();
        r.assign(2);
        assert_eq!(r.judge(ms(12), Opinion::Sum(0xC), None), Ruling::NoMajority);
    }

    #[test]
    fn one_dispute_at_a_time() {
        let mut r = opened();
        assert!(!r.open(41, (1, 0), (1, 2), ms(11)));
        assert_eq!(r.dispute().map(|d| d.block), Some(40));
    }

    #[test]
    fn without_a_checkpoint_old_enough_it_is_undecided_at_once() {
        let mut r = opened();
        assert_eq!(
            r.judge(ms(10), Opinion::NotYet, Some(Undecided::NoCheckpoint)),
            Ruling::Undecided(Undecided::NoCheckpoint)
        );
    }

    #[test]
    fn it_waits_for_a_spare_until_the_timeout() {
        let mut r = opened();
        let t = ms(10) + REFEREE_TIMEOUT;
        assert_eq!(r.judge(t, Opinion::NotYet, Some(Undecided::NoSpare)), Ruling::Wait);
        assert_eq!(
            r.judge(t + 1, Opinion::NotYet, Some(Undecided::NoSpare)),
            Ruling::Undecided(Undecided::NoSpare)
        );
    }

    #[test]
    fn a_referee_that_is_late_or_lost_decides_nothing() {
        let mut r = opened();
        r.assign(2);
        let t = ms(10) + REFEREE_TIMEOUT;
        assert_eq!(r.judge(t, Opinion::NotYet, None), Ruling::Wait);
        assert_eq!(r.judge(t + 1, Opinion::NotYet, None), Ruling::Undecided(Undecided::Timeout));
        let mut r = opened();
        r.assign(2);
        assert_eq!(r.judge(ms(11), Opinion::Gone, None), Ruling::Undecided(Undecided::RefereeLost));
    }

    #[test]
    fn a_block_written_is_an_answer_only_once_its_checksum_is() {
        // Not started yet: its ring is a previous run's, whatever it holds.
        assert_eq!(Opinion::of(None, 50, 40, Some(7), 64), Opinion::NotYet);
        assert_eq!(Opinion::of(Some(false), 0, 40, None, 64), Opinion::Gone);
        assert_eq!(Opinion::of(Some(true), 40, 40, None, 64), Opinion::NotYet);
        // The audio of block 40 is written, its checksum a moment later:
        // not yet (a soak lost a referee to this, ruled "gone").
        assert_eq!(Opinion::of(Some(true), 41, 40, None, 64), Opinion::NotYet);
        assert_eq!(Opinion::of(Some(true), 41, 40, Some(7), 64), Opinion::Sum(7));
        // Lapped once block 104 is written: the entry then holds its checksum.
        assert_eq!(Opinion::of(Some(true), 104, 40, None, 64), Opinion::NotYet);
        assert_eq!(Opinion::of(Some(true), 105, 40, None, 64), Opinion::Gone);
    }

    #[test]
    fn a_moot_dispute_is_dropped() {
        let mut r = opened();
        assert!(r.drop_dispute().is_some());
        assert_eq!(r.judge(ms(11), Opinion::Sum(0xB), None), Ruling::Wait);
    }
}
