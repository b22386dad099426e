//! MIDI to synth commands: notes (each channel and key is a note of its
//! own, given a voice of its own), velocity, the sustain pedal, pitch bend,
//! and a fixed map of controllers to parameters.
//!
//! The map is a plain state machine: bytes in, [`Command`]s out, never
//! allocating after [`MidiMap::new`], so it runs on an audio driver's
//! thread. Its outputs are ordinary commands: stamped, journaled and
//! replayed like any other, so a MIDI performance renders bit-exactly from
//! its journal and survives a worker kill.
//!
//! | MIDI | does |
//! |---|---|
//! | note on (velocity > 0) | a voice (a free one, else the one held longest) plays the key: frequency from the key (A4 = key 69 = 440 Hz) and the bend, amplitude `0.5 · (velocity / 127)²` |
//! | note off, or note on with velocity 0 | releases it (held while the sustain pedal is down) |
//! | CC 64 (sustain) | ≥ 64 down: note-offs are held until it comes up |
//! | pitch bend | ± [`BEND_RANGE`] semitones, every sounding note of the channel |
//! | CC 1 (mod wheel), CC 74 (brightness) | `cutoff`: 100 Hz · 2^(value/127 · 7.5) (100 Hz … 18 kHz) |
//! | CC 71 (resonance) | `q`: 0.5 + value/127 · 11.5 |
//! | CC 73 (attack), CC 72 (release) | `attack`, `release`: (value/127)² · 4 s |
//! | CC 7 (volume) | `master`: value/127 |
//! | CC 10 (pan) | `pan` of every voice: value/64 − 1 |
//! | CC 120 (all sound off), CC 123 (all notes off) | releases every note of every channel |
//!
//! Anything else (program change, aftertouch, system messages, running
//! status across calls) is ignored and counted.

use crate::{Command, Param};

/// Pitch bend range, semitones either way.
pub const BEND_RANGE: f32 = 2.0;

/// What a voice is doing for the map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Held {
    /// Sounding a key (gate open).
    on: bool,
    /// Its note-off came while the pedal was down.
    sustained: bool,
    channel: u8,
    key: u8,
    /// When it started (a counter), to steal the oldest.
    age: u64,
}

/// Translates MIDI messages into synth commands.
#[derive(Clone, Debug)]
pub struct MidiMap {
    voices: Vec<Held>,
    next: usize,
    clock: u64,
    pedal: [bool; 16],
    bend: [f32; 16],
    ignored: u64,
}

fn key_freq(key: u8, bend_semitones: f32) -> f32 {
    440.0 * ((f32::from(key) - 69.0 + bend_semitones) / 12.0).exp2()
}

impl MidiMap {
    /// A map over `voices` voices (allocates here only).
    pub fn new(voices: u32) -> Self {
        Self {
            voices: vec![Held::default(); voices.max(1) as usize],
            next: 0,
            clock: 0,
            pedal: [false; 16],
            bend: [0.0; 16],
            ignored: 0,
        }
    }

    /// Messages ignored so far.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Translates one MIDI message (status byte first) into commands,
    /// handed to `out` in order. Never allocates.
    pub fn translate(&mut self, bytes: &[u8], out: &mut impl FnMut(Command)) {
        let Some(&status) = bytes.first() else { return };
        let data = |i: usize| bytes.get(i).copied().unwrap_or(0) & 0x7f;
        let channel = status & 0x0f;
        match status & 0xf0 {
            0x90 if data(2) > 0 => self.note_on(channel, data(1), data(2), out),
            0x80 | 0x90 => self.note_off(channel, data(1), out),
            0xb0 => self.control(channel, data(1), data(2), out),
            0xe0 => {
                let value = (i32::from(data(2)) << 7 | i32::from(data(1))) - 8_192;
                self.bend[usize::from(channel)] = value as f32 / 8_192.0 * BEND_RANGE;
                let bend = self.bend[usize::from(channel)];
                for (v, h) in self.voices.iter().enumerate() {
                    if h.on && h.channel == channel {
                        let freq = key_freq(h.key, bend);
                        out(Command::VoiceSet { voice: v as u32, param: Param::Freq, value: freq });
                    }
                }
            }
            _ => self.ignored += 1,
        }
    }

    fn note_on(&mut self, channel: u8, key: u8, velocity: u8, out: &mut impl FnMut(Command)) {
        // Retriggered key: the same voice. Else a free voice, round robin,
        // else the one held longest.
        let n = self.voices.len();
        let same = self.voices.iter().position(|h| h.on && h.channel == channel && h.key == key);
        let free = || (0..n).map(|k| (self.next + k) % n).find(|&v| !self.voices[v].on);
        let oldest = || (0..n).min_by_key(|&v| self.voices[v].age).unwrap_or(0);
        let voice = same.or_else(free).unwrap_or_else(oldest);
        self.next = (voice + 1) % n;
        self.clock += 1;
        self.voices[voice] = Held { on: true, sustained: false, channel, key, age: self.clock };
        let v = f32::from(velocity) / 127.0;
        let freq = key_freq(key, self.bend[usize::from(channel)]);
        out(Command::NoteOn { voice: voice as u32, freq, amp: 0.5 * v * v });
    }

