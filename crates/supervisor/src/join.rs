//! Bringing a replacement worker into lockstep, in the background.
//!
//! 1. Wait until the output thread has left the dead slot (it is not inside
//!    a period that started before the slot was marked dead), reset the region for a new generation, spawn the worker in
//!    join mode, and attach the slot to the command fan-out (`JOINING`).
//! 2. Once the output thread has seen the new state, every command it
//!    releases reaches the replacement;
//!    ask the active for a snapshot at the first block boundary at or after
//!    the current render limit, so every command before the snapshot frame
//!    S is inside the snapshot and every one from S on is in the
//!    replacement's ring.
//! 3. Copy the snapshot, start the replacement's ring at S; it restores,
//!    drops the ring's commands before S, and renders as fast as it can.
//! 4. Compare its block checksums with the active's from S on; after
//!    [`VERIFY_BLOCKS`] equal blocks, once it has caught up *and the output
//!    has played up to S* (frames before S exist only in the active's ring),
//!    it is the verified standby (`LIVE`). A mismatch kills it (divergence). The
//!    comparison then goes on for as long as both run (`supervise.rs`).
//!
//! With no live worker left to copy from, the replacement starts from a
//! silent synth at the next block boundary (the state is lost; counted as
//! underruns until it plays).

use std::sync::atomic::Ordering::{Acquire, Release};
use std::time::{Duration, Instant};

use chronus_dsp::SynthConfig;
use chronus_ipc::{SnapshotBuffers, WorkerState, copy_snapshot, monotonic_ns, snapshot_frame};

use crate::events::DetectedBy;
use crate::shared::{JOINING, LIVE, OutputMark};
use crate::supervise::Supervisor;

/// Equal consecutive block checksums needed to trust a replacement.
pub(crate) const VERIFY_BLOCKS: u32 = 1;
/// Longest a join step may take before the replacement is killed and tried
/// again.
const STEP_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a slot's join stands.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) enum Phase {
    /// Nothing to do.
    #[default]
    Idle,
    /// Waiting before the next attempt (crash-loop backoff).
    Backoff { until: Instant },
    /// Too many failed joins in a row: no more respawns.
    Quarantined,
    /// Waiting for the output thread to leave the slot.
    AwaitQuiet { mark: OutputMark },
    /// Spawned; waiting for it to be ready and for the output thread to
    /// fan commands out to it.
    AwaitReady { mark: OutputMark },
    /// Waiting for the active's snapshot.
    AwaitSnapshot { id: u32, since: Instant },
    /// Restored at frame `start`; comparing checksums from block `next`.
    AwaitVerify { start: u64, next: u64, matched: u32, since: Instant },
}

impl Supervisor {
    /// Starts (again) the join of slot `i`, after a backoff when joins keep
    /// failing: none for the first retry, then `backoff_base` doubling up to
    /// `backoff_max` (1, 2, 4, 8 s by default); after `quarantine_after`
    /// failures in a row, gives up (quarantine).
    pub(crate) fn restart_join(&mut self, i: usize) {
        if self.ctl[i].proc.is_some() {
            // Still running (divergence, timeout): kill it; its exit restarts us.
            self.kill(i, DetectedBy::Divergence);
            return;
        }
        let failures = self.ctl[i].failures;
        let mark = self.shared.output_mark();
        self.ctl[i].phase = if failures >= self.cfg.quarantine_after {
            tracing::error!(
                "slot {i}: {failures} failed restarts in a row; quarantined: no more respawns, playing on the surviving worker"
            );
            Phase::Quarantined
        } else if failures >= 2 {
            let wait =
                self.cfg.backoff_base.saturating_mul(1 << (failures - 2).min(16)).min(self.cfg.backoff_max);
            tracing::warn!("slot {i}: {failures} failed restarts in a row; retrying in {wait:?}");
            Phase::Backoff { until: Instant::now() + wait }
        } else {
            Phase::AwaitQuiet { mark }
        };
    }

    /// Kills a replacement whose join failed; its exit (as a joining worker)
    /// counts the failure and restarts the join.
    fn fail_join(&mut self, i: usize, why: &str) {
        tracing::warn!("slot {i}: join failed: {why}");
        self.kill(i, DetectedBy::Divergence);
    }

