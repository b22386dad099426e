//! The sequencer: takes the events the API queued, stamps each with a frame
//! no worker has rendered yet, and publishes it in the bus's log (and to
//! the journal) before the render limit covers its frame. It runs on the
//! output thread, which alone moves the render limit, so stamping and the
//! limit can never race: a worker that sees a limit has every event below
//! it.
//!
//! Each period: the queued immediate events are stamped at the current
//! limit, in arrival order, coalesced (see [`super::coalesce`]); then the
//! scheduled ones that fall due, at their own frames (never before the
//! limit), in frame order. Frames therefore never decrease in the log or the
//! journal. A full log holds events back (latency, never loss).

use std::sync::atomic::Ordering::Relaxed;

use chronus_dsp::{AddressTable, Event, TimedEvent};
use chronus_ipc::LogWriter;

use super::coalesce::Coalescer;
use crate::shared::Shared;

/// Events scheduled for later frames that the output thread holds.
pub(crate) const SCHEDULE_CAPACITY: usize = 1_024;
/// Most immediate events stamped in one period.
pub(crate) const BATCH_CAPACITY: usize = 4_096;

/// An event on its way to the output thread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Queued {
    pub event: Event,
    /// Apply at this frame (if not already past), else as soon as possible.
    pub at: Option<u64>,
    /// Who sent it (an id the API caller chose; 0: unknown).
    pub origin: u32,
}

/// A stamped event, for the journal: its event number, frame and content.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Stamped {
    pub seq: u64,
    pub event: TimedEvent,
}

pub(crate) struct Sequencer {
    commands: rtrb::Consumer<Queued>,
    journal: rtrb::Producer<Stamped>,
    table: AddressTable,
    coalescer: Coalescer,
    /// The batch's events alone, for the coalescer.
    events: Box<[Event]>,
    batch: Box<[(Event, u32)]>,
    keep: Box<[bool]>,
    /// Events for later frames, in arrival order, with their origins;
    /// `scheduled_len` in use.
    scheduled: Box<[(TimedEvent, u32)]>,
    scheduled_len: usize,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer").field("scheduled", &self.scheduled_len).finish_non_exhaustive()
    }
}

impl Sequencer {
    pub fn new(
        commands: rtrb::Consumer<Queued>,
        journal: rtrb::Producer<Stamped>,
        table: AddressTable,
    ) -> Self {
        Self {
            commands,
            journal,
            table,
            coalescer: Coalescer::new(BATCH_CAPACITY),
            batch: vec![(Event::default(), 0); BATCH_CAPACITY].into_boxed_slice(),
            events: vec![Event::default(); BATCH_CAPACITY].into_boxed_slice(),
            keep: vec![true; BATCH_CAPACITY].into_boxed_slice(),
            scheduled: vec![(TimedEvent::default(), 0); SCHEDULE_CAPACITY].into_boxed_slice(),
            scheduled_len: 0,
        }
    }

    fn publish(
        &mut self,
        shared: &Shared,
        log: &mut LogWriter<'_>,
        frame: u64,
        (event, origin): (Event, u32),
        oldest: u64,
    ) -> bool {
        match log.push(frame, event, oldest) {
            Ok(seq) => {
                shared.origins[(seq % shared.origins.len() as u64) as usize].store(origin, Relaxed);
                if self.journal.push(Stamped { seq, event: TimedEvent { frame, event } }).is_err() {
                    shared.io_overruns.fetch_add(1, Relaxed);
                }
                shared.events_stamped.store(seq + 1, Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether the journal's queue has room for the most one release
    /// stamps.
    pub fn journal_has_room(&self) -> bool {
        self.journal.slots() >= BATCH_CAPACITY
    }

    /// Schedules `event` at `frame` (at or after the next release's limit)
    /// from the output thread itself; false when the schedule is full.
    pub fn schedule(&mut self, event: Event, frame: u64, origin: u32) -> bool {
        if self.scheduled_len == self.scheduled.len() {
            return false;
        }
        self.scheduled[self.scheduled_len] = (TimedEvent { frame, event }, origin);
        self.scheduled_len += 1;
        true
    }

    /// Releases events for frames below `next_limit`, stamped no earlier
    /// than `limit` (workers may have rendered up to it). Never allocates,
    /// locks or waits.
    pub fn release(&mut self, shared: &Shared, limit: u64, next_limit: u64) {
        let mut log = LogWriter::new(&shared.bus);
        let oldest = shared.oldest_needed(log.seq());
        let space = log.space(oldest).min(self.batch.len() as u64) as usize;
        let mut n = 0;
        while n < space {
            let Ok(queued) = self.commands.pop() else { break };
            match queued.at {
                Some(frame) if frame >= limit && self.scheduled_len < self.scheduled.len() => {
                    self.scheduled[self.scheduled_len] =
                        (TimedEvent { frame, event: queued.event }, queued.origin);
                    self.scheduled_len += 1;
                }
                at => {
                    // Due now (or the schedule is full: played late, counted).
                    if at.is_some_and(|f| f >= limit) {
                        shared.commands_late.fetch_add(1, Relaxed);
                    }
                    self.batch[n] = (queued.event, queued.origin);
                    self.events[n] = queued.event;
                    n += 1;
                }
            }
        }
        let dropped = self.coalescer.run(&self.table, &self.events[..n], &mut self.keep[..n]);
        if dropped > 0 {
            shared.events_coalesced.fetch_add(dropped as u64, Relaxed);
        }
        for i in 0..n {
            if self.keep[i] {
                // Cannot fail: at most `space` events.
                let queued = self.batch[i];
                self.publish(shared, &mut log, limit, queued, oldest);
            }
        }
        loop {
            // The earliest scheduled event that falls due (ties: arrival order).
            let due = self.scheduled[..self.scheduled_len]
                .iter()
                .enumerate()
                .filter(|(_, (c, _))| c.frame < next_limit)
                .min_by_key(|(i, (c, _))| (c.frame, *i))
                .map(|(i, _)| i);
            let Some(i) = due else { return };
            let (TimedEvent { frame, event }, origin) = self.scheduled[i];
            if !self.publish(shared, &mut log, frame.max(limit), (event, origin), oldest) {
                return;
            }
            self.scheduled.copy_within(i + 1..self.scheduled_len, i);
            self.scheduled_len -= 1;
        }
    }
}
