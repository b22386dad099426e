//! Detecting faults and failing over: a worker's exit, the watchdog's
//! verdicts, replicas that disagree.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use chronus_ipc::{AudioReader, Recorder};
use chronus_sys::clock::monotonic_ns;

use super::Supervisor;
use super::slot::JoinIo;
use crate::events::{DetectedBy, ExitStatus, FailoverEvent, Role};
use crate::policy::determinism::NotDeterministic;
use crate::policy::watchdog::{Progress, Verdict};
use crate::policy::{MAX_SLOTS, Nanos};

/// How the live replicas voted on a disputed block.
#[derive(Clone, Copy, Debug, Default)]
struct Votes {
    /// Replicas that wrote the active's checksum, the active included.
    for_active: usize,
    /// The largest group of standbys that agree on another checksum.
    against: usize,
    /// One of them.
    winner: Option<usize>,
    /// Standbys that have not written the block yet.
    pending: usize,
}

/// Blocks after a common start within which a divergence counts as
/// "fresh" (the two workers started from the same state just before).
const FRESH_BLOCKS: u64 = 64;

impl Supervisor {
    /// Slot `i`'s worker exited: record it, switch the active if needed,
    /// start a replacement.
    pub(crate) fn on_exit(&mut self, i: usize) {
        let now = monotonic_ns();
        let Some(mut proc) = self.slots[i].proc.take() else { return };
        let mut exit = proc.child.wait().map(ExitStatus::of).unwrap_or_default();
        let slot = &self.shared.slots[i];
        if exit.by_sandbox() {
            exit.forbidden_call = slot.region.forbidden_call(Recorder::Worker);
            self.forbidden.kills += 1;
            if let Some(call) = exit.forbidden_call {
                self.forbidden.last = Some(call);
                let frame = slot.region.heartbeat().rendering.load(Acquire).checked_sub(1);
                let at = frame.unwrap_or_else(|| self.shared.frame.load(Relaxed));
                if self.notes.push(crate::collector::Note::Forbidden(at, call)).is_err() {
                    self.shared.io_overruns.fetch_add(1, Relaxed);
                }
            }
        }
        let fate = std::mem::take(&mut self.slots[i].fate);
        // Switched away from when its death word was marked: it was the
        // active.
        let switched_early = fate.died.and_then(|(_, switched)| switched).or(fate.switched);
        let role = match self.slots[i].is_live() {
            true if self.shared.active() == i || switched_early.is_some() => Role::Active,
            true => Role::Standby,
            false => Role::Joining,
        };
        let loss = self.loss_of(i, proc.generation, exit, &fate);
        let (detected_by, t_detect) = fate
            .killing
            .or(fate.died.map(|(t, _)| (DetectedBy::DeathWord, t)))
            .unwrap_or((DetectedBy::Pidfd, now));
        let injected_at = slot.region.heartbeat().fault_at_ns.load(Acquire);
        let injected = slot.region.requested_fault();
        let t_fault = match (injected_at, fate.sent_fault) {
            (t, _) if t != 0 => t,
            (_, Some((t, _))) => t,
            _ => t_detect,
        };
        if let Some(k) = self.slots[i].io.reading.take() {
            self.checkpoints.done_reading(k);
        }
        self.slots[i].io = JoinIo::default();
        // A joining worker's audio was never played nor trusted (a trial's
        // even skips events): the slot is free at once. A replica's frames
        // are still in its ring: the output may play them when no live
        // replica has them (all died at once), and its checksums verify a
        // replacement, until the slot is retired.
        self.slots[i].worker_lost(role != Role::Joining);
        self.watchdog.unwatch(i);
        let mut t_switch = switched_early.unwrap_or(t_detect);
        if role == Role::Active
            && self.shared.active() == i
            && let Some(next) = self.standby()
        {
            self.shared.active.store(next as u8, Release);
            t_switch = monotonic_ns();
        }
        let event = FailoverEvent {
            slot: i,
            generation: proc.generation,
            pid: proc.pid,
            role,
            fault: injected.or(fate.sent_fault.map(|(_, k)| k)),
            detected_by,
            exit,
            t_fault,
            t_detect,
            t_switch,
            t_respawn: None,
            t_rejoin: None,
            t_redundant: None,
        };
        if loss.trial {
            // Logged when the trial's outcome is known (`common_mode`).
        } else if t_fault == t_detect {
            tracing::warn!(
                "worker {i} (pid {}, generation {}, {role:?}) {exit}; detected by {detected_by:?} (fault time unknown: \
                 it came from outside); playing from slot {}",
                proc.pid,
                proc.generation,
                self.shared.active()
            );
        } else {
            tracing::warn!(
                "worker {i} (pid {}, generation {}, {role:?}) {exit}; detected by {detected_by:?} after {:.0} µs; \
                 playing from slot {}",
                proc.pid,
                proc.generation,
                event.detection_us(),
                self.shared.active()
            );
        }
        if loss.trial {
            // Part of cutting a poison out, not a fault: no failover event.
            tracing::info!("slot {i}: the poison trial {exit} (detected by {detected_by:?})");
        } else {
            let mut event = event;
            // Seen by its death word, it may have been replaced before its
            // pidfd told; killed for a divergence, the referee may have
            // joined in its place before it was gone: a promotion since
            // then already rejoined (and perhaps made the engine redundant
            // again).
            let ended = fate.killing.map(|(_, t)| t).or(fate.died.map(|(d, _)| d));
            let since_death = self.last_promotion.filter(|&(t, _)| ended.is_some_and(|d| t >= d));
            if let Some((t, redundant)) = since_death {
                event.t_rejoin = Some(t);
                event.t_redundant = redundant.then_some(t);
            }
            let serial = self.history.push(event);
            let pendings: [&mut Vec<u64>; 2] =
                [&mut self.pending_redundant, &mut self.slots[i].pending_respawn];
            for (k, pending) in pendings.into_iter().enumerate() {
                if k == 0 && since_death.is_some_and(|(_, redundant)| redundant) {
                    continue;
                }
                if pending.len() == pending.capacity() {
                    pending.remove(0);
                }
                pending.push(serial);
            }
        }
        if role == Role::Joining && !loss.trial {
            self.slots[i].restarts.failed();
        }
        if self.shared.stop.load(Acquire) {
            return;
        }
        self.on_loss(i, &loss, now);
        if self.determinism.verdict().is_some() {
            self.slots[i].quarantine();
        } else {
            self.restart_join(i, now);
        }
    }

