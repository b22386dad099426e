//! The event log: the supervisor's output thread → every worker, through
//! the bus. One producer writes each stamped event once; every worker reads
//! all of them at its own pace, from wherever it started (event 0, or a
//! checkpoint's position).
//!
//! Event `n` (the n-th event ever published in this engine run) lives in
//! slot `n mod capacity` and is valid only if its `stamp` equals
//! [`stamp`]`(epoch, n)`: the writer clears the stamp, writes the payload
//! and stamps it last, and a reader accepts the payload only if the stamp
//! is the one it wants before and after reading it
//! ([`crate::protocol::stamped_read`], model-checked in
//! `tests/protocols.rs`); the payload must also match its checksum. A zeroed slot (stamp 0), a slot from a lap ago (the
//! stamp of `n - capacity`), one of another engine run or random bytes
//! therefore never read as an event: the "spurious command right after
//! spawn" class of bug cannot happen by construction. The writer never
//! overwrites an event a live worker (or a checkpoint it must keep) has not
//! passed; a reader that was lapped anyway (a replacement that fell too far
//! behind) sees [`LogEntry::Lapped`], never a wrong event.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use chronus_dsp::{Event, MAX_ARGS, TimedEvent};

use crate::Bus;
use crate::protocol::{self, Stamped, StdFences};

/// splitmix64's finaliser: a bijection on u64 with 0 ↦ 0.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Bits of the epoch that stamps carry.
pub const EPOCH_BITS: u32 = 24;

/// The stamp of event number `seq` in engine run `epoch`: injective in
/// (epoch < 2^24, seq < 2^40) and never 0, since `mix` is a bijection that
/// maps only 0 to 0 and the low 40 bits (`seq + 1`) are never 0.
pub fn stamp(epoch: u64, seq: u64) -> u64 {
    let low = (seq + 1) & ((1 << 40) - 1);
    mix(((epoch & ((1 << EPOCH_BITS) - 1)) << 40) | low.max(1))
}

/// An event as the words of a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wire {
    frame: u64,
    head: u32,
    args: [u32; MAX_ARGS],
}

impl Wire {
    fn encode(frame: u64, e: &Event) -> Self {
        Self { frame, head: u32::from(e.address) | u32::from(e.argc) << 16, args: e.args }
    }

    fn decode(&self) -> Option<TimedEvent> {
        let argc = (self.head >> 16) as u16;
        if usize::from(argc) > MAX_ARGS {
            return None;
        }
        let event = Event { address: self.head as u16, argc, args: self.args };
        Some(TimedEvent { frame: self.frame, event })
    }

    /// FNV-1a over the stamp and the payload words.
    fn check(&self, stamp: u64) -> u32 {
        let head =
            [stamp as u32, (stamp >> 32) as u32, self.frame as u32, (self.frame >> 32) as u32, self.head];
        head.iter().chain(&self.args).fold(0x811c_9dc5u32, |h, w| (h ^ w).wrapping_mul(0x0100_0193))
    }
}

/// The log is full; the event is handed back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Full(pub TimedEvent);

/// The producer side (the supervisor's output thread).
#[derive(Debug)]
pub struct LogWriter<'b> {
    bus: &'b Bus,
    seq: u64,
}

impl<'b> LogWriter<'b> {
    /// The writer, continuing at the log's published position.
    pub fn new(bus: &'b Bus) -> Self {
        Self { bus, seq: bus.control().write_seq.load(Acquire) }
    }

    /// The next event number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Slots free, keeping every event from `oldest_needed` on (the lowest
    /// read position of the live workers). A position beyond the writer's
    /// (garbage) counts as a full log.
    pub fn space(&self, oldest_needed: u64) -> u64 {
        let cap = u64::from(self.bus.geometry().log_slots);
        if oldest_needed > self.seq { 0 } else { cap - (self.seq - oldest_needed).min(cap) }
    }

