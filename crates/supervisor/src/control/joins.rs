//! Carrying out every slot's life (`policy::join`): gathering what the
//! policy needs to know about a slot, and doing what it decides (retire a
//! dead slot, spawn a spare, start it from a checkpoint, promote it, kill).

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use chronus_ipc::{StartKind, WorkerState};
use chronus_sys::clock::monotonic_ns;

use super::Supervisor;
use super::slot::JoinIo;
use crate::collector::Note;
use crate::events::DetectedBy;
use crate::policy::Nanos;
use crate::policy::join::{Action, Compared, Facts, Phase};
use crate::shared::{DEAD, EMPTY, LIVE};

impl Supervisor {
    /// Live replicas, not counting one whose death word the kernel marked
    /// between blocks (exiting, and not by its input: its replacement may
    /// start before its pidfd tells).
    fn live_count(&self) -> usize {
        self.slots.iter().filter(|s| s.is_live() && !s.fate.died_between_blocks).count()
    }

    /// A replica to verify slot `i` against: the active if live, else any
    /// live one, else a dead one whose ring and checksums are still there.
    fn reference_for(&self, i: usize) -> Option<usize> {
        let slots = &self.shared.slots;
        let active = self.shared.active();
        let ok = |s: usize, state: u8| s != i && slots[s].state() == state;
        std::iter::once(active)
            .chain(0..slots.len())
            .find(|&s| ok(s, LIVE) && !self.slots[s].fate.ending())
            .or_else(|| (0..slots.len()).find(|&s| ok(s, DEAD)))
    }

    /// Compares slot `i`'s checksums with `against`'s from block `next` on.
    fn compare(&self, i: usize, against: usize, next: u64) -> Compared {
        let (a, b) = (&self.shared.slots[against].region, &self.shared.slots[i].region);
        // The reference keeps its last CHECKSUMS blocks' checksums: a
        // replacement that started further back (an old checkpoint: the
        // output ran far ahead) is compared from the oldest it still has.
        let newest = a.audio_write_frame() / u64::from(self.cfg.block);
        let oldest = newest.saturating_sub(chronus_ipc::layout::CHECKSUMS as u64 - 1);
        let mut c = Compared { next: next.max(oldest), ..Compared::default() };
        loop {
            match (a.checksum(c.next), b.checksum(c.next)) {
                (Some(x), Some(y)) if x == y => {
                    c.matched += 1;
                    c.next += 1;
                }
                (Some(_), Some(_)) => {
                    c.mismatch = Some(c.next);
                    return c;
                }
                _ => return c,
            }
        }
    }

    /// A dead slot whose frames nobody needs any more (a live replica has
    /// them, or the output has played them) is retired: no longer read by
    /// the output, its region then free to reset.
    fn retire_if_done(&mut self, i: usize) {
        if !self.slots[i].is_dead() || self.slots[i].io.quiet_mark.is_some() {
            return;
        }
        let played = self.shared.frame.load(Acquire) >= self.slots[i].shared().region.audio_write_frame();
        if played || self.live_count() > 0 {
            self.slots[i].retire();
        }
    }

