//! `chronus status`: ask a running engine how it is.

use std::time::Duration;

use super::osc_client::request;
use chronus::osc::StatusReply;

use crate::exit::{DATA_ERR, Failure, UNAVAILABLE};

/// Flags of `chronus status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The engine's OSC address.
    #[arg(long, default_value = chronus::osc::DEFAULT_ADDR, value_name = "ADDR:PORT")]
    to: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// How long to wait for the reply, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    timeout_ms: u64,
}

/// Runs `chronus status`.
pub fn run(args: StatusArgs) -> Result<(), Failure> {
    let reply = request(&args.to, "/status", vec![], Duration::from_millis(args.timeout_ms))?
        .filter(|m| m.addr == "/status.reply")
        .ok_or_else(|| Failure::new(UNAVAILABLE, format!("no chronus engine answered at {}", args.to)))?;
    let r = StatusReply::decode(&reply.args).map_err(|e| Failure::new(DATA_ERR, e))?;
    if args.json {
        println!("{}", serde_json::to_string(&r).map_err(|e| Failure::new(DATA_ERR, e))?);
        return Ok(());
    }
    let last_call = if r.last_forbidden_call.is_empty() {
        String::new()
    } else {
        format!(", last for {}", r.last_forbidden_call)
    };
    println!(
        "{}  active pid {}  standby pid {}  failovers {}  underrun frames {} ({} machine stall)  device xruns {} ({} frames)  played {:.1} s  {} Hz, block {}  {}: {} sounding  events {} ({} coalesced, {} cut out as poisons)  overloaded {} ({} times)  spares ready {}  sandbox {} ({} killed{last_call})  OSC errors {} ({} senders denied, {} file reads refused)",
        r.health,
        r.active_pid,
        r.standby_pid,
        r.failovers,
        r.underrun_frames,
        r.machine_stall_frames,
        r.device_xruns,
        r.device_xrun_frames,
        r.seconds_played(),
        r.sample_rate,
        r.block,
        r.dsp,
        r.active_voices,
        r.events_stamped,
        r.events_coalesced,
        r.excised_commands,
        if r.overloaded != 0 { "yes" } else { "no" },
        r.overloads,
        r.spares_ready,
        r.sandbox,
        r.sandbox_kills,
        r.osc_errors,
        r.osc_denied,
        r.files_refused,
    );
    Ok(())
}
