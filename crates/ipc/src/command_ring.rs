//! The command ring: supervisor → worker, fixed-size plain-data slots.
//!
//! Slot `n` (the n-th command ever pushed to this region) is valid only if
//! its `stamp` equals [`stamp`]`(generation, n)`, written last with Release;
//! its payload must also match its checksum and decode to a known command.
//! A zeroed slot (stamp 0), a slot from a lap ago (stamp of `n - capacity`),
//! a slot of another generation or random bytes therefore never read as a
//! command: the "spurious shutdown right after spawn" class of bug cannot
//! happen by construction. There is no shutdown command on the wire at all;
//! stopping is a separate, generation-tagged control word.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use chronus_dsp::{Command, CommandSource, Param, TimedCommand};

use crate::Region;
use crate::layout::CommandSlot;

/// splitmix64's finaliser: a bijection on u64 with 0 ↦ 0.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stamp of slot sequence `seq` in `generation`: injective in
/// (generation < 2^24, seq < 2^40) and never 0, since `mix` is a bijection
/// that maps only 0 to 0.
pub fn stamp(generation: u64, seq: u64) -> u64 {
    mix((generation << 40) ^ (seq + 1))
}

const OP_NOTE_ON: u32 = 1;
const OP_NOTE_OFF: u32 = 2;
const OP_SET: u32 = 3;
const OP_VOICE_SET: u32 = 4;

/// A command as the words of a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wire {
    frame: u64,
    op: u32,
    voice: u32,
    a: u32,
    b: u32,
}

impl Wire {
    fn encode(c: &TimedCommand) -> Self {
        let (op, voice, a, b) = match c.command {
            Command::NoteOn { voice, freq, amp } => (OP_NOTE_ON, voice, freq, amp),
            Command::NoteOff { voice } => (OP_NOTE_OFF, voice, 0.0, 0.0),
            Command::Set { param, value } => (OP_SET | u32::from(param.id()) << 8, 0, value, 0.0),
            Command::VoiceSet { voice, param, value } => {
                (OP_VOICE_SET | u32::from(param.id()) << 8, voice, value, 0.0)
            }
        };
        Self { frame: c.frame, op, voice, a: a.to_bits(), b: b.to_bits() }
    }

    fn decode(&self) -> Option<TimedCommand> {
        let param = || Param::from_id(u16::try_from(self.op >> 8).ok()?);
        let (a, b) = (f32::from_bits(self.a), f32::from_bits(self.b));
        let command = match self.op & 0xff {
            OP_NOTE_ON => Command::NoteOn { voice: self.voice, freq: a, amp: b },
            OP_NOTE_OFF => Command::NoteOff { voice: self.voice },
            OP_SET => Command::Set { param: param()?, value: a },
            OP_VOICE_SET => Command::VoiceSet { voice: self.voice, param: param()?, value: a },
            _ => return None,
        };
        Some(TimedCommand { frame: self.frame, command })
    }

    /// FNV-1a over the stamp and the payload words.
    fn check(&self, stamp: u64) -> u32 {
        let words = [
            stamp as u32,
            (stamp >> 32) as u32,
            self.frame as u32,
            (self.frame >> 32) as u32,
            self.op,
            self.voice,
            self.a,
            self.b,
        ];
        words.iter().fold(0x811c_9dc5u32, |h, w| (h ^ w).wrapping_mul(0x0100_0193))
    }
}

/// The ring is full; the command is handed back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Full(pub TimedCommand);

/// Supervisor side of the command ring.
#[derive(Debug)]
pub struct CommandWriter<'r> {
    region: &'r Region,
    seq: u64,
}

impl<'r> CommandWriter<'r> {
    /// The writer, continuing at the ring's published position.
    pub fn new(region: &'r Region) -> Self {
        Self { region, seq: region.command_header().write_seq.load(Acquire) }
    }

    /// Slots free now. A consumer position beyond the producer's (garbage)
    /// counts as a full ring.
    pub fn space(&self) -> u64 {
        let read = self.region.command_header().read_seq.load(Acquire);
        let cap = u64::from(self.region.geometry().command_slots);
        if read > self.seq { 0 } else { cap - (self.seq - read).min(cap) }
    }