    fn note_off(&mut self, channel: u8, key: u8, out: &mut impl FnMut(Command)) {
        let pedal = self.pedal[usize::from(channel)];
        for (v, h) in self.voices.iter_mut().enumerate() {
            if h.on && !h.sustained && h.channel == channel && h.key == key {
                if pedal {
                    h.sustained = true;
                } else {
                    h.on = false;
                    out(Command::NoteOff { voice: v as u32 });
                }
            }
        }
    }

    fn release_all(&mut self, only_sustained_of: Option<u8>, out: &mut impl FnMut(Command)) {
        for (v, h) in self.voices.iter_mut().enumerate() {
            let selected = match only_sustained_of {
                Some(ch) => h.sustained && h.channel == ch,
                None => h.on,
            };
            if h.on && selected {
                *h = Held { age: h.age, ..Held::default() };
                out(Command::NoteOff { voice: v as u32 });
            }
        }
    }

    fn control(&mut self, channel: u8, cc: u8, value: u8, out: &mut impl FnMut(Command)) {
        let x = f32::from(value) / 127.0;
        let set = |param, value| Command::Set { param, value };
        match cc {
            64 => {
                let down = value >= 64;
                let was = std::mem::replace(&mut self.pedal[usize::from(channel)], down);
                if was && !down {
                    self.release_all(Some(channel), out);
                }
            }
            1 | 74 => out(set(Param::Cutoff, 100.0 * (x * 7.5).exp2())),
            71 => out(set(Param::Q, 0.5 + x * 11.5)),
            73 => out(set(Param::Attack, x * x * 4.0)),
            72 => out(set(Param::Release, x * x * 4.0)),
            7 => out(set(Param::Master, x)),
            10 => out(set(Param::Pan, f32::from(value) / 64.0 - 1.0)),
            120 | 123 => {
                self.pedal = [false; 16];
                self.release_all(None, out);
            }
            _ => self.ignored += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(map: &mut MidiMap, bytes: &[u8]) -> Vec<Command> {
        let mut out = Vec::new();
        map.translate(bytes, &mut |c| out.push(c));
        out
    }

    #[test]
    fn each_key_gets_a_voice_and_releasing_one_leaves_the_others() {
        let mut m = MidiMap::new(8);
        let a = run(&mut m, &[0x90, 69, 127]);
        assert_eq!(a, vec![Command::NoteOn { voice: 0, freq: 440.0, amp: 0.5 }]);
        let b = run(&mut m, &[0x90, 81, 64]);
        let Command::NoteOn { voice: 1, freq, .. } = b[0] else { panic!("{b:?}") };
        assert!((freq - 880.0).abs() < 1e-3);
        assert_eq!(run(&mut m, &[0x80, 69, 0]), vec![Command::NoteOff { voice: 0 }]);
        assert_eq!(run(&mut m, &[0x90, 69, 0]), vec![], "already off");
        assert_eq!(run(&mut m, &[0x90, 81, 0]), vec![Command::NoteOff { voice: 1 }]);
    }

    #[test]
    fn the_pedal_holds_note_offs_until_it_comes_up() {
        let mut m = MidiMap::new(8);
        run(&mut m, &[0xb0, 64, 127]);
        run(&mut m, &[0x90, 60, 100]);
        assert_eq!(run(&mut m, &[0x80, 60, 0]), vec![]);
        assert_eq!(run(&mut m, &[0xb0, 64, 0]), vec![Command::NoteOff { voice: 0 }]);
    }

    #[test]
    fn with_every_voice_busy_the_oldest_is_taken() {
        let mut m = MidiMap::new(2);
        run(&mut m, &[0x90, 60, 100]);
        run(&mut m, &[0x90, 62, 100]);
        let c = run(&mut m, &[0x90, 64, 100]);
        assert!(matches!(c[0], Command::NoteOn { voice: 0, .. }), "{c:?}");
    }

    #[test]
    fn bend_moves_the_channels_notes_and_controllers_map_to_parameters() {
        let mut m = MidiMap::new(4);
        run(&mut m, &[0x90, 69, 100]);
        run(&mut m, &[0x91, 69, 100]);
        let c = run(&mut m, &[0xe0, 0x7f, 0x7f]);
        assert_eq!(c.len(), 1, "channel 1's note is not bent: {c:?}");
        let Command::VoiceSet { voice: 0, param: Param::Freq, value } = c[0] else { panic!() };
        assert!((value - 440.0 * (2.0f32 / 12.0).exp2()).abs() < 0.1, "{value}");
        let c = run(&mut m, &[0xb0, 74, 127]);
        assert!(matches!(c[0], Command::Set { param: Param::Cutoff, value } if value > 18_000.0));
        assert_eq!(run(&mut m, &[0xb0, 123, 0]).len(), 2, "all notes off");
        run(&mut m, &[0xc0, 5]);
        run(&mut m, &[]);
        assert_eq!(m.ignored(), 1);
    }
}
