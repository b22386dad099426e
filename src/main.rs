//! The `chronus` command. See `chronus --help`.
#![forbid(unsafe_code)]

mod cli;
mod exit;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The supervisor re-executes this binary for its DSP workers: in one of
    // them, this call runs the worker and never returns.
    chronus::worker::init::<chronus::synth::Synth>();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            eprintln!("chronus: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
