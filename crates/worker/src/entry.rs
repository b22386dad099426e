//! Becoming a worker: the supervisor re-executes the program with
//! [`crate::ENV`] set; [`init`] at the top of `main` notices and turns the
//! process into a worker for DSP `D`, never returning.

use std::ffi::OsStr;
use std::os::fd::RawFd;

use chronus_dsp::{Dsp, DspSpec, Setup};
use chronus_ipc::{Bus, SandboxMode, WorkerRegion};
use chronus_sys::process::ThreadCounter;

use crate::{INJECTED_PANIC, Worker, WorkerError, die_with_parent, enter_realtime};

/// What the supervisor passes a worker, through [`crate::ENV`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerEnv {
    /// The inherited worker region fd.
    pub region_fd: RawFd,
    /// The inherited bus fd (read-only).
    pub bus_fd: RawFd,
    /// The engine run.
    pub epoch: u64,
    /// The worker generation the region must carry.
    pub generation: u64,
    /// The supervisor's pid; the worker exits if its parent is another.
    pub parent_pid: Option<u32>,
    /// Run under SCHED_FIFO at this priority, if permitted.
    pub rt_priority: Option<i32>,
    /// The sandbox to render in (once prepared).
    pub sandbox: SandboxMode,
}

impl WorkerEnv {
    /// The variable's value: `v3 region=3 bus=4 epoch=E generation=G
    /// sandbox=on|off|audit [parent=P] [rt=N]`.
    pub fn encode(&self) -> String {
        let mut s = format!(
            "v3 region={} bus={} epoch={} generation={} sandbox={}",
            self.region_fd,
            self.bus_fd,
            self.epoch,
            self.generation,
            self.sandbox.name()
        );
        if let Some(p) = self.parent_pid {
            s.push_str(&format!(" parent={p}"));
        }
        if let Some(p) = self.rt_priority {
            s.push_str(&format!(" rt={p}"));
        }
        s
    }

    /// Parses the variable's value.
    ///
    /// # Errors
    /// [`WorkerError::BadEnvironment`] saying what is wrong.
    pub fn parse(value: &OsStr) -> Result<Self, WorkerError> {
        let bad = |why: &str| WorkerError::BadEnvironment(why.to_owned());
        let text = value.to_str().ok_or_else(|| bad("not UTF-8"))?;
        let mut words = text.split_whitespace();
        if words.next() != Some("v3") {
            return Err(bad("expected version v3 (a supervisor of another Chronus version?)"));
        }
        let mut env = Self {
            region_fd: -1,
            bus_fd: -1,
            epoch: 0,
            generation: 0,
            parent_pid: None,
            rt_priority: None,
            sandbox: SandboxMode::Enforce,
        };
        let (mut epoch, mut generation) = (false, false);
        for word in words {
            let (key, value) = word.split_once('=').ok_or_else(|| bad(word))?;
            let num = |what: &str| value.parse::<u64>().map_err(|_| bad(what));
            match key {
                "region" => env.region_fd = num("region")? as RawFd,
                "bus" => env.bus_fd = num("bus")? as RawFd,
                "epoch" => (env.epoch, epoch) = (num("epoch")?, true),
                "generation" => (env.generation, generation) = (num("generation")?, true),
                "parent" => env.parent_pid = Some(num("parent")? as u32),
                "rt" => env.rt_priority = Some(num("rt")? as i32),
                "sandbox" => env.sandbox = SandboxMode::from_name(value).ok_or_else(|| bad(word))?,
                _ => return Err(bad(word)),
            }
        }
        if env.region_fd < 0 || env.bus_fd < 0 || !epoch || !generation {
            return Err(bad("region, bus, epoch and generation are required"));
        }
        Ok(env)
    }
}

/// Turns this process into a Chronus worker for DSP `D` if the supervisor
/// started it as one, and returns at once otherwise. Call it first thing in
/// `main`, before any thread is started:
///
/// ```no_run
/// # use chronus_dsp::*;
/// # struct MyDsp;
/// # impl Dsp for MyDsp {
/// #     type Config = ();
/// #     const NAME: &'static str = "my-dsp/1";
/// #     fn addresses(_: &()) -> Vec<AddressSpec> { vec![] }
/// #     fn prepare(_: &Setup, _: &()) -> Result<Self, DspError> { Ok(MyDsp) }
/// #     fn snapshot_len(&self) -> usize { 0 }
/// #     fn render(&mut self, block: Block<'_>) { block.left.fill(0.0); block.right.fill(0.0); }
/// #     fn snapshot(&self, _: &mut [u8]) {}
/// #     fn restore(&mut self, _: &[u8]) -> Result<(), DspError> { Ok(()) }
/// #     fn reset(&mut self) {}
/// # }
/// fn main() {
///     chronus_worker::init::<MyDsp>();
///     // … the program: start an engine carrying MyDsp, which re-executes
///     // this binary for its workers.
/// }
/// ```
///
/// A worker process attaches to the shared memory it inherited, prepares
/// `D` with the engine's configuration, renders until told to stop and
/// exits (0 when stopped, [`WorkerError::exit_code`] when it cannot run).
/// It never returns from here.
pub fn init<D: Dsp>() {
    let Some(value) = std::env::var_os(crate::ENV) else { return };
    let code = match WorkerEnv::parse(&value) {
        Ok(env) => run::<D>(env),
        Err(e) => report(&e, None),
    };
    std::process::exit(i32::from(code));
}