    /// Advances slot `i`'s join by whatever is ready now; never waits.
    pub(crate) fn step_join(&mut self, i: usize) {
        let block = u64::from(self.cfg.block);
        match self.ctl[i].phase {
            Phase::Idle | Phase::Quarantined => {}
            Phase::Backoff { until } => {
                if Instant::now() >= until {
                    self.ctl[i].phase = Phase::AwaitQuiet { mark: self.shared.output_mark() };
                }
            }
            Phase::AwaitQuiet { mark } => {
                if !self.shared.output_saw(mark) {
                    return;
                }
                match self.spawn(i, true) {
                    Ok(()) => {
                        self.shared.slots[i].set_state(JOINING);
                        self.ctl[i].phase = Phase::AwaitReady { mark: self.shared.output_mark() };
                    }
                    Err(e) => {
                        tracing::warn!("slot {i}: {e}");
                        self.ctl[i].failures += 1;
                        self.restart_join(i);
                    }
                }
            }
            Phase::AwaitReady { mark } => self.await_ready(i, mark, block),
            Phase::AwaitSnapshot { id, since } => {
                let source = &self.shared.slots[i ^ 1];
                if source.state() != LIVE {
                    // The worker we were copying from died too: start over.
                    self.ctl[i].phase = Phase::AwaitReady { mark: self.shared.output_mark() };
                } else if source.region.snapshot_done(id) {
                    let target = &self.shared.slots[i].region;
                    copy_snapshot(&source.region, target);
                    let start = snapshot_frame(target);
                    target.publish_restore(start);
                    self.ctl[i].phase =
                        Phase::AwaitVerify { start, next: start / block, matched: 0, since: Instant::now() };
                } else if since.elapsed() > STEP_TIMEOUT {
                    self.fail_join(i, "the active did not deliver a snapshot");
                }
            }
            Phase::AwaitVerify { start, next, matched, since } => {
                self.verify(i, start, next, matched, since, block)
            }
        }
    }

    fn await_ready(&mut self, i: usize, mark: OutputMark, block: u64) {
        let region = &self.shared.slots[i].region;
        if region.control().error.load(Acquire) != 0 {
            return self.fail_join(i, "its command ring overflowed before it could start");
        }
        let Some(proc) = self.ctl[i].proc.as_mut() else { return };
        if region.worker_state() != Some(WorkerState::Ready) {
            if proc.spawned.elapsed() > STEP_TIMEOUT {
                self.fail_join(i, "the worker did not report ready");
            }
            return;
        }
        if !proc.ready {
            proc.ready = true;
            let now = monotonic_ns();
            for &e in &self.ctl[i].pending_events {
                self.events[e].t_respawn.get_or_insert(now);
            }
        }
        if !self.shared.output_saw(mark) {
            return;
        }
        let limit = self.shared.limit.load(Acquire);
        if self.shared.slots[i ^ 1].state() == LIVE {
            let id = self.shared.slots[i ^ 1].region.request_snapshot(limit);
            self.ctl[i].phase = Phase::AwaitSnapshot { id, since: Instant::now() };
            return;
        }
        // Nobody left to copy from: start silent at the next block boundary.
        let start = limit.div_ceil(block) * block;
        let config = SynthConfig::new(self.cfg.sample_rate, self.cfg.voices);
        let stored = SnapshotBuffers::for_config(config)
            .map_err(|_| ())
            .and_then(|mut b| b.store_fresh(config, start, region).map_err(|_| ()));
        if stored.is_err() {
            return self.fail_join(i, "cannot build a fresh snapshot");
        }
        tracing::error!("slot {i}: no live worker to copy from; restarting from silence at frame {start}");
        region.publish_restore(start);
        self.promote(i);
        self.shared.active.store(i as u8, Release);
    }

    fn verify(&mut self, i: usize, start: u64, mut next: u64, mut matched: u32, since: Instant, block: u64) {
        let source = &self.shared.slots[i ^ 1].region;
        let target = &self.shared.slots[i].region;
        if self.shared.slots[i ^ 1].state() != LIVE {
            // The source died while we verified: we hold the newest state.
            if matched > 0 {
                self.promote(i);
                self.shared.active.store(i as u8, Release);
            } else {
                self.fail_join(i, "the active died before the replacement could be verified");
            }
            return;
        }
        loop {
            match (source.checksum(next), target.checksum(next)) {
                (Some(a), Some(b)) if a == b => {
                    matched += 1;
                    next += 1;
                }
                (Some(_), Some(_)) => {
                    tracing::error!("slot {i}: block {next} differs from the active's: divergence");
                    return self.fail_join(i, "block checksums differ from the active's");
                }
                _ => break,
            }
        }
        let caught_up = target.audio_write_frame() + block >= source.audio_write_frame();
        // Frames before `start` exist only in the active's ring: until the
        // output has played them, the replacement cannot stand in for it.
        let covers_output = self.shared.frame.load(Acquire) >= start;
        if matched >= VERIFY_BLOCKS && caught_up && covers_output {
            self.ctl[i].compared_through = next;
            self.promote(i);
        } else if since.elapsed() > STEP_TIMEOUT {
            self.fail_join(i, "it did not catch up in lockstep in time");
        } else {
            self.ctl[i].phase = Phase::AwaitVerify { start, next, matched, since };
        }
    }

    /// Slot `i` becomes a verified standby.
    fn promote(&mut self, i: usize) {
        self.shared.slots[i].set_state(LIVE);
        let now = monotonic_ns();
        for e in self.ctl[i].pending_events.drain(..) {
            let event = &mut self.events[e];
            event.t_respawn.get_or_insert(now);
            event.t_rejoin = Some(now);
            tracing::info!(
                "slot {i}: replacement verified in lockstep {:.0} µs after the fault",
                event.rejoin_us().unwrap_or_default()
            );
        }
        self.ctl[i].failures = 0;
        self.ctl[i].phase = Phase::Idle;
        self.ctl[i].watch.last_change_ns_reset();
    }
}
