//! Refereeing two replicas that disagree (`policy::referee`): opening the
//! dispute, starting a spare from the newest checkpoint at or before the
//! disputed block to render it again, carrying out the ruling; and counting
//! and journaling what an outvoted replica had played.

use std::sync::atomic::Ordering::Relaxed;

use super::Supervisor;
use crate::collector::Note;
use crate::events::DetectedBy;
use crate::play_log::{Played, RUNS, played_from};
use crate::policy::Nanos;
use crate::policy::referee::{Opinion, Ruling, Undecided};
use crate::shared::OutputMark;

/// A replica found wrong that the output may have been playing from (the
/// outvoted active; a standby as a fallback while the active was late):
/// how much of it was heard is known once the output has seen it
/// discredited (`mark`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WrongPlay {
    /// Its slot.
    pub slot: usize,
    /// The first frame where its audio was wrong.
    pub first: u64,
    /// Taken right after it was discredited.
    pub mark: OutputMark,
}

impl Supervisor {
    /// The active `a` and the standby `s` wrote grid block `block`
    /// differently, and no other replica can break the tie: opens a
    /// dispute and starts a referee. Returns whether it did (it does not
    /// when one is open already, when the DSP is known not to be
    /// deterministic, or when a checksum is already gone).
    pub(crate) fn open_dispute(&mut self, a: usize, s: usize, block: u64, now: Nanos) -> bool {
        if self.determinism.verdict().is_some() {
            return false;
        }
        let slots = &self.shared.slots;
        let (Some(x), Some(y)) = (slots[a].region.checksum(block), slots[s].region.checksum(block)) else {
            return false;
        };
        if !self.referee.open(block, (a, s), (x, y), now) {
            return false;
        }
        let frame = self.first_differing_frame(a, s, block);
        tracing::warn!(
            "the active (slot {a}) and the standby (slot {s}) disagree from frame {frame}: a referee renders the \
             block again from the last checkpoint they agreed on"
        );
        self.step_referee(now);
        true
    }

    /// Starts the referee of the open dispute if none is running: a ready
    /// spare, from the newest checkpoint at or before the disputed block,
    /// with the same events. Returns why it cannot, if it cannot.
    fn start_referee(&mut self, now: Nanos) -> Option<Undecided> {
        let d = self.referee.dispute()?;
        if d.referee.is_some() {
            return None;
        }
        let frame = d.block * u64::from(self.cfg.block);
        let Some((k, checkpoint)) = self.checkpoints.at_or_before(frame) else {
            return Some(Undecided::NoCheckpoint);
        };
        let trial = self.trial_slot();
        let ready = |i: usize| {
            let slot = &self.slots[i];
            slot.join().is_spare() && slot.proc.is_some() && !slot.fate.ending() && trial != Some(i)
        };
        let Some(r) = (0..self.slots.len()).find(|&i| ready(i)) else { return Some(Undecided::NoSpare) };
        let phase = self.slots[r].phase();
        let mut facts = self.facts(r, phase, true);
        facts.checkpoint = Some((k, checkpoint.frame));
        facts.nothing_to_restore = false;
        facts.trial = None;
        facts.reference = Some(d.active);
        let action = self.slots[r].poll(now, &self.join_cfg, &facts);
        self.carry_out(r, action, phase, now);
        if !self.slots[r].join().starting() {
            return Some(Undecided::NoSpare);
        }
        self.referee.assign(r);
        tracing::debug!("slot {r}: referee from the checkpoint at frame {}", checkpoint.frame);
        None
    }

    /// Whether slot `i` is the open dispute's referee (its join waits for
    /// the ruling: the joins leave it alone meanwhile).
    pub(crate) fn is_referee(&self, i: usize) -> bool {
        self.referee.dispute().is_some_and(|d| d.referee == Some(i))
    }

    /// What the referee has of the disputed block.
    fn opinion(&self, r: usize, block: u64) -> Opinion {
        let slot = &self.slots[r];
        if slot.proc.is_none() || slot.fate.ending() || !slot.join().starting() {
            return Opinion::Gone;
        }
        let region = &self.shared.slots[r].region;
        let started = slot.io.start_req().and_then(|id| region.start_outcome(id)).map(|r| r.is_ok());
        let written = region.audio_write_frame() / u64::from(self.cfg.block);
        let ring = chronus_ipc::layout::CHECKSUMS as u64;
        Opinion::of(started, written, block, region.checksum(block), ring)
    }

