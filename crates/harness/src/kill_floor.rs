//! The kernel's floor for crash detection, measured on this machine in the
//! same run as the engine's: SIGKILL an idle, small process (`sleep`) and
//! time until its pidfd is readable, from a thread at the supervisor's
//! real-time priority when that is allowed — what the supervisor does for a
//! worker, minus everything the worker's size adds (the kernel unmaps a
//! dying process's pages before its pidfd reports the death).

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use chronus_sys::clock::monotonic_ns;

/// Priority the measuring thread asks for: the supervisor thread's.
const PRIORITY: i32 = 80;

/// One sample, µs: kill → pidfd readable of a fresh `sleep` process, timed
/// from a thread of its own (SCHED_FIFO when allowed, as the supervisor's
/// is). Takes a few milliseconds (the process is started and settles first).
///
/// # Errors
/// The OS error when `sleep` cannot be started or watched, or
/// [`io::ErrorKind::TimedOut`] if it did not end within a second.
pub fn sample() -> io::Result<f64> {
    std::thread::scope(|s| s.spawn(measure).join().unwrap_or_else(|_| Err(io::Error::other("panicked"))))
}

fn measure() -> io::Result<f64> {
    let _ = chronus_sys::sched::set_thread_fifo(PRIORITY);
    let mut child = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| {
        let pidfd = chronus_sys::process::pidfd_open(child.id())?;
        // Spawned means exec'd; let it reach its sleep.
        std::thread::sleep(Duration::from_millis(5));
        let t0 = monotonic_ns();
        chronus_sys::process::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL)?;
        if chronus_sys::process::poll_readable(&[pidfd.as_raw_fd()], 1_000_000) == 0 {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        Ok((monotonic_ns() - t0) as f64 / 1_000.0)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sample_is_a_positive_time() {
        let us = super::sample().expect("sleep can be started and killed");
        assert!(us > 0.0 && us < 1_000_000.0, "{us}");
    }
}
