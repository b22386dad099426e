//! `chronus status`: ask a running engine how it is.

use std::time::Duration;

use rosc::OscType;

use super::osc_client::request;
use crate::exit::{Failure, UNAVAILABLE};

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

/// The fields of `/status.reply`, in order.
const FIELDS: [&str; 28] = [
    "health",
    "active_pid",
    "standby_pid",
    "failovers",
    "underrun_frames",
    "frames_played",
    "sample_rate",
    "block",
    "active_voices",
    "events_stamped",
    "osc_errors",
    "machine_stall_frames",
    "events_coalesced",
    "dsp",
    "device_xruns",
    "device_xrun_frames",
    "excised_commands",
    "overloaded",
    "overloads",
    "osc_errors_unsent",
    "spares_ready",
    "poison_refusals",
    "workers_spawned",
    "osc_denied",
    "files_refused",
    "sandbox",
    "sandbox_kills",
    "last_forbidden_call",
];

fn value(a: &OscType) -> serde_json::Value {
    match a {
        OscType::Int(i) => (*i).into(),
        OscType::Long(l) => (*l).into(),
        OscType::String(s) => s.clone().into(),
        OscType::Float(f) => f64::from(*f).into(),
        other => format!("{other:?}").into(),
    }
}

/// Runs `chronus status`.
pub fn run(args: StatusArgs) -> Result<(), Failure> {
    let reply = request(&args.to, "/status", vec![], Duration::from_millis(args.timeout_ms))?
        .filter(|m| m.addr == "/status.reply")
        .ok_or_else(|| Failure::new(UNAVAILABLE, format!("no chronus engine answered at {}", args.to)))?;
    let map: serde_json::Map<String, serde_json::Value> =
        FIELDS.iter().zip(&reply.args).map(|(k, v)| ((*k).to_owned(), value(v))).collect();
    if args.json {
        println!("{}", serde_json::Value::Object(map));
    } else {
        let get =
            |k: &str| map.get(k).map_or_else(String::new, |v| v.to_string().trim_matches('"').to_owned());
        let secs = map.get("frames_played").and_then(|v| v.as_i64()).unwrap_or(0) as f64
            / map.get("sample_rate").and_then(|v| v.as_i64()).unwrap_or(48_000).max(1) as f64;
        println!(
            "{}  active pid {}  standby pid {}  failovers {}  underrun frames {} ({} machine stall)  device xruns {} ({} frames)  played {:.1} s  {} Hz, block {}  {}: {} sounding  events {} ({} coalesced, {} cut out as poisons)  overloaded {} ({} times)  spares ready {}  sandbox {} ({} killed{})  OSC errors {} ({} senders denied, {} file reads refused)",
            get("health"),
            get("active_pid"),
            get("standby_pid"),
            get("failovers"),
            get("underrun_frames"),
            get("machine_stall_frames"),
            get("device_xruns"),
            get("device_xrun_frames"),
            secs,
            get("sample_rate"),
            get("block"),
            get("dsp"),
            get("active_voices"),
            get("events_stamped"),
            get("events_coalesced"),
            get("excised_commands"),
            if get("overloaded") == "1" { "yes" } else { "no" },
            get("overloads"),
            get("spares_ready"),
            get("sandbox"),
            get("sandbox_kills"),
            match get("last_forbidden_call").as_str() {
                "" => String::new(),
                call => format!(", last for {call}"),
            },
            get("osc_errors"),
            get("osc_denied"),
            get("files_refused"),
        );
    }
    Ok(())
}
