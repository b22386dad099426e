//! `chronus render`: a score or journal → WAV, offline, in-process.

use std::path::PathBuf;

use chronus::journal::{Journal, default_length, parse_score, render_offline};

use crate::exit::{CANT_CREATE, DATA_ERR, ExitCodeExt, Failure, NO_INPUT};

/// Flags of `chronus render`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("input").required(true))]
pub struct RenderArgs {
    /// A command journal written by `chronus play --journal` (frames are exact).
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
    /// Length in seconds (default: the journal's recorded end, or the last
    /// command plus --tail).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Seconds rendered after the last command when no length is given.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    tail: f64,
    /// Render what was played: silence where the journal records that the
    /// machine did not let the output play in time (`@stall`). Without it,
    /// the render is the run as it should have sounded.
    #[arg(long, requires = "journal")]
    as_played: bool,
}

/// What to render, validated.
struct RenderConfig {
    commands: Vec<chronus::dsp::TimedCommand>,
    /// The journal, when its stalls are to be silenced.
    as_played: Option<Journal>,
    sample_rate: u32,
    voices: u32,
    frames: u64,
    output: PathBuf,
}

fn read(path: &PathBuf) -> Result<String, Failure> {
    std::fs::read_to_string(path).or_exit(NO_INPUT, format!("cannot read {}", path.display()))
}

impl RenderArgs {
    fn validate(self) -> Result<RenderConfig, Failure> {
        let mut as_played = None;
        let (commands, sample_rate, voices, recorded_end) = if let Some(path) = &self.journal {
            let mut journal = Journal::parse(&read(path)?).or_exit(DATA_ERR, path.display())?;
            let commands = std::mem::take(&mut journal.commands);
            let header = (journal.sample_rate, journal.voices, journal.end_frame);
            if self.as_played {
                as_played = Some(journal);
            }
            (commands, header.0, header.1, header.2)
        } else {
            let path = self.score.as_ref().expect("clap requires --journal or --score");
            let commands = parse_score(&read(path)?, self.sample_rate).or_exit(DATA_ERR, path.display())?;
            (commands, self.sample_rate, self.voices, None)
        };
        let frames = match self.duration {
            Some(secs) if secs.is_finite() && secs >= 0.0 => (secs * f64::from(sample_rate)).round() as u64,
            Some(_) => {
                return Err(Failure::new(crate::exit::USAGE, "--duration must be a number of seconds ≥ 0"));
            }
            None => recorded_end.unwrap_or_else(|| default_length(&commands, sample_rate, self.tail)),
        };
        Ok(RenderConfig { commands, as_played, sample_rate, voices, frames, output: self.output })
    }
}

/// Runs `chronus render`.
pub fn run(args: RenderArgs) -> Result<(), Failure> {
    let cfg = args.validate()?;
    let mut audio = render_offline(&cfg.commands, cfg.sample_rate, cfg.voices, cfg.frames)
        .or_exit(crate::exit::USAGE, "cannot render")?;
    if let Some(journal) = &cfg.as_played {
        journal.silence_stalls(&mut audio.left, &mut audio.right);
    }
    chronus::audio::write_wav(&cfg.output, cfg.sample_rate, &audio.left, &audio.right)
        .or_exit(CANT_CREATE, "cannot write the WAV file")?;
    let peak = audio.left.iter().chain(&audio.right).fold(0.0f32, |m, s| m.max(s.abs()));
    let peak_db = if peak > 0.0 { format!("{:.1} dBFS", 20.0 * peak.log10()) } else { "silent".into() };
    println!(
        "rendered {:.2} s ({} frames, {} voices, {} Hz, {} commands) to {}; peak {peak_db}; {} commands refused",
        cfg.frames as f64 / f64::from(cfg.sample_rate),
        cfg.frames,
        cfg.voices,
        cfg.sample_rate,
        cfg.commands.len(),
        cfg.output.display(),
        audio.rejected
    );
    Ok(())
}
