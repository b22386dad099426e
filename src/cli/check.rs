//! `chronus check`: is the DSP deterministic, and does it keep to its
//! sandbox? A score rendered by two worker processes, in-process, and by a
//! worker started from a snapshot halfway, compared bit for bit; the
//! workers' sandbox audits, naming every system call it forbids that the
//! DSP made.

use std::path::PathBuf;

use chronus::dsp::Setup;
use chronus::worker::WorkerCommand;

use crate::exit::{CHECK_FAILED, DATA_ERR, ExitCodeExt, Failure, NO_INPUT, OS_ERR};

/// Flags of `chronus check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A score to render (default: the built-in demo).
    #[arg(long, value_name = "FILE")]
    score: Option<PathBuf>,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 48_000)]
    sample_rate: u32,
    /// Frames per block.
    #[arg(long, default_value_t = 256)]
    block: u32,
    /// Voices.
    #[arg(long, default_value_t = 64)]
    voices: u32,
}

/// Runs `chronus check`.
pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let spec = super::synth::spec(args.voices)?;
    let setup = Setup { sample_rate: args.sample_rate, block: args.block.clamp(1, 8_192) };
    let (events, frames) = match &args.score {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).or_exit(NO_INPUT, format!("cannot read {}", path.display()))?;
            let events =
                chronus::journal::parse_score(&text, &spec, &setup).or_exit(DATA_ERR, path.display())?;
            let frames = chronus::journal::default_length(&events, setup.sample_rate, 1.0);
            (events, frames)
        }
        None => super::synth::demo_score(&spec, &setup)?,
    };
    let worker = WorkerCommand::current_exe().or_exit(OS_ERR, "cannot find the chronus binary")?;
    let report = chronus::harness::check_determinism(&spec, &worker, setup, &events, frames)
        .or_exit(OS_ERR, "the check could not run")?;
    println!("{}: {report}", spec.name());
    if report.passed() {
        println!("deterministic: yes");
        Ok(())
    } else {
        Err(Failure::new(CHECK_FAILED, format!("{} is not deterministic: {report}", spec.name())))
    }
}
