//! Why a worker could not start or go on.

/// A worker failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The region was refused (wrong magic, version, generation, size).
    #[error("shared memory refused")]
    Region(#[from] chronus_ipc::IpcError),
    /// The synth could not be built for the region's geometry.
    #[error("cannot build the synth")]
    Synth(#[from] chronus_dsp::DspError),
    /// The supervisor is gone (or was never our parent).
    #[error("the supervisor (pid {expected}) is not this worker's parent any more")]
    Orphaned {
        /// The parent pid the worker was started for.
        expected: u32,
    },
    /// An OS call failed.
    #[error("{what}")]
    Os {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}