    /// Starts slot `i`'s replacement again, as the restart policy says (at
    /// once, after a backoff, or never), and says so.
    pub(crate) fn restart_join(&mut self, i: usize, now: Nanos) {
        // A worker still on its way for the slot is no longer waited for
        // (the spawner reaps it when it arrives).
        self.slots[i].spawning = None;
        self.slots[i].begin_refill(now, &self.restart_policy);
        let failures = self.slots[i].restarts.failures();
        match self.slots[i].phase() {
            crate::policy::join::Phase::Backoff { until } => {
                let wait = std::time::Duration::from_nanos(until.saturating_sub(now));
                tracing::warn!("slot {i}: {failures} failed restarts in a row; retrying in {wait:?}");
            }
            crate::policy::join::Phase::Quarantined => tracing::error!(
                "slot {i}: {failures} failed restarts in a row; quarantined: no more respawns, playing on the \
                 surviving workers"
            ),
            _ => {}
        }
    }

    /// One watchdog pass: observe every watched worker, kill what the
    /// watchdog condemns.
    pub(crate) fn watch(&mut self, now: Nanos) {
        let limit = self.shared.bus.render_limit();
        let block = u64::from(self.cfg.block);
        let mut progress = [None; MAX_SLOTS];
        for (i, p) in progress.iter_mut().enumerate().take(self.slots.len()) {
            if self.slots[i].proc.is_none() || self.slots[i].fate.ending() || !self.watchdog.is_watched(i) {
                continue;
            }
            let region = &self.shared.slots[i].region;
            let write_frame = region.audio_write_frame();
            let hb = region.heartbeat();
            let wants = self.watchdog.wants_cpu(i, now);
            *p = Some(Progress {
                write_frame,
                has_work: limit >= write_frame + block && region.audio_space() >= block,
                blocks: hb.blocks.load(Acquire),
                last_render: hb.render_ns_last.load(Relaxed),
                rendering: hb.rendering.load(Acquire),
                cpu_ns: wants.then(|| self.cpu_time(i)).flatten(),
                runnable: wants.then(|| self.runnable(i)).flatten(),
            });
        }
        let pass = self.watchdog.pass(now, &progress);
        if pass.held_off {
            self.shared.supervisor_stalls.fetch_add(1, Relaxed);
        }
        for (i, _) in pass.starved.iter().enumerate().filter(|(_, s)| **s) {
            self.shared.starved_workers.fetch_add(1, Relaxed);
            tracing::warn!(
                "slot {i}: no progress for a hang timeout, but runnable and given next to no CPU time: starved by \
                 the machine, not hung; waiting"
            );
        }
        self.note_overload(pass.overloaded);
        if let Some(frame) = pass.common_hang {
            tracing::error!(
                "every replica is stuck inside the block at frame {frame}, burning CPU: a hang they share (a poison); \
                 killing them"
            );
        }
        for (i, verdict) in pass.kills.iter().enumerate() {
            match verdict {
                Some(Verdict::Hung) => self.kill(i, DetectedBy::Watchdog),
                Some(Verdict::Slow) => self.kill(i, DetectedBy::Slow),
                None => {}
            }
        }
    }