    /// One pass, before the joins: counts what an outvoted replica had
    /// played once the output has seen it discredited, and rules on the
    /// open dispute when the referee can tell.
    pub(crate) fn step_referee(&mut self, now: Nanos) {
        self.settle_wrong_play(false);
        let Some(d) = self.referee.dispute() else { return };
        let party = |i: usize| self.slots[i].is_live() && !self.slots[i].fate.ending();
        if !party(d.active) || !party(d.standby) {
            // A party died (or was replaced) before the ruling: nothing to
            // rule on. The referee joins as an ordinary replacement.
            self.referee.drop_dispute();
            tracing::info!("the dispute over block {} is moot: a party is gone", d.block);
            if let Some(r) = d.referee
                && let Some(to) = [d.active, d.standby].into_iter().find(|&i| party(i))
            {
                self.slots[r].refer_to(to);
            }
            return;
        }
        let missing = self.start_referee(now);
        let Some(d) = self.referee.dispute() else { return };
        let opinion = d.referee.map_or(Opinion::NotYet, |r| self.opinion(r, d.block));
        let ruling = self.referee.judge(now, opinion, missing);
        if ruling == Ruling::Wait {
            return;
        }
        let frame = self.first_differing_frame(d.active, d.standby, d.block);
        match ruling {
            Ruling::Wait => {}
            Ruling::ActiveWrong => {
                self.shared.disputes_ruled.fetch_add(1, Relaxed);
                if let Some(r) = d.referee {
                    self.slots[r].refer_to(d.standby);
                }
                self.outvote_active(d.active, d.standby, d.block, now);
            }
            Ruling::StandbyWrong => {
                self.shared.disputes_ruled.fetch_add(1, Relaxed);
                tracing::error!(
                    "the standby (slot {}) diverged at frame {}: the referee agrees with the active; replacing it",
                    d.standby,
                    frame
                );
                self.replace_standby(d.active, d.standby, d.block, frame, now);
            }
            Ruling::NoMajority => {
                self.shared.disputes_undecided.fetch_add(1, Relaxed);
                let f = frame;
                tracing::error!(
                    "the active, the standby and the referee rendered the block at frame {f} three ways: the DSP may \
                     not be deterministic; keeping the active"
                );
                if let Some(r) = d.referee {
                    self.kill(r, DetectedBy::Divergence);
                }
                if let Some(verdict) = self.determinism.diverged(f, true, now) {
                    self.report_nondeterminism(verdict);
                }
                self.replace_standby(d.active, d.standby, d.block, frame, now);
            }
            Ruling::Undecided(why) => {
                self.shared.disputes_undecided.fetch_add(1, Relaxed);
                let why = match why {
                    Undecided::NoCheckpoint => "no checkpoint from before the block",
                    Undecided::NoSpare => "no spare was ready in time",
                    Undecided::RefereeLost => "the referee was lost",
                    Undecided::Timeout => "the referee did not render the block in time",
                };
                tracing::error!(
                    "the dispute at frame {} could not be refereed ({why}): keeping the active, replacing the standby \
                     (slot {})",
                    frame,
                    d.standby
                );
                self.replace_standby(d.active, d.standby, d.block, frame, now);
            }
        }
    }

    /// The active `a` and the standby `s` disagree on block `block` from
    /// frame `frame` on, and the active is kept: the standby is replaced
    /// (and the divergence counts as evidence about the DSP's determinism,
    /// unless it was injected).
    pub(crate) fn replace_standby(&mut self, a: usize, s: usize, block: u64, frame: u64, now: Nanos) {
        // Its frames from `frame` on are wrong: never played again (not
        // even as a dead replica's, while the active is late), and those
        // already played as a fallback are counted.
        self.discredit(s, frame);
        let common_start = self.slots[s].started_at == self.slots[a].started_at;
        let fresh = common_start
            && block * u64::from(self.cfg.block) < self.slots[s].started_at + self.fresh_frames();
        if !self.diverged_on_request(s)
            && let Some(verdict) = self.determinism.diverged(frame, fresh, now)
        {
            self.report_nondeterminism(verdict);
        }
        self.kill(s, DetectedBy::Divergence);
    }

    /// Slot `i`'s audio is wrong from `frame` on: the output stops reading
    /// it now, and what it had played of it is counted once it has seen
    /// that. One such replica at a time is accounted exactly; an earlier
    /// one still unsettled (discredited a pass ago at least, so the output
    /// has all but surely left it) is settled as it stands now.
    pub(crate) fn discredit(&mut self, i: usize, frame: u64) {
        self.slots[i].discredit();
        self.settle_wrong_play(true);
        self.wrong_play = Some(WrongPlay { slot: i, first: frame, mark: self.shared.output_mark() });
    }

    /// Once the output has seen a replica found wrong discredited (or now,
    /// with `force`: another one is to be accounted for), the frames it
    /// played from it from the first wrong one on (the output's play log)
    /// are counted and journaled (`@wrong`).
    pub(crate) fn settle_wrong_play(&mut self, force: bool) {
        let Some(w) = self.wrong_play else { return };
        if !force && !self.shared.output_saw(w.mark) {
            return;
        }
        self.wrong_play = None;
        let mut runs = [Played::default(); RUNS];
        let (n, truncated) = self.shared.plays.runs(&mut runs);
        let (mut played, mut spans) = (0, 0);
        let (shared, notes) = (&self.shared, &mut self.notes);
        played_from(&runs[..n], truncated, w.slot, w.first, |span| {
            played += span.frames;
            spans += 1;
            if notes.push(Note::Wrong(span)).is_err() {
                shared.io_overruns.fetch_add(1, Relaxed);
            }
        });
        if played == 0 {
            tracing::info!("none of slot {}'s wrong audio (from frame {}) was played", w.slot, w.first);
            return;
        }
        self.shared.wrong_frames_played.fetch_add(played, Relaxed);
        tracing::error!(
            "{played} frames of slot {}'s wrong audio were played (from frame {}, in {spans} span(s)) before the \
             vote",
            w.slot,
            w.first
        );
    }
}
