//! Supervisor side: start a worker process on a region (`posix_spawn`, not
//! `fork`: see [`chronus_sys::process::spawn`]).

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use chronus_ipc::WorkerRegion;

use crate::entry::WorkerEnv;

/// The fd number a worker finds its region on.
pub const REGION_FD: i32 = 3;
/// The fd number a worker finds the bus on (read-only).
pub const BUS_FD: i32 = 4;

/// What to run as a worker: a program that calls [`crate::init`] for the
/// engine's DSP at the top of its `main`, and the arguments to run it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The program.
    pub exe: PathBuf,
    /// Its arguments (none for an ordinary program).
    pub args: Vec<OsString>,
}

impl WorkerCommand {
    /// `exe` with no arguments.
    pub fn new(exe: impl Into<PathBuf>) -> Self {
        Self { exe: exe.into(), args: Vec::new() }
    }

    /// This program: the usual case, one binary that is its own worker.
    /// Workers are started from the very file this process runs (Linux's
    /// `/proc/self/exe`), even if the path on disk was replaced since (a
    /// package upgrade, a rebuild), so a long-running supervisor never
    /// spawns workers of another version. `CHRONUS_WORKER_EXE=PATH` in the
    /// environment names another program instead (it must call
    /// [`crate::init`] for the same DSP).
    ///
    /// # Errors
    /// The error of [`std::env::current_exe`].
    pub fn current_exe() -> std::io::Result<Self> {
        if let Some(path) = std::env::var_os("CHRONUS_WORKER_EXE") {
            return Ok(Self::new(path));
        }
        let own = std::path::Path::new("/proc/self/exe");
        if own.exists() {
            return Ok(Self::new(own));
        }
        Ok(Self::new(std::env::current_exe()?))
    }

    /// This test binary, running only the test `name` (which calls
    /// [`crate::init`]): for checking a DSP from `cargo test`, where `main`
    /// is the test harness's. See [`crate::worker_test_entry`].
    ///
    /// # Errors
    /// The error of [`std::env::current_exe`].
    pub fn current_test(name: &str) -> std::io::Result<Self> {
        let mut cmd = Self::current_exe()?;
        cmd.args = ["--exact", name, "--nocapture", "--test-threads=1", "-q"].map(OsString::from).to_vec();
        Ok(cmd)
    }
}

/// A spawned worker process. Dropping it kills and reaps the process if it
/// was not waited for, so a caller that panics leaves no orphan or zombie.
pub type WorkerProcess = chronus_sys::process::Child;

fn cstring(s: impl AsRef<OsStr>) -> std::io::Result<CString> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

/// Starts `command` as a worker on `region` (fd 3) and the bus (`bus_fd`,
/// read-only, as fd 4), to render in `sandbox` once prepared (see
/// [`crate::sandbox`]), with [`crate::ENV`] saying so; stdin and stdout on
/// /dev/null, stderr inherited (so its one-line errors reach the user), and
/// this process's environment otherwise. It leads a process group of its
/// own (its poison trials' forks join it), so a Ctrl-C in the terminal
/// (SIGINT to the foreground group) reaches the supervisor only, which then
/// stops the workers cleanly; PR_SET_PDEATHSIG still ends them if it dies.
///
/// # Errors
/// Any error of spawning the process.
pub fn spawn_worker(
    command: &WorkerCommand,
    region: &WorkerRegion,
    bus_fd: BorrowedFd<'_>,
    rt_priority: Option<i32>,
    sandbox: crate::SandboxMode,
) -> std::io::Result<WorkerProcess> {
    let mut args = vec![cstring(&command.exe)?];
    for a in &command.args {
        args.push(cstring(a)?);
    }
    let worker_env = WorkerEnv {
        region_fd: REGION_FD,
        bus_fd: BUS_FD,
        epoch: region.epoch(),
        generation: region.generation(),
        parent_pid: Some(std::process::id()),
        rt_priority,
        sandbox,
    };
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != crate::ENV)
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    env.push(cstring(format!("{}={}", crate::ENV, worker_env.encode()))?);
    // The region goes to fd 3 first: a bus fd that is 3 here would be
    // overwritten before it is copied, so it is moved out of the way.
    let moved = (bus_fd.as_raw_fd() == REGION_FD).then(|| bus_fd.try_clone_to_owned()).transpose()?;
    let bus = moved.as_ref().map_or(bus_fd, AsFd::as_fd);
    let inherit = [(region.fd(), REGION_FD), (bus, BUS_FD)];
    chronus_sys::process::spawn(
        &command.exe,
        &args,
        &env,
        &chronus_sys::process::SpawnFds { inherit: &inherit, null_stdio: true },
    )
}
