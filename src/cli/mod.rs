//! Command-line interface: flags are parsed with clap, then validated into
//! plain config structs that the commands use.

mod bench;
mod check;
#[cfg(feature = "jack")]
mod jack;
mod latency;
mod osc_client;
mod play;
mod render;
mod send;
mod soak;
mod status;
mod synth;

use clap::{Parser, Subcommand};

use crate::exit::{Failure, TABLE};

/// Chronus: a real-time audio DSP engine that keeps playing when its DSP
/// process dies.
#[derive(Debug, Parser)]
#[command(name = "chronus", version, about, after_help = TABLE)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start the engine and play; control it over OSC (see docs/osc.md).
    Play(Box<play::PlayArgs>),
    /// Send one OSC message to a running engine, e.g. `send /note_on 1 440 0.5`.
    Send(send::SendArgs),
    /// Show a running engine's health, workers and counters.
    Status(status::StatusArgs),
    /// Render a score or a command journal offline to a 32-bit float stereo WAV.
    Render(render::RenderArgs),
    /// Benchmarks: `chronus bench failover`.
    Bench(bench::BenchArgs),
    /// A long run with faults of every kind; writes a report (JSON, Markdown, SVG).
    Soak(soak::SoakArgs),
    /// Check that the DSP is deterministic: a score rendered by worker
    /// processes, in-process, and from a snapshot must agree bit for bit,
    /// and the workers make no system call their sandbox forbids.
    Check(check::CheckArgs),
}

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Cmd::Play(args) => play::run(*args),
        Cmd::Send(args) => send::run(args),
        Cmd::Status(args) => status::run(args),
        Cmd::Render(args) => render::run(args),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Soak(args) => soak::run(args),
        Cmd::Check(args) => check::run(args),
    }
}
