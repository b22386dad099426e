//! Supervisor side: start a worker process on a region.
//!
//! Workers are started with `posix_spawn` (glibc: `clone(CLONE_VM |
//! CLONE_VFORK)`), not `fork`: the supervisor process also runs the
//! real-time output thread, and a fork would copy its page tables under the
//! mmap lock and then make its writes copy-on-write until the child execs.

use std::ffi::{CString, OsStr};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use chronus_ipc::Region;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, posix_spawn};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The fd number a worker finds its region on.
pub const WORKER_FD: i32 = 3;

/// A spawned worker process. Dropping it kills and reaps the process if it
/// was not waited for, so a caller that panics leaves no orphan or zombie.
#[derive(Debug)]
pub struct WorkerProcess {
    pid: Pid,
    status: Option<WaitStatus>,
}

fn cstring(s: impl AsRef<OsStr>) -> std::io::Result<CString> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

/// Starts `exe worker --fd 3 --generation G --parent-pid P [--rt-priority N]`
/// with the region as fd 3, stdin and stdout on /dev/null, stderr inherited
/// (so its one-line errors reach the user), and this process's environment.
///
/// # Errors
/// Any error of spawning the process.
pub fn spawn_worker(exe: &Path, region: &Region, rt_priority: Option<i32>) -> std::io::Result<WorkerProcess> {
    let mut args = vec![
        cstring(exe)?,
        cstring("worker")?,
        cstring("--fd")?,
        cstring(WORKER_FD.to_string())?,
        cstring("--generation")?,
        cstring(region.generation().to_string())?,
        cstring("--parent-pid")?,
        cstring(std::process::id().to_string())?,
    ];
    if let Some(p) = rt_priority {
        args.push(cstring(format!("--rt-priority={p}"))?);
    }
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let mut actions = PosixSpawnFileActions::init()?;
    // dup2 onto the same number clears close-on-exec (glibc ≥ 2.29, POSIX 2024).
    actions.add_dup2(region.fd().as_raw_fd(), WORKER_FD)?;
    actions.add_open(0, "/dev/null", OFlag::O_RDONLY, Mode::empty())?;
    actions.add_open(1, "/dev/null", OFlag::O_WRONLY, Mode::empty())?;
    // Its own process group: a Ctrl-C in the terminal (SIGINT to the
    // foreground group) reaches the supervisor only, which then stops the
    // workers cleanly. PR_SET_PDEATHSIG still ends them if it dies.
    let mut attr = PosixSpawnAttr::init()?;
    attr.set_flags(nix::spawn::PosixSpawnFlags::POSIX_SPAWN_SETPGROUP)?;
    attr.set_pgroup(Pid::from_raw(0))?;
    let pid = posix_spawn(exe, &actions, &attr, &args, &env)?;
    Ok(WorkerProcess { pid, status: None })
}

impl WorkerProcess {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Reaps the process if it has ended; never blocks.
    ///
    /// # Errors
    /// The `waitpid` error.
    pub fn try_wait(&mut self) -> std::io::Result<Option<WaitStatus>> {
        if self.status.is_none() {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG))? {
                WaitStatus::StillAlive => {}
                status => self.status = Some(status),
            }
        }
        Ok(self.status)
    }

    /// Waits for the process to end and reaps it.
    ///
    /// # Errors
    /// The `waitpid` error.
    pub fn wait(&mut self) -> std::io::Result<WaitStatus> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            match waitpid(self.pid, None) {
                Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                    self.status = Some(status)
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// "exited with status 1", "killed by SIGKILL", …
    pub fn describe(status: &WaitStatus) -> String {
        match status {
            WaitStatus::Exited(_, code) => format!("exited with status {code}"),
            WaitStatus::Signaled(_, sig, _) => format!("killed by {sig}"),
            other => format!("{other:?}"),
        }
    }

    /// Whether it ended with exit status 0.
    pub fn success(status: &WaitStatus) -> bool {
        matches!(status, WaitStatus::Exited(_, 0))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.wait();
        }
    }
}