fn report(e: &WorkerError, generation: Option<u64>) -> u8 {
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    match generation {
        Some(g) => eprintln!("chronus worker generation {g}: {msg}"),
        None => eprintln!("chronus worker: {msg}"),
    }
    e.exit_code()
}

/// Runs a worker process for DSP `D` to the end; returns its exit code.
pub fn run<D: Dsp>(env: WorkerEnv) -> u8 {
    let generation = env.generation;
    // A panic (a bug, or an injected fault) ends the worker with one line;
    // the supervisor reports it and replaces the worker.
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() == Some(&INJECTED_PANIC) {
            eprintln!("chronus worker generation {generation}: {INJECTED_PANIC} (as asked)");
        } else {
            eprintln!("chronus worker generation {generation}: {info}");
        }
    }));
    match run_inner::<D>(env) {
        Ok(()) => 0,
        Err(e) => report(&e, Some(generation)),
    }
}

fn run_inner<D: Dsp>(env: WorkerEnv) -> Result<(), WorkerError> {
    die_with_parent(env.parent_pid)?;
    let os = |what| move |source| WorkerError::Os { what, source };
    // No core dumps of DSP state, and a process of the same (non-root)
    // user — another replica's DSP among them — cannot ptrace this one or
    // open its /proc files (its fds, its memory).
    chronus_sys::process::set_undumpable().map_err(os("PR_SET_DUMPABLE"))?;
    let region = chronus_sys::fd::adopt_fd(env.region_fd).map_err(os("inherited region fd"))?;
    let bus = chronus_sys::fd::adopt_fd(env.bus_fd).map_err(os("inherited bus fd"))?;
    // Both live as long as the process (the sandbox's SIGSYS handler
    // writes into the region until it ends).
    let region: &'static WorkerRegion =
        Box::leak(Box::new(WorkerRegion::attach(region, env.epoch, env.generation)?));
    let bus: &'static Bus = Box::leak(Box::new(Bus::attach(bus, env.epoch)?));
    if bus.dsp_name() != D::NAME {
        return Err(WorkerError::Mismatch(format!(
            "this program runs DSP '{}', the engine asked for '{}'",
            D::NAME,
            bus.dsp_name()
        )));
    }
    let g = region.geometry();
    let setup = Setup { sample_rate: g.sample_rate, block: g.block };
    let dsp = DspSpec::from_json::<D>(bus.config_json())?.prepare(&setup)?;
    // Armed before it says it is ready: the kernel marks the word and
    // wakes the supervisor as this process exits, before it unmaps its
    // memory (the pidfd only after). Without it, its pidfd alone tells.
    // (This thread, the worker's only one, uses no robust pthread mutex.)
    if let Err(e) = chronus_sys::death::arm(&region.control().death) {
        eprintln!(
            "chronus worker generation {generation}: no death word ({e}): its pidfd alone will tell its death",
            generation = env.generation
        );
    }
    let mut worker = Worker::new(region, bus, dsp)?;
    // Prepared at normal priority: only the render loop runs real-time.
    enter_realtime(env.rt_priority);
    // Opened before the sandbox, which lets it be read but nothing opened.
    let threads = ThreadCounter::open().map_err(os("open /proc/self/stat"))?;
    let leads_group = chronus_sys::process::leads_own_group();
    // Everything prepared: from here on, only the render loop's calls.
    crate::sandbox::enter(region, env.sandbox, &threads, leads_group)?;
    worker.fork_trials(env.rt_priority, threads, env.sandbox, leads_group);
    worker.run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_round_trips_and_bad_values_are_refused() {
        let env = WorkerEnv {
            region_fd: 3,
            bus_fd: 4,
            epoch: 123,
            generation: 9,
            parent_pid: Some(77),
            rt_priority: Some(60),
            sandbox: SandboxMode::Audit,
        };
        assert_eq!(WorkerEnv::parse(OsStr::new(&env.encode())).unwrap(), env);
        for bad in [
            "",
            "v1 region=3",
            "v2 region=3 bus=4 epoch=1 generation=1",
            "v3 region=3 bus=4",
            "v3 region=x bus=4 epoch=1 generation=1",
            "v3 region=3 bus=4 epoch=1 generation=1 sandbox=maybe",
            "v3 what=1",
        ] {
            assert!(WorkerEnv::parse(OsStr::new(bad)).is_err(), "{bad}");
        }
    }
}
