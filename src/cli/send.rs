//! `chronus send`: one OSC message to a running engine.

use std::time::Duration;

use rosc::OscType;

use super::osc_client::{request, typed};
use crate::exit::{DATA_ERR, Failure};

/// Flags of `chronus send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The engine's OSC address.
    #[arg(long, default_value = chronus::osc::DEFAULT_ADDR, value_name = "ADDR:PORT")]
    to: String,
    /// The address, e.g. /note_on.
    address: String,
    /// Its arguments: whole numbers are sent as ints, other numbers as
    /// floats, the rest as strings (e.g. `1 440 0.5`, or `cutoff 1200`).
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
}

/// Runs `chronus send`. An `/error` reply is printed and ends with exit 65.
pub fn run(args: SendArgs) -> Result<(), Failure> {
    let osc_args: Vec<OscType> = args.args.iter().map(|a| typed(a)).collect();
    let reply = request(&args.to, &args.address, osc_args, Duration::from_millis(150))?;
    match reply {
        Some(m) if m.addr == "/error" => {
            let text = m.args.iter().filter_map(|a| a.clone().string()).collect::<Vec<_>>().join(": ");
            Err(Failure::new(DATA_ERR, format!("the engine refused it: {text}")))
        }
        Some(m) => {
            println!("{} {}", m.addr, m.args.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" "));
            Ok(())
        }
        None => Ok(()),
    }
}
