//! Patches: TOML files that set the instrument, and their expansion into
//! the events that apply them.
//!
//! A patch is flat TOML. Every key is a `/set` parameter that belongs to a
//! sound — the voice's filter and envelope, the instrument (oscillators,
//! filter envelope, LFO) and the master bus's effects; `freq`, `amp` and
//! `master` do not (they are a note's, and the listener's). Choices take
//! their name or their number. `name` and `about` are text for people.
//! Whatever a patch leaves out is at its default — the plain voice's — so a
//! patch is a whole sound, never a difference from the last one.
//!
//! ```toml
//! name = "bass"
//! wave = "saw"
//! wave2 = "square"
//! detune = -1200
//! filter = "resonant"
//! cutoff = 180
//! ```
//!
//! `/patch/load s:path [f:fade_s]` and `/patch/preset s:name [f:fade_s]`
//! expand, where commands enter the engine, into `/patch/begin fade_s` and
//! one `/set` per key in file order: plain events, so the journal holds the
//! patch itself and `render --journal` needs no file.

use std::collections::BTreeMap;

use chronus_dsp::{Arg, Event, FileError, Files};
use toml::{Spanned, Value};

use crate::command::Command;
use crate::param::Param;

/// The fade of `/patch/load` and `/patch/preset` when none is given, s.
pub const DEFAULT_FADE_SECONDS: f32 = 0.01;

const BASS: &str = include_str!("../../../examples/patches/bass.toml");
const LEAD: &str = include_str!("../../../examples/patches/lead.toml");
const ORGAN: &str = include_str!("../../../examples/patches/organ.toml");
const PAD: &str = include_str!("../../../examples/patches/pad.toml");

/// The presets shipped with Chronus (`examples/patches/`), by name.
pub const PRESETS: [(&str, &str); 4] = [("bass", BASS), ("lead", LEAD), ("organ", ORGAN), ("pad", PAD)];

/// The same presets by file name (`bass.toml`, …): what `/patch/load`
/// serves when no patch directory was named.
pub const PRESET_FILES: [(&str, &str); 4] =
    [("bass.toml", BASS), ("lead.toml", LEAD), ("organ.toml", ORGAN), ("pad.toml", PAD)];

/// Names of the choices, by parameter (their index is the number).
const WAVES: [&str; 5] = ["sine", "saw", "square", "triangle", "noise"];
const FILTERS: [&str; 5] = ["lowpass", "highpass", "bandpass", "notch", "resonant"];
const LFO_SHAPES: [&str; 4] = ["sine", "triangle", "square", "sample_hold"];

/// Where `/patch/…` finds its patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file path (`/patch/load`).
    File,
    /// A preset's name (`/patch/preset`).
    Preset,
}

/// A parsed patch: its settings in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchFile {
    /// Its `name`, if it has one.
    pub name: Option<String>,
    /// Parameter and value (sanitised: finite, in range, choices as numbers).
    pub settings: Vec<(Param, f32)>,
}

