//! Taking checkpoints: every few blocks of output, the live replicas write
//! a snapshot at the same block boundary; when their hashes agree, one copy
//! goes into a checkpoint slot of the bus (see `policy::checkpoint`).

use std::sync::atomic::Ordering::{Acquire, Release};

use chronus_sys::clock::monotonic_ns;

use super::Supervisor;
use crate::policy::Nanos;
use crate::shared::LIVE;

impl Supervisor {
    /// The replicas a checkpoint is asked of: the active and one standby.
    fn checkpoint_sources(&self) -> [Option<usize>; 2] {
        let active = self.shared.active();
        let live = |i: usize| self.slots[i].is_live() && !self.slots[i].fate.ending();
        [Some(active).filter(|&a| live(a)), self.standby().filter(|&s| live(s))]
    }

    /// Publishes the lowest event number a checkpoint needs (the log keeps
    /// everything from it on).
    pub(crate) fn publish_checkpoint_floor(&self) {
        let floor = self.checkpoints.oldest_log_seq().unwrap_or(u64::MAX);
        self.shared.checkpoint_floor.store(floor, Release);
    }

    /// Asks for a checkpoint now, if none is in flight.
    pub(crate) fn request_checkpoint(&mut self, now: Nanos) {
        if self.checkpoints.pending().is_some() {
            return;
        }
        let sources = self.checkpoint_sources();
        if sources[0].is_none() {
            return;
        }
        let block = u64::from(self.cfg.block);
        let frame = self.shared.limit.load(Acquire).div_ceil(block) * block;
        if self.checkpoints.begin(frame, now).is_none() {
            return;
        }
        self.publish_checkpoint_floor();
        for (req, source) in self.checkpoint_reqs.iter_mut().zip(sources) {
            *req = source.map(|i| (i, self.shared.slots[i].region.request_snapshot(frame)));
        }
        self.checkpoint_sent = monotonic_ns();
    }

    /// One pass: store an answered checkpoint, ask for the next when due.
    pub(crate) fn step_checkpoints(&mut self, now: Nanos) {
        self.checkpoints.expire(&self.checkpoint_cfg, now);
        let write_seq = self.shared.events_stamped.load(Acquire);
        let cap = u64::from(self.shared.bus.geometry().log_slots);
        self.checkpoints.forget_before(write_seq.saturating_sub(cap));
        if self.checkpoints.pending().is_some() {
            self.collect_checkpoint(now);
        }
        if self.checkpoints.due(&self.checkpoint_cfg, self.shared.frame.load(Acquire)) {
            self.request_checkpoint(now);
        }
        self.publish_checkpoint_floor();
    }

    fn collect_checkpoint(&mut self, now: Nanos) {
        let Some(pending) = self.checkpoints.pending() else { return };
        let slots = &self.shared.slots;
        let mut infos = [None; 2];
        for (info, req) in infos.iter_mut().zip(self.checkpoint_reqs) {
            let Some((i, id)) = req else { continue };
            if slots[i].state() != LIVE || self.slots[i].fate.died.is_some() {
                // It died since: the other one's answer will do.
                continue;
            }
            if !slots[i].region.snapshot_done(id) {
                return;
            }
            *info = slots[i].region.snapshot_info().map(|s| (i, s));
        }
        let agree = match infos {
            [Some((_, a)), Some((_, b))] if a.frame != b.frame => {
                // One replica had rendered past the asked frame when it saw
                // the request (the supervisor was held off in between): not
                // comparable, not a disagreement. The next one is asked for
                // as usual.
                tracing::debug!(
                    "checkpoint at frame {}: the replicas answered at frames {} and {}; not kept",
                    pending.frame,
                    a.frame,
                    b.frame
                );
                false
            }
            [Some((_, a)), Some((_, b))] if a.hash != b.hash => {
                tracing::warn!(
                    "checkpoint at frame {}: the replicas' snapshots differ at the same frame; not kept",
                    a.frame
                );
                false
            }
            _ => true,
        };
        let Some((from, _)) = infos[0].or(infos[1]).filter(|_| agree) else {
            self.checkpoints.failed();
            return;
        };
        match self.shared.bus.store_checkpoint(pending.slot, &slots[from].region) {
            Ok(info) => {
                self.checkpoints.stored(info.frame, info.log_seq, now);
                self.checkpoint_stats.0 += 1;
                self.checkpoint_stats.1 += monotonic_ns().saturating_sub(self.checkpoint_sent);
            }
            Err(e) => {
                tracing::warn!("checkpoint at frame {}: {e}", pending.frame);
                self.checkpoints.failed();
            }
        }
    }
}
