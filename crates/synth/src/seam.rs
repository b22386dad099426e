//! The synth on the DSP seam: its address table, [`Command`] ⇄ [`Event`],
//! and `impl Dsp for Synth`. Nothing here is private to the engine: an
//! embedder's DSP does exactly this.
//!
//! | address      | arguments                        | index |
//! |--------------|----------------------------------|-------|
//! | `/note_on`   | `i:voice f:freq_hz f:amp`        | 0 |
//! | `/note_off`  | `i:voice`                        | 1 |
//! | `/set`       | `s:param f:value` (every voice)  | 2 |
//! | `/voice/set` | `i:voice s:param f:value`        | 3 |
//! | `/note/on`   | `i:id f:freq_hz f:amp`           | 4 |
//! | `/note/off`  | `i:id`                           | 5 |
//! | `/note/set`  | `i:id s:param f:value`           | 6 |
//! | `/patch/begin` | `f:fade_s`                     | 7 |
//!
//! Expanded where commands enter (never events themselves):
//! `/patch/load s:path [f:fade_s]` and `/patch/preset s:name [f:fade_s]`
//! become `/patch/begin` and the `/set` commands of the patch
//! ([`crate::patch`]).

use chronus_dsp::{AddressSpec, Arg, ArgSpec, Block, Dsp, DspError, DspStats, Event, Files, Piece, Setup};

use crate::command::Command;
use crate::param::Param;
use crate::synth::{Synth, SynthConfig};

/// Event index of `/note_on`.
pub const NOTE_ON: u16 = 0;
/// Event index of `/note_off`.
pub const NOTE_OFF: u16 = 1;
/// Event index of `/set`.
pub const SET: u16 = 2;
/// Event index of `/voice/set`.
pub const VOICE_SET: u16 = 3;
/// Event index of `/note/on`.
pub const NOTE_ON_ID: u16 = 4;
/// Event index of `/note/off`.
pub const NOTE_OFF_ID: u16 = 5;
/// Event index of `/note/set`.
pub const NOTE_SET: u16 = 6;
/// Event index of `/patch/begin`.
pub const PATCH_BEGIN: u16 = 7;

pub use crate::param::PARAM_NAMES;

impl Command {
    /// The event for this command.
    pub fn to_event(&self) -> Event {
        match *self {
            Command::NoteOn { voice, freq, amp } => {
                Event::new(NOTE_ON).with_int(voice as i32).with_float(freq).with_float(amp)
            }
            Command::NoteOff { voice } => Event::new(NOTE_OFF).with_int(voice as i32),
            Command::Set { param, value } => {
                Event::new(SET).with_choice(u32::from(param.id())).with_float(value)
            }
            Command::VoiceSet { voice, param, value } => Event::new(VOICE_SET)
                .with_int(voice as i32)
                .with_choice(u32::from(param.id()))
                .with_float(value),
            Command::NoteOnId { id, freq, amp } => {
                Event::new(NOTE_ON_ID).with_int(id).with_float(freq).with_float(amp)
            }
            Command::NoteOffId { id } => Event::new(NOTE_OFF_ID).with_int(id),
            Command::NoteSet { id, param, value } => {
                Event::new(NOTE_SET).with_int(id).with_choice(u32::from(param.id())).with_float(value)
            }
            Command::PatchBegin { fade } => Event::new(PATCH_BEGIN).with_float(fade),
        }
    }