/// Why a patch was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The file was not read: refused by whoever decides what may be read
    /// (for OSC: outside the patch directory), or unreadable.
    #[error(transparent)]
    File(#[from] FileError),
    /// The text is not a usable patch.
    #[error("line {line}: {message}")]
    Bad {
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No preset has this name.
    #[error("no preset '{0}' (presets: bass, lead, organ, pad)")]
    NoPreset(String),
}

/// The text of preset `name`.
pub fn preset(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// Reads the patch file at `path` through `files` (which decides what may
/// be read) and parses it.
///
/// # Errors
/// [`PatchError::File`], or [`PatchError::Bad`] naming the line.
pub fn load(path: &str, files: &dyn Files) -> Result<PatchFile, PatchError> {
    parse(&files.read_text(path)?)
}

/// Parses a patch.
///
/// # Errors
/// [`PatchError::Bad`] for broken TOML, an unknown or misplaced key, a value
/// of the wrong type, out of range, or naming no choice.
pub fn parse(text: &str) -> Result<PatchFile, PatchError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table: BTreeMap<Spanned<String>, Spanned<Value>> =
        toml::from_str(text).map_err(|e| PatchError::Bad {
            line: e.span().map_or(1, |s| line_of(s.start)),
            message: e.message().trim().to_owned(),
        })?;
    let mut keys: Vec<_> = table.iter().collect();
    keys.sort_by_key(|(k, _)| k.span().start);
    let mut patch = PatchFile { name: None, settings: Vec::new() };
    for (key, value) in keys {
        let bad = |message: String| PatchError::Bad { line: line_of(key.span().start), message };
        let name = key.get_ref().as_str();
        if name == "name" || name == "about" {
            let Value::String(s) = value.get_ref() else {
                return Err(bad(format!("{name} is text (in quotes)")));
            };
            if name == "name" {
                patch.name = Some(s.clone());
            }
            continue;
        }
        let param = Param::from_name(name).ok_or_else(|| bad(unknown(name)))?;
        if matches!(param, Param::Freq | Param::Amp | Param::Master) {
            return Err(bad(format!("{name} is not part of a patch (a note's or the listener's: use /set)")));
        }
        patch.settings.push((param, value_of(param, value.get_ref()).map_err(bad)?));
    }
    Ok(patch)
}

/// The number `value` stands for, checked for `param`.
fn value_of(param: Param, value: &Value) -> Result<f32, String> {
    let name = param.name();
    let number =
        match value {
            Value::Integer(i) => *i as f32,
            Value::Float(f) => *f as f32,
            Value::String(s) => {
                let names: &[&str] = match param {
                    Param::Wave | Param::Wave2 => &WAVES,
                    Param::Filter => &FILTERS,
                    Param::LfoShape => &LFO_SHAPES,
                    _ => return Err(format!("{name} takes a number, not \"{s}\"")),
                };
                names.iter().position(|n| n == s).ok_or_else(|| {
                    format!("{name} = \"{s}\" names no choice (one of: {})", names.join(", "))
                })? as f32
            }
            other => return Err(format!("{name} takes a number, not {}", other.type_str())),
        };
    // The widest sample rate's ranges: a cutoff above another rate's
    // Nyquist is clamped where it plays, as a /set would be.
    let (v, clamped) = param
        .sanitize(number, crate::synth::SAMPLE_RATE_RANGE.1)
        .map_err(|e| format!("{name} = {number}: {e}"))?;
    if clamped {
        return Err(format!("{name} = {number} is out of range (docs/journal.md)"));
    }
    Ok(v)
}

/// "unknown parameter", with the closest name when one is close.
fn unknown(name: &str) -> String {
    let closest = Param::NAMES
        .iter()
        .map(|n| (edit_distance(name, n), *n))
        .min()
        .filter(|(d, _)| *d <= 2)
        .map(|(_, n)| format!(" (did you mean {n}?)"))
        .unwrap_or_default();
    format!("unknown parameter '{name}'{closest}")
}

/// Levenshtein distance (short names only).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The events that apply `patch` with fades of `fade` seconds:
/// `/patch/begin` then one `/set` per setting.
pub fn events(patch: &PatchFile, fade: f32, out: &mut Vec<Event>) {
    out.push(Command::PatchBegin { fade }.to_event());
    out.extend(patch.settings.iter().map(|&(param, value)| Command::Set { param, value }.to_event()));
}

/// `/patch/load s:path [f:fade_s]` (the file read through `files`) or
/// `/patch/preset s:name [f:fade_s]` into events appended to `out`.
///
/// # Errors
/// A message for the sender: wrong arguments, or the [`PatchError`].
pub fn expand(
    source: Source,
    args: &[Arg<'_>],
    files: &dyn Files,
    out: &mut Vec<Event>,
) -> Result<(), String> {
    let usage = match source {
        Source::File => "usage: /patch/load s:path [f:fade_s]",
        Source::Preset => "usage: /patch/preset s:name [f:fade_s]",
    };
    let (what, fade) = match args {
        [Arg::Str(s)] => (*s, DEFAULT_FADE_SECONDS),
        [Arg::Str(s), Arg::Float(f)] => (*s, *f),
        [Arg::Str(s), Arg::Int(i)] => (*s, *i as f32),
        _ => return Err(usage.to_owned()),
    };
    let patch = match source {
        Source::File => load(what, files),
        Source::Preset => preset(what).ok_or_else(|| PatchError::NoPreset(what.to_owned())).and_then(parse),
    }
    .map_err(|e| e.to_string())?;
    events(&patch, fade, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronus_dsp::{AnyFile, NoFiles};

    #[test]
    fn a_patch_parses_in_file_order_with_choices_by_name_or_number() {
        let p =
            parse("name = \"x\"\nwave = \"saw\"\ncutoff = 900\nfilter = 4\nlfo_shape = \"sample_hold\"\n")
                .unwrap();
        assert_eq!(p.name.as_deref(), Some("x"));
        assert_eq!(
            p.settings,
            [(Param::Wave, 1.0), (Param::Cutoff, 900.0), (Param::Filter, 4.0), (Param::LfoShape, 3.0)]
        );
    }

    #[test]
    fn broken_patches_say_what_and_where() {
        let cases = [
            ("wave = \"saw\"\ncutof = 900\n", "line 2: unknown parameter 'cutof' (did you mean cutoff?)"),
            ("cutoff = 900\nwave = \"sawtooth\"\n", "line 2: wave = \"sawtooth\" names no choice"),
            ("q = 2\nattack = -1\n", "line 2: attack = -1 is out of range"),
            ("wave = 1.5\n", "line 1: wave = 1.5: wave takes a whole number"),
            ("cutoff = nan\n", "line 1: cutoff = NaN: cutoff must be a finite number"),
            ("amp = 0.5\n", "line 1: amp is not part of a patch"),
            ("cutoff = true\n", "line 1: cutoff takes a number, not boolean"),
            ("[osc]\nwave = 1\n", "line 1: unknown parameter 'osc'"),
            ("\n\ncutoff = = 3\n", "line 3: "),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err().to_string();
            assert!(got.starts_with(want), "{text:?}: {got}");
        }
    }

    #[test]
    fn every_preset_parses_and_expands_behind_a_patch_begin() {
        for (name, _) in PRESETS {
            let mut out = Vec::new();
            expand(Source::Preset, &[Arg::Str(name)], &NoFiles, &mut out).unwrap();
            assert_eq!(
                Command::from_event(&out[0]),
                Some(Command::PatchBegin { fade: DEFAULT_FADE_SECONDS })
            );
            assert!(out.len() > 5, "{name}");
            assert!(out[1..].iter().all(|e| matches!(Command::from_event(e), Some(Command::Set { .. }))));
        }
        let err = expand(Source::Preset, &[Arg::Str("harp")], &NoFiles, &mut Vec::new()).unwrap_err();
        assert!(err.contains("no preset 'harp'"), "{err}");
        let err =
            expand(Source::File, &[Arg::Str("/nonexistent.toml")], &AnyFile, &mut Vec::new()).unwrap_err();
        assert!(err.starts_with("cannot read /nonexistent.toml"), "{err}");
        let err = expand(Source::File, &[Arg::Str("bass.toml")], &NoFiles, &mut Vec::new()).unwrap_err();
        assert!(err.contains("no files may be read"), "{err}");
        assert!(
            expand(Source::File, &[Arg::Int(3)], &AnyFile, &mut Vec::new()).unwrap_err().starts_with("usage")
        );
    }
}
