//! `--latency` and `--cycle-budget`, shared by `play`, `bench` and `soak`.

use chronus::supervisor::{EngineConfig, Latency};

/// When a period's frames are rendered.
#[derive(Debug, clap::Args)]
pub struct LatencyArgs {
    /// When a period's frames are rendered: `pipelined` (ahead of the
    /// period that plays them: a period of slack for the workers, a period
    /// more latency) or `low` (inside the period that plays them, as JACK
    /// runs its clients: the output waits for the replicas up to
    /// --cycle-budget of the period; with --sink jack the block is JACK's
    /// period).
    #[arg(long, default_value = "pipelined", value_parser = ["pipelined", "low"])]
    latency: String,
    /// In `--latency low`, the share of each period the output may wait for
    /// the replicas (0 < F < 1); the rest is left to the graph.
    #[arg(long, default_value_t = Latency::DEFAULT_BUDGET, value_name = "F")]
    cycle_budget: f64,
}

impl LatencyArgs {
    /// Sets `cfg.latency` (checked by `EngineConfig::validate`).
    pub fn apply(&self, cfg: &mut EngineConfig) {
        if self.latency == "low" {
            cfg.latency = Latency::InCycle { budget: self.cycle_budget };
        }
    }
}

/// How `play`, `bench` and `soak` name the mode in what they print.
pub fn describe(latency: Latency) -> String {
    match latency.budget() {
        Some(b) => format!("latency low (in the cycle, {:.0}% of it for the replicas)", b * 100.0),
        None => "latency pipelined".to_string(),
    }
}
