//! `chronus render`: a score or journal → WAV, offline, in-process.

use std::path::PathBuf;

use chronus::dsp::{DspSpec, Setup, TimedEvent};
use chronus::journal::{Annotations, Journal, default_length, parse_score, render_offline};

use crate::exit::{CANT_CREATE, DATA_ERR, ExitCodeExt, Failure, NO_INPUT, USAGE};

/// Flags of `chronus render`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("input").required(true))]
pub struct RenderArgs {
    /// An event journal written by `chronus play --journal` (frames are exact).
    #[arg(long, group = "input", value_name = "FILE")]
    journal: Option<PathBuf>,
    /// A hand-written score: `SECONDS /address args…` per line.
    #[arg(long, group = "input", value_name = "FILE")]
    score: Option<PathBuf>,
    /// The WAV file to write.
    #[arg(short, long, value_name = "FILE.wav")]
    output: PathBuf,
    /// Sample rate in Hz (scores only; a journal carries its own).
    #[arg(long, default_value_t = 48_000)]
    sample_rate: u32,
    /// Number of voices, 1..=4096 (scores only; a journal carries its own).
    #[arg(long, default_value_t = 64)]
    voices: u32,
    /// Frames per block (scores only; a journal carries its own).
    #[arg(long, default_value_t = 256)]
    block: u32,
    /// Length in seconds (default: the journal's recorded end, or the last
    /// command plus --tail).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Seconds rendered after the last command when no length is given.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    tail: f64,
    /// Render what was played: silence where the journal records that the
    /// machine or Chronus did not play frames in time (`@stall`, `@gap`).
    /// Without it, the render is the run as it should have sounded.
    #[arg(long, requires = "journal")]
    as_played: bool,
    /// The patch to play the score with, set at frame 0: a patch file
    /// (docs/patches.md) or a preset's name. A journal carries its own.
    #[arg(long, value_name = "FILE|PRESET", requires = "score")]
    patch: Option<String>,
}

/// What to render, validated.
struct RenderConfig {
    spec: DspSpec,
    setup: Setup,
    events: Vec<TimedEvent>,
    notes: Annotations,
    as_played: bool,
    frames: u64,
    output: PathBuf,
}

fn read(path: &PathBuf) -> Result<String, Failure> {
    std::fs::read_to_string(path).or_exit(NO_INPUT, format!("cannot read {}", path.display()))
}

impl RenderArgs {
    fn validate(self) -> Result<RenderConfig, Failure> {
        let (spec, setup, events, notes) = if let Some(path) = &self.journal {
            let (journal, spec) = Journal::parse(&read(path)?, super::synth::spec_for_journal)
                .or_exit(DATA_ERR, path.display())?;
            let setup = journal.header.setup();
            (spec, setup, journal.events, journal.notes)
        } else {
            let path = self.score.as_ref().expect("clap requires --journal or --score");
            let spec = super::synth::spec(self.voices)?;
            if !(1..=8_192).contains(&self.block) {
                return Err(Failure::new(USAGE, "--block must be 1..=8192"));
            }
            let setup = Setup { sample_rate: self.sample_rate, block: self.block };
            let mut events = Vec::new();
            if let Some(patch) = &self.patch {
                let patch = super::synth::patch_events(&spec, &setup, patch)?;
                events.extend(patch.into_iter().map(|event| TimedEvent { frame: 0, event }));
            }
            events.extend(parse_score(&read(path)?, &spec, &setup).or_exit(DATA_ERR, path.display())?);
            (spec, setup, events, Annotations::default())
        };
        let frames = match self.duration {
            Some(secs) if secs.is_finite() && secs >= 0.0 => {
                (secs * f64::from(setup.sample_rate)).round() as u64
            }
            Some(_) => return Err(Failure::new(USAGE, "--duration must be a number of seconds ≥ 0")),
            None => notes.end_frame.unwrap_or_else(|| default_length(&events, setup.sample_rate, self.tail)),
        };
        Ok(RenderConfig {
            spec,
            setup,
            events,
            notes,
            as_played: self.as_played,
            frames,
            output: self.output,
        })
    }
}

/// Runs `chronus render`.
pub fn run(args: RenderArgs) -> Result<(), Failure> {
    let cfg = args.validate()?;
    let audio = render_offline(&cfg.spec, cfg.setup, &cfg.events, &cfg.notes, cfg.frames, cfg.as_played)
        .or_exit(USAGE, "cannot render")?;
    chronus::audio::write_wav(&cfg.output, cfg.setup.sample_rate, &audio.left, &audio.right)
        .or_exit(CANT_CREATE, "cannot write the WAV file")?;
    let peak = audio.left.iter().chain(&audio.right).fold(0.0f32, |m, s| m.max(s.abs()));
    let peak_db = if peak > 0.0 { format!("{:.1} dBFS", 20.0 * peak.log10()) } else { "silent".into() };
    println!(
        "rendered {:.2} s ({} frames, {}, {} Hz, {} events) to {}; peak {peak_db}; {} events refused",
        cfg.frames as f64 / f64::from(cfg.setup.sample_rate),
        cfg.frames,
        cfg.spec.name(),
        cfg.setup.sample_rate,
        cfg.events.len(),
        cfg.output.display(),
        audio.stats.rejected
    );
    Ok(())
}
