//! MIDI to synth commands: notes (each channel and key is a note of its
//! own: note ID `channel · 128 + key`, so the synth allocates its voice),
//! velocity, the sustain pedal, pitch bend, and a fixed map of controllers
//! to parameters.
//!
//! The map is a plain state machine: bytes in, [`Command`]s out, never
//! allocating after [`MidiMap::new`], so it runs on an audio driver's
//! thread. Its outputs are ordinary commands: stamped, journaled and
//! replayed like any other, so a MIDI performance renders bit-exactly from
//! its journal and survives a worker kill.
//!
//! | MIDI | does |
//! |---|---|
//! | note on (velocity > 0) | `/note/on` of note `channel · 128 + key`: frequency from the key (A4 = key 69 = 440 Hz) and the channel's bend, amplitude `0.5 · (velocity / 127)²` |
//! | note off, or note on with velocity 0 | `/note/off` (held while the sustain pedal is down) |
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

/// A key's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Key {
    #[default]
    Up,
    /// Sounding, held by the player.
    Down,
    /// Released while the pedal was down: sounding until it comes up.
    Sustained,
}

/// Translates MIDI messages into synth commands.
#[derive(Clone, Debug)]
pub struct MidiMap {
    keys: [[Key; 128]; 16],
    pedal: [bool; 16],
    bend: [f32; 16],
    ignored: u64,
}

impl Default for MidiMap {
    fn default() -> Self {
        Self::new()
    }
}

fn key_freq(key: u8, bend_semitones: f32) -> f32 {
    440.0 * ((f32::from(key) - 69.0 + bend_semitones) / 12.0).exp2()
}

/// The note ID of `key` on `channel`.
pub fn note_id(channel: u8, key: u8) -> i32 {
    i32::from(channel & 0x0f) * 128 + i32::from(key & 0x7f)
}

impl MidiMap {
    /// A map with every key up.
    pub fn new() -> Self {
        Self { keys: [[Key::Up; 128]; 16], pedal: [false; 16], bend: [0.0; 16], ignored: 0 }
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
        let ch = usize::from(channel);
        match status & 0xf0 {
            0x90 if data(2) > 0 => {
                let (key, v) = (data(1), f32::from(data(2)) / 127.0);
                self.keys[ch][usize::from(key)] = Key::Down;
                let freq = key_freq(key, self.bend[ch]);
                out(Command::NoteOnId { id: note_id(channel, key), freq, amp: 0.5 * v * v });
            }
            0x80 | 0x90 => {
                let key = usize::from(data(1));
                match self.keys[ch][key] {
                    Key::Down if self.pedal[ch] => self.keys[ch][key] = Key::Sustained,
                    Key::Down => {
                        self.keys[ch][key] = Key::Up;
                        out(Command::NoteOffId { id: note_id(channel, data(1)) });
                    }
                    _ => {}
                }
            }
            0xb0 => self.control(channel, data(1), data(2), out),
            0xe0 => {
                let value = (i32::from(data(2)) << 7 | i32::from(data(1))) - 8_192;
                self.bend[ch] = value as f32 / 8_192.0 * BEND_RANGE;
                for key in 0..128u8 {
                    if self.keys[ch][usize::from(key)] != Key::Up {
                        let value = key_freq(key, self.bend[ch]);
                        out(Command::NoteSet { id: note_id(channel, key), param: Param::Freq, value });
                    }
                }
            }
            _ => self.ignored += 1,
        }
    }

    /// Releases the keys of `channel` in state `which` (all sounding ones
    /// when `None`), on every channel when `channel` is `None`.
    fn release(&mut self, channel: Option<u8>, which: Option<Key>, out: &mut impl FnMut(Command)) {
        for ch in 0..16u8 {
            if channel.is_some_and(|c| c != ch) {
                continue;
            }
            for key in 0..128u8 {
                let k = &mut self.keys[usize::from(ch)][usize::from(key)];
                if *k != Key::Up && which.is_none_or(|w| w == *k) {
                    *k = Key::Up;
                    out(Command::NoteOffId { id: note_id(ch, key) });
                }
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
                    self.release(Some(channel), Some(Key::Sustained), out);
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
                self.release(None, None, out);
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
    fn each_key_is_a_note_and_releasing_one_leaves_the_others() {
        let mut m = MidiMap::new();
        assert_eq!(run(&mut m, &[0x90, 69, 127]), vec![Command::NoteOnId { id: 69, freq: 440.0, amp: 0.5 }]);
        let b = run(&mut m, &[0x91, 81, 64]);
        let Command::NoteOnId { id: 209, freq, .. } = b[0] else { panic!("{b:?}") };
        assert!((freq - 880.0).abs() < 1e-3);
        assert_eq!(run(&mut m, &[0x80, 69, 0]), vec![Command::NoteOffId { id: 69 }]);
        assert_eq!(run(&mut m, &[0x90, 69, 0]), vec![], "already up");
        assert_eq!(run(&mut m, &[0x91, 81, 0]), vec![Command::NoteOffId { id: 209 }]);
    }

    #[test]
    fn the_pedal_holds_note_offs_until_it_comes_up() {
        let mut m = MidiMap::new();
        run(&mut m, &[0xb0, 64, 127]);
        run(&mut m, &[0x90, 60, 100]);
        run(&mut m, &[0x90, 62, 100]);
        assert_eq!(run(&mut m, &[0x80, 60, 0]), vec![]);
        assert_eq!(run(&mut m, &[0xb0, 64, 0]), vec![Command::NoteOffId { id: 60 }], "62 is still held");
        assert_eq!(run(&mut m, &[0x80, 62, 0]), vec![Command::NoteOffId { id: 62 }]);
    }

    #[test]
    fn bend_moves_the_channels_notes_and_controllers_map_to_parameters() {
        let mut m = MidiMap::new();
        run(&mut m, &[0x90, 69, 100]);
        run(&mut m, &[0x91, 69, 100]);
        let c = run(&mut m, &[0xe0, 0x7f, 0x7f]);
        assert_eq!(c.len(), 1, "channel 1's note is not bent: {c:?}");
        let Command::NoteSet { id: 69, param: Param::Freq, value } = c[0] else { panic!() };
        assert!((value - 440.0 * (2.0f32 / 12.0).exp2()).abs() < 0.1, "{value}");
        let c = run(&mut m, &[0xb0, 74, 127]);
        assert!(matches!(c[0], Command::Set { param: Param::Cutoff, value } if value > 18_000.0));
        assert_eq!(run(&mut m, &[0xb0, 123, 0]).len(), 2, "all notes off");
        run(&mut m, &[0xc0, 5]);
        run(&mut m, &[]);
        assert_eq!(m.ignored(), 1);
    }
}
