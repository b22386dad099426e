//! Carrying out joins: gathering what the join policy needs to know about a
//! slot, and doing what it decides (spawn, snapshot, start, promote, kill).

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use chronus_ipc::{StartKind, WorkerState, monotonic_ns};

use super::Supervisor;
use crate::collector::Note;
use crate::events::DetectedBy;
use crate::policy::Nanos;
use crate::policy::join::{Action, Compared, Facts, Phase};
use crate::shared::{JOINING, LIVE, OutputMark};

/// The I/O side of one slot's join: ids of the requests in flight.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct JoinIo {
    /// Set when the slot's worker died: the output must have seen it.
    pub quiet_mark: Option<OutputMark>,
    /// The snapshot request sent to the source.
    pub snapshot_req: Option<u32>,
    /// The start request sent to the replacement.
    pub start_req: Option<u32>,
}

impl Supervisor {
    /// A live worker to copy from for slot `i`: the active if it is live,
    /// else any other live one.
    fn source_for(&self, i: usize) -> Option<usize> {
        let slots = &self.shared.slots;
        let active = self.shared.active();
        std::iter::once(active)
            .chain(0..slots.len())
            .find(|&s| s != i && slots[s].state() == LIVE && self.fates[s].killing.is_none())
    }

    /// Compares slot `i`'s checksums with `against`'s from block `next` on.
    fn compare(&self, i: usize, against: usize, next: u64) -> Compared {
        let (a, b) = (&self.shared.slots[against].region, &self.shared.slots[i].region);
        let mut c = Compared { next, ..Compared::default() };
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

    fn facts(&self, i: usize, phase: Phase) -> Facts {
        let s = &self.shared;
        let io = &self.join_io[i];
        let region = &s.slots[i].region;
        let block = u64::from(self.cfg.block);
        let mut f = Facts {
            output_left: io.quiet_mark.is_none_or(|m| s.output_saw(m)),
            ready: self.procs[i].is_some() && region.worker_state() == Some(WorkerState::Ready),
            source: self.source_for(i),
            fresh_frame: s.limit.load(Acquire).div_ceil(block) * block,
            started: io.start_req.and_then(|id| region.start_outcome(id)).map(|r| r.is_ok()),
            output_frame: s.frame.load(Acquire),
            ..Facts::default()
        };
        match phase {
            Phase::AwaitSnapshot { from, .. } => {
                let source = &s.slots[from].region;
                if io.snapshot_req.is_some_and(|id| source.snapshot_done(id)) {
                    f.snapshot_frame = source.snapshot_info().map(|info| info.frame);
                }
            }
            Phase::Verify { against, next, .. } => {
                let live_writes = (0..s.slots.len()).filter(|&k| k != i && s.slots[k].state() == LIVE);
                let newest = live_writes.map(|k| s.slots[k].region.audio_write_frame()).max().unwrap_or(0);
                f.caught_up = region.audio_write_frame() + block >= newest;
                if let Some(a) = against {
                    f.against_live = s.slots[a].state() == LIVE;
                    f.compared = self.compare(i, a, next);
                }
            }
            _ => {}
        }
        f
    }

    /// Advances slot `i`'s join by whatever is ready now; never waits.
    pub(crate) fn step_join(&mut self, i: usize, now: Nanos) {
        let phase = self.joins[i].phase();
        if matches!(phase, Phase::Idle | Phase::Quarantined) || self.fates[i].killing.is_some() {
            // Nothing to do, or its worker is being killed: its exit decides.
            return;
        }
        let facts = self.facts(i, phase);
        if facts.ready && matches!(phase, Phase::AwaitReady { .. }) {
            for &e in &self.pending[i] {
                if let Some(ev) = self.history.get_mut(e) {
                    ev.t_respawn.get_or_insert(now);
                }
            }
        }
        let action = self.joins[i].poll(now, &self.join_cfg, &facts);
        self.carry_out(i, action, phase, now);
        if matches!(self.joins[i].phase(), Phase::Verify { .. }) && !self.watchdog.is_watched(i) {
            self.watchdog.watch(i, now, false);
        }
    }

    fn carry_out(&mut self, i: usize, action: Action, phase: Phase, now: Nanos) {
        let s = self.shared.clone();
        let region = &s.slots[i].region;
        match action {
            Action::Wait => {}
            Action::Spawn => {
                self.join_io[i] = super::JoinIo::default();
                if let Err(e) = self.spawn(i) {
                    tracing::warn!("slot {i}: {e}");
                    self.restarts[i].failed();
                    self.restart_join(i, now);
                }
            }
            Action::RequestSnapshot { from } => {
                let limit = s.limit.load(Acquire);
                self.join_io[i].snapshot_req = Some(s.slots[from].region.request_snapshot(limit));
            }
            Action::StartFromSnapshot { from, frame } => {
                let k = self.next_checkpoint;
                self.next_checkpoint = (k + 1) % s.bus.geometry().checkpoints as usize;
                match s.bus.store_checkpoint(k, &s.slots[from].region) {
                    Ok(info) if info.frame == frame => {
                        self.join_io[i].start_req =
                            Some(region.request_start(StartKind::Checkpoint, frame, 0, k as u32));
                        self.started_at[i] = frame;
                        s.slots[i].set_state(JOINING);
                    }
                    Ok(_) | Err(_) => {
                        tracing::warn!("slot {i}: the snapshot to start from was torn or changed");
                        self.fail_join(i, DetectedBy::JoinFailed, now);
                    }
                }
            }
            Action::StartFresh { frame } => {
                let write_seq = s.events_stamped.load(Acquire);
                let oldest = write_seq.saturating_sub(u64::from(s.bus.geometry().log_slots));
                self.join_io[i].start_req = Some(region.request_start(StartKind::Fresh, frame, oldest, 0));
                self.started_at[i] = frame;
                s.slots[i].set_state(JOINING);
                if self.notes.push(Note::Reset(frame)).is_err() {
                    s.io_overruns.fetch_add(1, Relaxed);
                }
                tracing::error!(
                    "slot {i}: no live worker to copy from; restarting from silence at frame {frame}"
                );
            }
            Action::Promote => {
                s.slots[i].set_state(LIVE);
                self.watchdog.watch(i, now, true);
                self.restarts[i].succeeded();
                self.determinism.verified();
                if let Phase::Verify { next, .. } = phase {
                    self.compared_through[i] = next;
                }
                let t = monotonic_ns();
                for e in self.pending[i].drain(..) {
                    if let Some(ev) = self.history.get_mut(e) {
                        ev.t_respawn.get_or_insert(t);
                        ev.t_rejoin = Some(t);
                        tracing::info!(
                            "slot {i}: replacement verified in lockstep {:.0} µs after the fault",
                            ev.rejoin_us().unwrap_or_default()
                        );
                    }
                }
                if s.slots[s.active()].state() != LIVE {
                    s.active.store(i as u8, Release);
                }
            }
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
                    "slot {i}: the replacement's audio differs from the worker it copied at frame {frame}"
                );
                if let Some(verdict) = self.determinism.diverged(frame, true, now) {
                    self.report_nondeterminism(verdict);
                }
                self.fail_join(i, DetectedBy::Divergence, now);
            }
        }
    }

    /// Kills a replacement whose join failed; its exit counts the failure
    /// and starts the join again. With no process left to kill, that
    /// happens here.
    fn fail_join(&mut self, i: usize, why: DetectedBy, now: Nanos) {
        if self.procs[i].is_some() {
            self.kill(i, why);
        } else {
            self.restarts[i].failed();
            self.restart_join(i, now);
        }
    }
}