    pub(crate) fn facts(&self, i: usize, phase: Phase, wanted: bool) -> Facts {
        let s = &self.shared;
        let io = &self.slots[i].io;
        let region = &s.slots[i].region;
        let block = u64::from(self.cfg.block);
        let output_frame = s.frame.load(Acquire);
        let checkpoint = self.checkpoints.best(output_frame).map(|(k, c)| (k, c.frame));
        let mut f = Facts {
            output_left: s.slots[i].state() == EMPTY && io.quiet_mark.is_some_and(|m| s.output_saw(m)),
            ready: self.slots[i].proc.is_some() && region.worker_state() == Some(WorkerState::Ready),
            wanted,
            checkpoint,
            nothing_to_restore: checkpoint.is_none() && self.live_count() == 0,
            reference: self.reference_for(i),
            fresh_frame: s.limit.load(Acquire).div_ceil(block) * block,
            // A start counts only in the sandbox asked for (the worker
            // announces it before it serves any start).
            started: io
                .start_req()
                .and_then(|id| region.start_outcome(id))
                .map(|r| r.is_ok() && region.sandbox() == self.cfg.sandbox),
            output_frame,
            ..Facts::default()
        };
        if let Phase::Verify { against, next, .. } = phase {
            let live_writes = (0..s.slots.len()).filter(|&k| k != i && self.slots[k].is_live());
            let newest = live_writes.map(|k| s.slots[k].region.audio_write_frame()).max().unwrap_or(0);
            f.caught_up = region.audio_write_frame() + block >= newest;
            if let Some(a) = against {
                f.reference_live = self.slots[a].is_live();
                f.compared = self.compare(i, a, next);
            }
        }
        f
    }

    /// One pass over every slot: retire dead ones, advance refills, start
    /// spares where replicas are missing, verify and promote. Never waits.
    pub(crate) fn step_joins(&mut self, now: Nanos) {
        let replicas = self.cfg.replicas as usize;
        for i in 0..self.slots.len() {
            self.retire_if_done(i);
        }
        // Replicas missing: spares (in slot order) are wanted, one per
        // missing replica not already on its way.
        // Not while a suspect block is being told apart (a replacement
        // would die in it too), but for a poison trial.
        let hold = self.common.hold(now, &self.sight());
        let on_the_way = self.slots.iter().filter(|s| s.join().starting() && !s.join().is_trial()).count();
        let mut missing = replicas.saturating_sub(self.live_count() + on_the_way);
        for i in 0..self.slots.len() {
            let phase = self.slots[i].phase();
            if matches!(phase, Phase::Idle | Phase::Live | Phase::Quarantined)
                || self.slots[i].fate.ending()
                || self.is_referee(i)
            {
                // Nothing to do, or its worker is being killed: its exit decides.
                continue;
            }
            let could_start = matches!(phase, Phase::Spare | Phase::AwaitReady { .. });
            let trial = self.common.trial_wanted().filter(|_| could_start && self.trial.is_none());
            let awaiting = matches!(phase, Phase::AwaitCheckpoint { .. });
            let wanted = trial.is_some() || (!hold && ((could_start && missing > 0) || awaiting));
            let mut facts = self.facts(i, phase, wanted);
            facts.trial = trial;
            facts.nothing_to_restore |= self.reset_next && trial.is_none();
            if facts.ready && matches!(phase, Phase::AwaitReady { .. }) {
                let t = monotonic_ns();
                for e in self.slots[i].pending_respawn.drain(..) {
                    if let Some(ev) = self.history.get_mut(e) {
                        ev.t_respawn.get_or_insert(t);
                    }
                }
            }
            let action = self.slots[i].poll(now, &self.join_cfg, &facts);
            if self.slots[i].join().is_trial() && self.trial.is_none() {
                self.trial = Some(super::TrialRun { slot: i, hung: false });
                self.common.trial_started();
                tracing::warn!(
                    "slot {i}: poison trial from the checkpoint without events {}..{}",
                    facts.trial.map_or(0, |t| t.0),
                    facts.trial.map_or(0, |t| t.1)
                );
            } else if self.slots[i].join().starting() && !awaiting && could_start {
                missing = missing.saturating_sub(1);
            }
            self.carry_out(i, action, phase, now);
            if matches!(self.slots[i].phase(), Phase::Verify { .. }) && !self.watchdog.is_watched(i) {
                self.watchdog.watch(i, now, false);
            }
        }
    }

