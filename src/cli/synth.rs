//! The built-in synth, as the CLI runs it: its spec, the demo score, and
//! reading journals written for it.

use chronus::dsp::{DspSpec, Setup, TimedEvent};
use chronus::journal::{JournalError, JournalHeader};
use chronus::synth::{Synth, SynthConfig};

use crate::exit::{DATA_ERR, ExitCodeExt, Failure, USAGE};

/// The synth with `voices` voices.
pub fn spec(voices: u32) -> Result<DspSpec, Failure> {
    if !(1..=chronus::synth::MAX_VOICES).contains(&voices) {
        return Err(Failure::new(USAGE, "--voices must be 1..=4096"));
    }
    DspSpec::new::<Synth>(SynthConfig::new(voices)).or_exit(USAGE, "the synth")
}

/// The DSP a journal header names: this binary runs the built-in synth.
pub fn spec_for_journal(header: &JournalHeader) -> Result<DspSpec, JournalError> {
    use chronus::dsp::Dsp;
    if header.dsp != Synth::NAME {
        return Err(JournalError::Dsp(format!(
            "the journal is for DSP '{}'; this program renders '{}' (render it with the program that wrote it)",
            header.dsp,
            Synth::NAME
        )));
    }
    Ok(DspSpec::from_json::<Synth>(&header.config)?)
}

/// What `/patch/load` serves an OSC sender when `play` was given no
/// `--patch-dir`: the presets built into the synth, as `bass.toml`, ….
pub const BUNDLED_PATCHES: [(&str, &str); 4] = chronus::synth::patch::PRESET_FILES;

/// The built-in demo score and its loop length in frames.
pub fn demo_score(spec: &DspSpec, setup: &Setup) -> Result<(Vec<TimedEvent>, u64), Failure> {
    let score = chronus::journal::parse_score(include_str!("../../examples/scores/demo.score"), spec, setup)
        .or_exit(DATA_ERR, "the built-in demo score")?;
    let length = chronus::journal::default_length(&score, setup.sample_rate, 1.0);
    Ok((score, length))
}

/// The events that set the patch `arg` at once (before any note): a patch
/// file, or the name of a preset (`bass`, `lead`, `organ`, `pad`) when no
/// such file exists. Through the synth's own `/patch/load` and
/// `/patch/preset`, as any sender would.
pub fn patch_events(spec: &DspSpec, setup: &Setup, arg: &str) -> Result<Vec<chronus::dsp::Event>, Failure> {
    let is_file = std::path::Path::new(arg).exists() || arg.contains('/') || arg.ends_with(".toml");
    let address = if is_file { "/patch/load" } else { "/patch/preset" };
    let mut events = Vec::new();
    spec.parse(
        setup,
        address,
        &[chronus::dsp::Arg::Str(arg), chronus::dsp::Arg::Float(0.0)],
        &chronus::dsp::AnyFile,
        &mut events,
    )
    .or_exit(DATA_ERR, format!("--patch {arg}"))?;
    Ok(events)
}
