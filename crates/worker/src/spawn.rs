//! Supervisor side: start a worker process on a region.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use chronus_ipc::Region;

/// The fd number a worker finds its region on.
pub const WORKER_FD: i32 = 3;

/// Starts `exe worker --fd 3 --generation G --parent-pid P [--rt-priority N]` with the region
/// inherited as fd 3 and stdin closed. The worker's stderr is inherited, so
/// its one-line errors reach the user.
///
/// # Errors
/// Any error of spawning the process.
pub fn spawn_worker(exe: &Path, region: &Region, rt_priority: Option<i32>) -> std::io::Result<Child> {
    let mut cmd = Command::new(exe);
    cmd.arg("worker")
        .arg("--fd")
        .arg(WORKER_FD.to_string())
        .arg("--generation")
        .arg(region.generation().to_string())
        .arg("--parent-pid")
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .args(rt_priority.map(|p| format!("--rt-priority={p}")))
        .stdout(Stdio::null());
    chronus_ipc::inherit_fd(&mut cmd, region.fd(), WORKER_FD);
    cmd.spawn()
}