    pub(crate) fn carry_out(&mut self, i: usize, action: Action, phase: Phase, now: Nanos) {
        let s = self.shared.clone();
        let region = &s.slots[i].region;
        match action {
            Action::Wait => {}
            Action::Spawn => {
                self.slots[i].io = JoinIo::default();
                if let Err(e) = self.spawn(i) {
                    tracing::warn!("slot {i}: {e}");
                    self.slots[i].restarts.failed();
                    self.restart_join(i, now);
                }
            }
            Action::RequestCheckpoint => self.request_checkpoint(now),
            Action::StartFromCheckpoint { checkpoint, frame, skip } => {
                self.checkpoints.reading(checkpoint);
                self.slots[i].io.reading = Some(checkpoint);
                let id = region.request_trial_start(
                    StartKind::Checkpoint,
                    frame,
                    0,
                    checkpoint as u32,
                    skip.0..skip.1,
                );
                self.slots[i].start_requested(id);
                self.slots[i].started_at = frame;
            }
            Action::StartFresh { frame } => {
                self.reset_next = false;
                let write_seq = s.events_stamped.load(Acquire);
                let oldest = write_seq.saturating_sub(u64::from(s.bus.geometry().log_slots));
                let id = region.request_start(StartKind::Fresh, frame, oldest, 0);
                self.slots[i].start_requested(id);
                self.slots[i].started_at = frame;
                if self.notes.push(Note::Reset(frame)).is_err() {
                    s.io_overruns.fetch_add(1, Relaxed);
                }
                tracing::error!(
                    "slot {i}: no live worker and no checkpoint to restore; restarting from silence at frame {frame}"
                );
            }
            Action::Promote => self.promote(i, phase, now),
            Action::Fail(why) => {
                tracing::warn!("slot {i}: join failed: {why}");
                self.fail_join(i, DetectedBy::JoinFailed, now);
            }
            Action::Diverged { block } => {
                let against = match phase {
                    Phase::Verify { against: Some(a), .. } => a,
                    _ => s.active(),
                };
                let frame = self.first_differing_frame(against, i, block);
                tracing::error!(
                    "slot {i}: the replacement's audio differs from the replica it was checked against at frame {frame}"
                );
                if let Some(verdict) = self.determinism.diverged(frame, true, now) {
                    self.report_nondeterminism(verdict);
                }
                self.fail_join(i, DetectedBy::Divergence, now);
            }
        }
        // Once started (or refused), the checkpoint it read is free again.
        if let (Some(k), Some(_)) =
            (self.slots[i].io.reading, self.slots[i].io.start_req().and_then(|id| region.start_outcome(id)))
        {
            self.slots[i].io.reading = None;
            self.checkpoints.done_reading(k);
        }
    }

    /// Slot `i` is a verified live replica.
    fn promote(&mut self, i: usize, phase: Phase, now: Nanos) {
        let s = self.shared.clone();
        self.watchdog.watch(i, now, true);
        self.slots[i].restarts.succeeded();
        self.determinism.verified();
        if let Phase::Verify { next, .. } = phase {
            self.slots[i].compared_through = next;
        }
        if !self.slots[s.active()].is_live() {
            s.active.store(i as u8, Release);
        }
        let t = monotonic_ns();
        let redundant = self.live_count() >= (self.cfg.replicas as usize).min(2);
        for &e in &self.pending_redundant {
            if let Some(ev) = self.history.get_mut(e) {
                ev.t_rejoin.get_or_insert(t);
                if redundant {
                    ev.t_redundant = Some(t);
                    tracing::info!(
                        "slot {i}: redundant again {:.0} µs after the fault (a verified replica covering every frame \
                         still to play)",
                        ev.redundant_us().unwrap_or_default()
                    );
                }
            }
        }
        if redundant {
            self.pending_redundant.clear();
        }
        self.last_promotion = Some((t, redundant));
    }

    /// Kills a worker whose join failed; its exit counts the failure and
    /// starts the refill again. With no process left to kill, that happens
    /// here.
    fn fail_join(&mut self, i: usize, why: DetectedBy, now: Nanos) {
        if self.slots[i].proc.is_some() {
            self.kill(i, why);
        } else {
            self.slots[i].restarts.failed();
            self.restart_join(i, now);
        }
    }
}
