//! Why a worker could not start or go on.

/// A worker failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The region or bus was refused (wrong magic, version, epoch,
    /// generation, size).
    #[error("shared memory refused")]
    Region(#[from] chronus_ipc::IpcError),
    /// The DSP could not be prepared.
    #[error("cannot prepare the DSP")]
    Dsp(#[from] chronus_dsp::DspError),
    /// The DSP this program runs is not the one the engine asked for, or
    /// does not fit its regions.
    #[error("{0}")]
    Mismatch(String),
    /// The environment variable that makes a process a worker is malformed.
    #[error("malformed CHRONUS_WORKER: {0}")]
    BadEnvironment(String),
    /// The supervisor is gone (or was never our parent).
    #[error("the supervisor (pid {expected}) is not this worker's parent any more")]
    Orphaned {
        /// The parent pid the worker was started for.
        expected: u32,
    },
    /// The event log went a whole lap past this worker: it cannot stay in
    /// lockstep.
    #[error("the event log went a lap past this worker")]
    Lapped,
    /// The sandbox it was asked to run in could not be set up (it does not
    /// run without it).
    #[error("cannot enter the sandbox: {0} (an embedder may switch it off: EngineConfig::sandbox)")]
    Sandbox(String),
    /// An OS call failed.
    #[error("{what}")]
    Os {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

impl WorkerError {
    /// The exit code a worker process ends with for this error: 75 orphaned,
    /// 76 refused (shared memory, DSP mismatch, environment, lapped), 71 an
    /// OS call failed or the sandbox could not be set up.
    pub fn exit_code(&self) -> u8 {
        match self {
            WorkerError::Orphaned { .. } => crate::EXIT_ORPHANED,
            WorkerError::Os { .. } | WorkerError::Sandbox(_) => crate::EXIT_OS,
            _ => crate::EXIT_REFUSED,
        }
    }
}
