//! The one OS layer of Chronus: every system call the other crates make,
//! and every `unsafe` block that talks to the kernel, each with its
//! `// SAFETY:` argument. A function that trusts a raw fd or a peer's
//! memory says so in its contract. See the README for the modules.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod clock;
pub mod death;
pub mod fd;
pub mod file;
pub mod futex;
pub mod memfd;
pub mod net;
pub mod process;
pub mod sandbox;
pub mod sched;

#[cfg(test)]
mod tests;

use std::io;

/// Turns a `-1` return into the thread's `errno` as an `io::Error`.
pub(crate) fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// A nix error as an `io::Error`.
pub(crate) fn io(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

pub use libc::{SIGABRT, SIGKILL, SIGSEGV, SIGSTOP, SIGSYS, SIGUSR1};