    /// Overload (every replica over its render budget): counted and
    /// reported on each change, never a fault.
    fn note_overload(&mut self, overloaded: bool) {
        let s = &self.shared;
        if overloaded {
            s.overloaded_passes.fetch_add(1, Relaxed);
        }
        if s.overloaded.swap(overloaded, Relaxed) == overloaded {
            return;
        }
        if overloaded {
            s.overloads.fetch_add(1, Relaxed);
            tracing::warn!(
                "overloaded: every replica renders over its real-time budget (the workload, not a fault: nobody is \
                 killed); commands superseded within a period are coalesced"
            );
        } else {
            tracing::info!("no longer overloaded");
        }
    }

    /// Compares every standby's newest block checksums with the active's. A
    /// standby that two replicas disagree with (the active and another
    /// standby) has diverged and is replaced; an active that two standbys
    /// agreeing with each other disagree with is outvoted
    /// ([`Supervisor::outvote_active`]); a tie (two replicas, one against
    /// one) is refereed ([`Supervisor::open_dispute`]). While a dispute is
    /// open, nothing else is compared.
    pub(crate) fn compare_replicas(&mut self, now: Nanos) {
        let a = self.shared.active();
        if !self.slots[a].is_live() || self.referee.dispute().is_some() {
            return;
        }
        let block = u64::from(self.cfg.block);
        let mut mismatch = [None; MAX_SLOTS];
        for (s, found) in mismatch.iter_mut().enumerate().take(self.shared.slots.len()) {
            if s == a || !self.slots[s].is_live() || self.slots[s].fate.ending() {
                continue;
            }
            let (active, standby) = (&self.shared.slots[a].region, &self.shared.slots[s].region);
            let newest = active.audio_write_frame().min(standby.audio_write_frame()) / block;
            let mut next = self.slots[s]
                .compared_through
                .max(newest.saturating_sub(chronus_ipc::layout::CHECKSUMS as u64 / 2));
            while next < newest {
                match (active.checksum(next), standby.checksum(next)) {
                    (Some(x), Some(y)) if x != y => {
                        *found = Some(next);
                        break;
                    }
                    _ => next += 1,
                }
            }
            self.slots[s].compared_through = next;
        }
        if let Some(b) = mismatch.iter().flatten().min().copied() {
            let votes = self.votes(a, b);
            if votes.against >= 2 && votes.against > votes.for_active {
                if let Some(winner) = votes.winner {
                    self.outvote_active(a, winner, b, now);
                    return;
                }
            } else if votes.pending > 0
                && votes.against + votes.pending >= 2
                && votes.against + votes.pending > votes.for_active
            {
                // A replica that could still outvote the active has not
                // written the block yet: the vote waits for it (the
                // disagreeing standbys are compared again next pass).
                for (s, m) in mismatch.iter().enumerate() {
                    if let Some(b) = m {
                        self.slots[s].compared_through = *b;
                    }
                }
                return;
            } else if votes.pending == 0
                && votes.against == votes.for_active
                && let Some(s) = votes.winner
                && self.open_dispute(a, s, b, now)
            {
                return;
            }
        }
        for (s, m) in mismatch.into_iter().enumerate() {
            let Some(b) = m else { continue };
            let frame = self.first_differing_frame(a, s, b);
            tracing::error!("standby (slot {s}) diverged from the active at frame {frame}; replacing it");
            self.replace_standby(a, s, b, frame, now);
        }
    }

    /// Frames after a common start within which a divergence counts as
    /// "fresh" (see [`FRESH_BLOCKS`]).
    pub(crate) fn fresh_frames(&self) -> u64 {
        FRESH_BLOCKS * u64::from(self.cfg.block)
    }

