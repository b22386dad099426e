//! `chronus worker`: the DSP worker process (started by the supervisor).

use chronus::worker::{INJECTED_PANIC, WorkerArgs, WorkerError, run_worker};

use crate::exit::{Failure, ORPHANED, OS_ERR, PROTOCOL};

/// Flags of `chronus worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerCliArgs {
    /// The inherited region fd.
    #[arg(long)]
    fd: i32,
    /// The worker generation the region must carry.
    #[arg(long)]
    generation: u64,
    /// The supervisor's pid; the worker refuses to run under another parent.
    #[arg(long)]
    parent_pid: Option<u32>,
    /// Run under SCHED_FIFO at this priority, if permitted.
    #[arg(long)]
    rt_priority: Option<i32>,
}

/// Runs the worker until it is stopped.
pub fn run(args: WorkerCliArgs) -> Result<(), Failure> {
    // A panic (a bug, or an injected fault) ends the worker with one line;
    // the supervisor reports it and replaces the worker.
    let generation = args.generation;
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() == Some(&INJECTED_PANIC) {
            // Asked for: one calm line, so logs don't cry wolf.
            eprintln!("chronus worker generation {generation}: {INJECTED_PANIC} (as asked)");
        } else {
            eprintln!("chronus worker generation {generation}: {info}");
        }
    }));
    let worker_args = WorkerArgs {
        fd: args.fd,
        generation: args.generation,
        parent_pid: args.parent_pid,
        rt_priority: args.rt_priority,
    };
    run_worker(worker_args).map_err(|e| {
        let code = match e {
            WorkerError::Region(_) | WorkerError::Synth(_) => PROTOCOL,
            WorkerError::Orphaned { .. } => ORPHANED,
            _ => OS_ERR,
        };
        Failure {
            code,
            error: anyhow::Error::new(e).context(format!("worker generation {}", args.generation)),
        }
    })
}