    /// Publishes a command. Never blocks, never overwrites: a full ring
    /// hands the command back.
    pub fn push(&mut self, command: TimedCommand) -> Result<(), Full> {
        if self.space() == 0 {
            return Err(Full(command));
        }
        let slots = self.region.command_slots();
        let slot = &slots[(self.seq % slots.len() as u64) as usize];
        let wire = Wire::encode(&command);
        let stamp = stamp(self.region.generation(), self.seq);
        slot.frame.store(wire.frame, Relaxed);
        slot.op.store(wire.op, Relaxed);
        slot.voice.store(wire.voice, Relaxed);
        slot.a.store(wire.a, Relaxed);
        slot.b.store(wire.b, Relaxed);
        slot.check.store(wire.check(stamp), Relaxed);
        slot.stamp.store(stamp, Release);
        self.seq += 1;
        self.region.command_header().write_seq.store(self.seq, Release);
        Ok(())
    }
}

/// What the reader found in the next slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Slot {
    /// Nothing published yet (or a stale/garbage stamp).
    Empty,
    /// A valid command.
    Command(TimedCommand),
    /// A slot with the right stamp but a bad checksum or unknown command.
    Corrupt,
}

/// Worker side of the command ring.
#[derive(Debug)]
pub struct CommandReader<'r> {
    region: &'r Region,
    seq: u64,
    corrupt: u64,
    late: u64,
    last_frame: u64,
}

impl<'r> CommandReader<'r> {
    /// The reader, continuing at the ring's published consumer position.
    pub fn new(region: &'r Region) -> Self {
        Self {
            region,
            seq: region.command_header().read_seq.load(Acquire),
            corrupt: 0,
            late: 0,
            last_frame: 0,
        }
    }

    fn slot(&self) -> &CommandSlot {
        let slots = self.region.command_slots();
        &slots[(self.seq % slots.len() as u64) as usize]
    }

    /// Looks at the next slot without consuming it.
    pub fn peek(&self) -> Slot {
        let slot = self.slot();
        let want = stamp(self.region.generation(), self.seq);
        if slot.stamp.load(Acquire) != want {
            return Slot::Empty;
        }
        let wire = Wire {
            frame: slot.frame.load(Relaxed),
            op: slot.op.load(Relaxed),
            voice: slot.voice.load(Relaxed),
            a: slot.a.load(Relaxed),
            b: slot.b.load(Relaxed),
        };
        if slot.check.load(Relaxed) != wire.check(want) {
            return Slot::Corrupt;
        }
        wire.decode().map_or(Slot::Corrupt, Slot::Command)
    }

    /// Consumes the slot last peeked.
    pub fn advance(&mut self) {
        self.seq += 1;
        self.region.command_header().read_seq.store(self.seq, Release);
    }

    /// Corrupt slots skipped so far.
    pub fn corrupt(&self) -> u64 {
        self.corrupt
    }

    /// Commands seen out of frame order (applied at once).
    pub fn out_of_order(&self) -> u64 {
        self.late
    }
}

impl CommandSource for CommandReader<'_> {
    fn next_before(&mut self, end: u64) -> Option<TimedCommand> {
        loop {
            match self.peek() {
                Slot::Empty => return None,
                Slot::Corrupt => {
                    self.corrupt += 1;
                    self.advance();
                }
                Slot::Command(c) if c.frame < end => {
                    if c.frame < self.last_frame {
                        self.late += 1;
                    }
                    self.last_frame = c.frame;
                    self.advance();
                    return Some(c);
                }
                Slot::Command(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_nonzero_and_distinct_across_generations_and_laps() {
        let mut seen = std::collections::HashSet::new();
        for generation in 0..8 {
            for seq in 0..4_096 {
                let s = stamp(generation, seq);
                assert_ne!(s, 0);
                assert!(seen.insert(s));
            }
        }
    }

    #[test]
    fn every_command_round_trips_through_the_wire() {
        let cmds = [
            Command::NoteOn { voice: 7, freq: 440.5, amp: 0.25 },
            Command::NoteOff { voice: 4_095 },
            Command::Set { param: Param::Master, value: 0.5 },
            Command::VoiceSet { voice: 1, param: Param::Cutoff, value: f32::NAN },
        ];
        for (i, command) in cmds.into_iter().enumerate() {
            let tc = TimedCommand { frame: 1 << 40 | i as u64, command };
            let back = Wire::encode(&tc).decode().unwrap();
            assert_eq!(format!("{back:?}"), format!("{tc:?}"));
        }
        assert_eq!(Wire { frame: 0, op: 0, voice: 0, a: 0, b: 0 }.decode(), None);
        assert_eq!(Wire { frame: 0, op: OP_SET | 99 << 8, voice: 0, a: 0, b: 0 }.decode(), None);
    }
}
