//! Exit codes of the `chronus` binary (sysexits-style), and the error type
//! that carries one.

use std::fmt::Display;

/// Success.
pub const OK: u8 = 0;
/// A run failed its checks (frames lost, not bit-exact, no recovery).
pub const CHECK_FAILED: u8 = 1;
/// Bad command-line usage (clap's own code).
pub const USAGE: u8 = 2;
/// The input (score, journal) is malformed.
pub const DATA_ERR: u8 = 65;
/// An input file cannot be opened.
pub const NO_INPUT: u8 = 66;
/// No engine answered (`status`).
pub const UNAVAILABLE: u8 = 69;
/// An OS call failed.
pub const OS_ERR: u8 = 71;
/// An output file cannot be created or written.
pub const CANT_CREATE: u8 = 73;
/// No usable audio device (with `--sink device` or `--device NAME`).
pub const NO_DEVICE: u8 = 74;
/// Another supervisor holds the instance name (`play --name`).
pub const LEASE_HELD: u8 = 77;
/// The engine gave up respawning workers (`--exit-on-quarantine`).
pub const QUARANTINED: u8 = 78;
/// OSC would listen beyond loopback with nobody beyond it allowed
/// (`play --osc` without `--allow`).
pub const EXPOSED: u8 = 79;

/// The exit-code table, for `--help`.
pub const TABLE: &str = "\
Exit codes:
  0   success
  1   a benchmark or soak run failed its checks (frames lost, not bit-exact, …)
  2   bad command-line arguments
  65  malformed input (score, journal), with the line number; or the
      engine refused what `send` sent (its /error reply is printed)
  66  an input file cannot be opened
  69  no engine answered at the OSC address (status)
  71  an operating-system call failed
  73  an output file cannot be created or written
  74  no usable audio device (--sink device, or --device NAME)
  75  (worker) the supervisor was gone before the worker started
  76  (worker) refused to run: shared memory (magic, version, epoch,
      generation, size) or another DSP than this program's
  77  another chronus supervisor holds the instance name (play --name)
  78  the engine quarantined its workers after repeated failed restarts
      (play --exit-on-quarantine)
  79  OSC would listen beyond loopback and nobody beyond it is allowed
      (play --osc ADDR without --allow CIDR)";

/// An error with the exit code it ends the program with.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What went wrong, shown as one line.
    pub error: anyhow::Error,
}

/// Attaches an exit code to an error.
pub trait ExitCodeExt<T> {
    /// Fails with `code` and `context` prepended to the error.
    fn or_exit(self, code: u8, context: impl Display) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> ExitCodeExt<T> for Result<T, E> {
    fn or_exit(self, code: u8, context: impl Display) -> Result<T, Failure> {
        self.map_err(|e| Failure { code, error: e.into().context(context.to_string()) })
    }
}

impl Failure {
    /// A failure with a plain message.
    pub fn new(code: u8, message: impl Display) -> Self {
        Self { code, error: anyhow::anyhow!("{message}") }
    }
}