    /// The command an event stands for, if it is one of the synth's.
    pub fn from_event(e: &Event) -> Option<Self> {
        let voice = |i| u32::try_from(e.int(i)).ok();
        let param = |i| Param::from_id(u16::try_from(e.choice(i)).ok()?);
        Some(match (e.address, e.argc()) {
            (NOTE_ON, 3) => Command::NoteOn { voice: voice(0)?, freq: e.float(1), amp: e.float(2) },
            (NOTE_OFF, 1) => Command::NoteOff { voice: voice(0)? },
            (SET, 2) => Command::Set { param: param(0)?, value: e.float(1) },
            (VOICE_SET, 3) => Command::VoiceSet { voice: voice(0)?, param: param(1)?, value: e.float(2) },
            (NOTE_ON_ID, 3) => Command::NoteOnId { id: e.int(0), freq: e.float(1), amp: e.float(2) },
            (NOTE_OFF_ID, 1) => Command::NoteOffId { id: e.int(0) },
            (NOTE_SET, 3) => Command::NoteSet { id: e.int(0), param: param(1)?, value: e.float(2) },
            (PATCH_BEGIN, 1) => Command::PatchBegin { fade: e.float(0) },
            _ => return None,
        })
    }
}

impl From<Command> for Event {
    fn from(c: Command) -> Self {
        c.to_event()
    }
}

impl Dsp for Synth {
    type Config = SynthConfig;
    const NAME: &'static str = "chronus-synth/1";

    fn addresses(config: &SynthConfig) -> Vec<AddressSpec> {
        let voice = ArgSpec::int("voice", 0, i64::from(config.voices.max(1)) - 1);
        let param = ArgSpec::choice("param", &PARAM_NAMES);
        let id = ArgSpec::int("id", -1, i64::from(i32::MAX));
        let value = ArgSpec::float("value", (f32::MIN, f32::MAX), "the parameter's unit (docs/journal.md)");
        vec![
            AddressSpec::new(
                "/note_on",
                vec![
                    voice,
                    ArgSpec::float("freq_hz", (0.0, 192_000.0), "Hz, clamped to half the sample rate"),
                    ArgSpec::float("amp", (0.0, 1.0), "linear gain"),
                ],
                "set the voice's frequency and amplitude and open its gate",
            ),
            AddressSpec::new("/note_off", vec![voice], "close the voice's gate (release)"),
            AddressSpec::new(
                "/set",
                vec![param, value],
                "set a parameter on every voice (master: the output gain)",
            )
            .superseded_by_equal(&[0]),
            AddressSpec::new("/voice/set", vec![voice, param, value], "set a parameter on one voice")
                .superseded_by_equal(&[0, 1]),
            AddressSpec::new(
                "/note/on",
                vec![
                    id,
                    ArgSpec::float("freq_hz", (0.0, 192_000.0), "Hz, clamped to half the sample rate"),
                    ArgSpec::float("amp", (0.0, 1.0), "linear gain"),
                ],
                "play note ID (yours; -1: engine-chosen, not addressable) on a voice the synth picks",
            ),
            AddressSpec::new("/note/off", vec![id], "release note ID (-1: every engine-chosen note)"),
            AddressSpec::new("/note/set", vec![id, param, value], "set a parameter of note ID's voice")
                .superseded_by_equal(&[0, 1]),
            AddressSpec::new(
                "/patch/begin",
                vec![ArgSpec::float("fade_s", (0.0, crate::patch_change::MAX_FADE_SECONDS), "s")],
                "start a new patch: the /set commands until the swap build it from the defaults; the voices \
                 fade out over fade_s, the new patch replaces the old, they fade back in",
            ),
        ]
    }