    /// The replicas' votes on grid block `block`, which the active `a` and
    /// at least one standby wrote differently: those that agree with the
    /// active (itself included), the largest group that agrees on another
    /// checksum (and one of them), and those that have not written the
    /// block yet.
    fn votes(&self, a: usize, block: u64) -> Votes {
        let slots = &self.shared.slots;
        let mut votes = Votes { for_active: 1, ..Votes::default() };
        let Some(theirs) = slots[a].region.checksum(block) else { return votes };
        let mut others = [None; MAX_SLOTS];
        for s in 0..slots.len() {
            if s == a || !self.slots[s].is_live() || self.slots[s].fate.ending() {
                continue;
            }
            match slots[s].region.checksum(block) {
                Some(x) if x == theirs => votes.for_active += 1,
                Some(x) => others[s] = Some(x),
                None => votes.pending += 1,
            }
        }
        for (s, x) in others.iter().enumerate() {
            let Some(x) = x else { continue };
            let n = others.iter().flatten().filter(|&y| y == x).count();
            if n > votes.against {
                votes.against = n;
                votes.winner = Some(s);
            }
        }
        votes
    }

    /// The active `a` rendered grid block `block` otherwise than two
    /// replicas that agree (two standbys, or the standby `winner` and the
    /// referee): it is the one wrong. The output plays `winner` from now
    /// on, never `a` again, and `a` is replaced. The frames of `a` the
    /// output played from the first wrong one on are counted and journaled
    /// once the output has seen the switch ([`Supervisor::settle_wrong_play`];
    /// with the lead, the vote usually comes before the block is played:
    /// none).
    pub(crate) fn outvote_active(&mut self, a: usize, winner: usize, block: u64, now: Nanos) {
        let frame = self.first_differing_frame(a, winner, block);
        self.shared.active.store(winner as u8, Release);
        self.discredit(a, frame);
        let t = monotonic_ns();
        self.shared.outvoted.fetch_add(1, Relaxed);
        tracing::error!(
            "the active (slot {a}) diverged at frame {frame}, outvoted; playing from slot {winner}"
        );
        let common_start = self.slots[winner].started_at == self.slots[a].started_at;
        let fresh = common_start && frame < self.slots[winner].started_at + self.fresh_frames();
        if !self.diverged_on_request(a)
            && let Some(verdict) = self.determinism.diverged(frame, fresh, now)
        {
            self.report_nondeterminism(verdict);
        }
        self.kill(a, DetectedBy::Divergence);
        self.slots[a].fate.switched = Some(t);
    }

    /// Slot `i`'s worker was told to diverge (an injected `diverge`): its
    /// divergence says nothing about the DSP's determinism.
    pub(crate) fn diverged_on_request(&self, i: usize) -> bool {
        self.shared.slots[i].region.requested_fault() == Some(chronus_ipc::FaultKind::Diverge)
    }

    /// The first frame of grid block `block` where slots `a` and `b` wrote
    /// different samples (the block's first frame if either ring no longer
    /// holds it).
    pub(crate) fn first_differing_frame(&self, a: usize, b: usize, block: u64) -> u64 {
        let n = self.cfg.block as usize;
        let start = block * n as u64;
        let (mut la, mut ra, mut lb, mut rb) =
            (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let got_a = AudioReader::new(&self.shared.slots[a].region).copy_recent(start, &mut la, &mut ra);
        let got_b = AudioReader::new(&self.shared.slots[b].region).copy_recent(start, &mut lb, &mut rb);
        if got_a.is_err() || got_b.is_err() {
            return start;
        }
        let differs = |k: usize| la[k].to_bits() != lb[k].to_bits() || ra[k].to_bits() != rb[k].to_bits();
        start + (0..n).find(|&k| differs(k)).unwrap_or(0) as u64
    }

    /// The DSP is not deterministic: say so once, and stop replacing
    /// workers (a replacement would only diverge again).
    pub(crate) fn report_nondeterminism(&mut self, v: NotDeterministic) {
        tracing::error!(
            "the DSP '{}' is not deterministic: two workers given the same events rendered different audio from frame \
             {} on (it reads a clock, the pid, uninitialised memory or a random seed outside its state, or its \
             snapshot misses state); playing on without a standby (see docs/embedding.md, \"Determinism\")",
            self.cfg.dsp.name(),
            v.frame
        );
        for i in 0..self.slots.len() {
            if !self.slots[i].is_live() {
                self.slots[i].quarantine();
                if self.slots[i].proc.is_some() {
                    self.kill(i, DetectedBy::Divergence);
                }
            }
        }
    }
}
