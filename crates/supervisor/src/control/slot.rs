//! One worker slot, everything about it in one place: the policy's view of
//! its life (`policy::join`'s phase: the single source of truth), the
//! worker process in it and its fate, what is in flight for it (a start
//! request, a checkpoint being read, the output's mark), its restart
//! record, and the failover events waiting for it.
//!
//! The view the output thread reads (`EMPTY`, `JOINING`, `LIVE`, `DEAD` in
//! the shared slot) is derived from that state and written in one place,
//! [`Slot::publish`], by every method here that changes it: nothing else
//! writes it.

use std::sync::Arc;

use crate::policy::Nanos;
use crate::policy::join::{Action, Facts, Join, JoinConfig, Phase};
use crate::policy::restart::{RestartPolicy, Restarts};
use crate::shared::{DEAD, EMPTY, JOINING, LIVE, OutputMark, Shared, SharedSlot};

use super::{Fate, Proc};

/// Pending failover events of a slot: they complete when its replacement
/// joins. Bounded (a slot that keeps failing completes its newest ones).
pub(crate) const PENDING: usize = 16;

/// The I/O in flight for one slot's join.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct JoinIo {
    /// Set when the slot was retired: the output must have seen it.
    pub quiet_mark: Option<OutputMark>,
    /// The start request sent to the worker (set by
    /// [`Slot::start_requested`]: the slot is joining from then on).
    start_req: Option<u32>,
    /// The checkpoint slot it is starting from (reserved until it started).
    pub reading: Option<usize>,
}

/// One worker slot, as the supervisor thread knows it.
pub(crate) struct Slot {
    index: usize,
    shared: Arc<Shared>,
    /// The policy's view of the slot's life.
    join: Join,
    /// A replica whose worker died: its frames stay readable by the output
    /// until the slot is retired ([`Slot::retire`]).
    dead: bool,
    /// A replica found wrong (outvoted, or ruled against by the referee):
    /// the output must not play its frames again, not even as a fallback.
    discredited: bool,
    /// The worker process in it.
    pub proc: Option<Proc>,
    /// The generation of the worker the spawner is starting for it, if one
    /// is on its way (`proc` is set when it arrives).
    pub spawning: Option<u64>,
    /// What the supervisor did to it, or expects.
    pub fate: Fate,
    /// What is in flight for its join.
    pub io: JoinIo,
    /// Its restart record (failures in a row).
    pub restarts: Restarts,
    /// Failover events that complete when the slot holds a ready worker.
    pub pending_respawn: Vec<u64>,
    /// The frame its worker started rendering at.
    pub started_at: u64,
    /// Blocks below this were compared with the active's.
    pub compared_through: u64,
}

impl JoinIo {
    /// The start request sent to the worker, if one was.
    pub fn start_req(&self) -> Option<u32> {
        self.start_req
    }
}

impl Slot {
    /// Slot `index` of `shared`, empty.
    pub fn new(index: usize, shared: Arc<Shared>) -> Self {
        Self {
            index,
            shared,
            join: Join::default(),
            dead: false,
            discredited: false,
            proc: None,
            spawning: None,
            fate: Fate::default(),
            io: JoinIo::default(),
            restarts: Restarts::default(),
            pending_respawn: Vec::with_capacity(PENDING),
            started_at: 0,
            compared_through: 0,
        }
    }

    /// What the other threads share of it: its region, its view.
    pub fn shared(&self) -> &SharedSlot {
        &self.shared.slots[self.index]
    }

    /// Where it stands.
    pub fn phase(&self) -> Phase {
        self.join.phase()
    }

    /// Its join (for the policy's questions: starting, trial, spare).
    pub fn join(&self) -> &Join {
        &self.join
    }

    /// Holds a verified live replica.
    pub fn is_live(&self) -> bool {
        self.join.is_live()
    }

    /// Its worker's pid, if it has one.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.pid)
    }

    /// The output thread's view, from the phase: the one place it is
    /// written.
    fn publish(&self) {
        let view = if self.discredited {
            // Its audio is wrong: no longer readable, though it may still
            // be rendering until its kill lands.
            EMPTY
        } else if self.dead {
            DEAD
        } else if self.join.is_live() {
            LIVE
        } else if self.join.is_joining() && self.io.start_req.is_some() {
            // Rendering from the start request on: the output then wakes it
            // and keeps its ring's read position.
            JOINING
        } else {
            EMPTY
        };
        self.shared().publish_view(view);
    }

    /// Advances the join by what `facts` say; returns what to do.
    pub fn poll(&mut self, now: Nanos, cfg: &JoinConfig, facts: &Facts) -> Action {
        let action = self.join.poll(now, cfg, facts);
        self.publish();
        action
    }

    /// The start request `id` was sent to its worker: it renders now.
    pub fn start_requested(&mut self, id: u32) {
        self.io.start_req = Some(id);
        self.publish();
    }

    /// A worker that started with the engine is a live replica.
    pub fn start_live(&mut self) {
        self.join.live();
        self.publish();
    }

    /// A worker spawned with the engine and not started is a ready spare.
    pub fn start_spare(&mut self) {
        self.join.spare();
        self.publish();
    }

    /// Its worker is gone; a replica's frames stay readable until
    /// [`Slot::retire`] (a joining worker's never were: it is empty at
    /// once, and the output's mark taken).
    pub fn worker_lost(&mut self, was_replica: bool) {
        self.join.lost();
        // A discredited replica's frames must not be played: gone at once.
        let was_replica = was_replica && !std::mem::take(&mut self.discredited);
        self.dead = was_replica;
        self.publish();
        if !was_replica {
            self.io.quiet_mark = Some(self.shared.output_mark());
        }
    }

    /// Its joining replacement is verified against `against` from now on
    /// (the replica it was to be checked against was ruled wrong).
    pub fn refer_to(&mut self, against: usize) {
        self.join.refer_to(against);
    }

    /// Its replica was found wrong: the output stops reading it now (the
    /// caller takes the output's mark to know when it has). Its worker is
    /// to be killed; its exit frees the slot at once
    /// ([`Slot::worker_lost`]).
    pub fn discredit(&mut self) {
        self.discredited = true;
        self.publish();
    }

    /// A dead replica's frames are no longer needed: the output must stop
    /// reading it; once it has (the mark), the region may be reset.
    pub fn retire(&mut self) {
        self.dead = false;
        self.publish();
        self.io.quiet_mark = Some(self.shared.output_mark());
    }

    /// Whether it is a dead replica not retired yet.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Refill it: now, after a backoff, or never, as its restart record
    /// says.
    pub fn begin_refill(&mut self, now: Nanos, policy: &RestartPolicy) {
        self.join.begin(now, &self.restarts, policy);
        self.publish();
    }

    /// No more refills (the DSP is not deterministic).
    pub fn quarantine(&mut self) {
        self.join.quarantine();
        self.publish();
    }

    /// Its poison trial ended: a spare again.
    pub fn trial_ended(&mut self) {
        self.join.trial_ended();
        self.publish();
    }
}