    fn expand(
        _: &SynthConfig,
        _: &Setup,
        path: &str,
        args: &[Arg<'_>],
        files: &dyn Files,
        out: &mut Vec<Event>,
    ) -> Option<Result<(), String>> {
        let source = match path {
            "/patch/load" => crate::patch::Source::File,
            "/patch/preset" => crate::patch::Source::Preset,
            _ => return None,
        };
        Some(crate::patch::expand(source, args, files, out))
    }

    fn validate(_: &SynthConfig, setup: &Setup, event: &Event) -> Result<(), String> {
        match Command::from_event(event) {
            Some(Command::Set { param, value }) => param.sanitize(value, setup.sample_rate).map(|_| ()),
            Some(Command::PatchBegin { fade }) => crate::synth::sanitize_fade(fade).map(|_| ()),
            Some(Command::VoiceSet { param, value, .. } | Command::NoteSet { param, value, .. }) => {
                if param.is_voice_param() {
                    param.sanitize(value, setup.sample_rate).map(|_| ())
                } else {
                    Err(crate::SynthError::NotAVoiceParam(param))
                }
            }
            _ => Ok(()),
        }
        .map_err(|e| e.to_string())
    }

    fn prepare(setup: &Setup, config: &SynthConfig) -> Result<Self, DspError> {
        Synth::new(setup.sample_rate, *config).map_err(|e| DspError::InvalidConfig(e.to_string().into()))
    }

    fn snapshot_len(&self) -> usize {
        self.snapshot_bytes_len()
    }

    fn render(&mut self, block: Block<'_>) {
        self.frame = block.frame;
        block.split(|piece| match piece {
            Piece::Event(e) => match Command::from_event(e) {
                // Refusals are counted in the synth's stats.
                Some(c) => {
                    let _ = self.apply(&c);
                }
                None => self.count_rejected(),
            },
            Piece::Audio { left, right, .. } => self.render(left, right),
        });
    }

    fn snapshot(&self, out: &mut [u8]) {
        self.snapshot_to_bytes(out);
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), DspError> {
        self.restore_from_bytes(bytes).map_err(|e| DspError::BadSnapshot(e.to_string().into()))
    }

    fn reset(&mut self) {
        self.reset_state();
    }

    fn stats(&self) -> DspStats {
        let s = self.stats();
        DspStats {
            applied: s.applied,
            rejected: s.rejected,
            clamped: s.clamped,
            active: self.voices_in_use(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronus_dsp::{Arg, DspSpec};

    #[test]
    fn commands_and_events_convert_both_ways() {
        let cmds = [
            Command::NoteOn { voice: 7, freq: 440.5, amp: 0.25 },
            Command::NoteOff { voice: 4_095 },
            Command::Set { param: Param::Master, value: 0.5 },
            Command::VoiceSet { voice: 1, param: Param::Cutoff, value: 900.0 },
            Command::NoteOnId { id: -1, freq: 220.0, amp: 0.5 },
            Command::NoteOffId { id: 1 << 30 },
            Command::NoteSet { id: 17, param: Param::Q, value: 2.0 },
        ];
        for c in cmds {
            assert_eq!(Command::from_event(&c.to_event()), Some(c));
        }
        assert_eq!(Command::from_event(&Event::new(9)), None);
        assert_eq!(Command::from_event(&Event::new(SET).with_choice(99).with_float(1.0)), None);
    }

    #[test]
    fn the_table_parses_what_the_commands_mean() {
        let spec = DspSpec::new::<Synth>(SynthConfig::new(8)).unwrap();
        let setup = Setup { sample_rate: 48_000, block: 256 };
        let mut out = Vec::new();
        spec.parse(
            &setup,
            "/voice/set",
            &[Arg::Int(3), Arg::Str("cutoff"), Arg::Int(1200)],
            &chronus_dsp::NoFiles,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [Command::VoiceSet { voice: 3, param: Param::Cutoff, value: 1200.0 }.to_event()]);
        let master = spec.parse(
            &setup,
            "/voice/set",
            &[Arg::Int(3), Arg::Str("master"), Arg::Int(1)],
            &chronus_dsp::NoFiles,
            &mut out,
        );
        assert!(master.unwrap_err().to_string().contains("global"));
        let filter = spec.parse(
            &setup,
            "/set",
            &[Arg::Str("filter"), Arg::Float(1.5)],
            &chronus_dsp::NoFiles,
            &mut out,
        );
        assert!(filter.is_err());
        let voice = spec.parse(&setup, "/note_off", &[Arg::Int(8)], &chronus_dsp::NoFiles, &mut out);
        assert!(voice.unwrap_err().to_string().contains("out of range"));
        assert_eq!(out.len(), 1);
    }
}