    /// Publishes `event` for `frame` as the next event number, unless that
    /// would overwrite one from `oldest_needed` on. Never blocks, never
    /// overwrites: a full log hands the event back.
    pub fn push(&mut self, frame: u64, event: Event, oldest_needed: u64) -> Result<u64, Full> {
        if self.space(oldest_needed) == 0 {
            return Err(Full(TimedEvent { frame, event }));
        }
        let slots = self.bus.log_slots();
        let slot = &slots[(self.seq % slots.len() as u64) as usize];
        let wire = Wire::encode(frame, &event);
        let stamp = stamp(self.bus.epoch(), self.seq);
        protocol::stamped_publish::<StdFences, _>(&slot.stamp, stamp, || {
            slot.frame.store(wire.frame, Relaxed);
            slot.head.store(wire.head, Relaxed);
            for (dst, src) in slot.args.iter().zip(wire.args) {
                dst.store(src, Relaxed);
            }
            slot.check.store(wire.check(stamp), Relaxed);
        });
        let seq = self.seq;
        self.seq += 1;
        self.bus.control().write_seq.store(self.seq, Release);
        Ok(seq)
    }
}

/// What a reader found at its position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LogEntry {
    /// Nothing published there yet.
    Empty,
    /// A valid event, with its event number.
    Event(u64, TimedEvent),
    /// The right stamp over a bad checksum or payload (counted and skipped).
    Corrupt,
    /// The writer has gone a whole lap past this reader: the event is gone.
    Lapped,
}

/// A consumer (a worker): reads every event in order from its position.
#[derive(Debug)]
pub struct LogReader<'b> {
    bus: &'b Bus,
    seq: u64,
}

impl<'b> LogReader<'b> {
    /// A reader at event number `seq`.
    pub fn new(bus: &'b Bus, seq: u64) -> Self {
        Self { bus, seq }
    }

    /// The next event number to read.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Moves to event number `seq`.
    pub fn seek(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// Looks at the next event without consuming it.
    pub fn peek(&self) -> LogEntry {
        let slots = self.bus.log_slots();
        let slot = &slots[(self.seq % slots.len() as u64) as usize];
        let want = stamp(self.bus.epoch(), self.seq);
        let read = protocol::stamped_read::<StdFences, _, _>(&slot.stamp, want, || {
            let mut args = [0u32; MAX_ARGS];
            for (dst, src) in args.iter_mut().zip(&slot.args) {
                *dst = src.load(Relaxed);
            }
            let wire = Wire { frame: slot.frame.load(Relaxed), head: slot.head.load(Relaxed), args };
            (wire, slot.check.load(Relaxed))
        });
        match read {
            Stamped::Absent => {
                let written = self.bus.control().write_seq.load(Acquire);
                if written > self.seq + slots.len() as u64 { LogEntry::Lapped } else { LogEntry::Empty }
            }
            // The writer lapped us while we read.
            Stamped::Overwritten => LogEntry::Lapped,
            Stamped::Read((wire, check)) if check == wire.check(want) => {
                wire.decode().map_or(LogEntry::Corrupt, |e| LogEntry::Event(self.seq, e))
            }
            Stamped::Read(_) => LogEntry::Corrupt,
        }
    }

    /// Consumes the event last peeked.
    pub fn advance(&mut self) {
        self.seq += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_nonzero_and_distinct_across_epochs_and_laps() {
        let mut seen = std::collections::HashSet::new();
        for epoch in 0..8 {
            for seq in 0..4_096 {
                let s = stamp(epoch, seq);
                assert_ne!(s, 0);
                assert!(seen.insert(s));
            }
        }
    }

    #[test]
    fn events_round_trip_through_the_wire() {
        let e = Event::new(3).with_int(-7).with_float(f32::NAN).with_choice(2);
        let back = Wire::encode(1 << 40, &e).decode().unwrap();
        assert_eq!(back.frame, 1 << 40);
        assert_eq!(back.event, e);
        assert_eq!(Wire { frame: 0, head: 9 << 16, args: [0; MAX_ARGS] }.decode(), None);
    }
}
