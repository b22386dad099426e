//! Errors of the engine API.

/// Why the engine could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The configuration is unusable.
    #[error("invalid engine configuration: {0}")]
    Config(&'static str),
    /// Shared memory could not be set up.
    #[error("shared memory")]
    Ipc(#[from] chronus_ipc::IpcError),
    /// A worker could not be started or did not become ready.
    #[error("worker start-up failed: {0}")]
    WorkerStart(String),
    /// Fault injection was asked for but not enabled.
    #[error("fault injection is disabled (start the engine with faults enabled)")]
    FaultsDisabled,
    /// There is no worker in that role now.
    #[error("no {0} worker right now")]
    NoSuchWorker(&'static str),
    /// The DSP could not be prepared.
    #[error("the DSP")]
    Dsp(#[from] chronus_dsp::DspError),
    /// The event was refused (the DSP's table or checks); the message says
    /// why, fit to show the sender.
    #[error("{0}")]
    Refused(String),
    /// The command queue is full (the output is not consuming).
    #[error("command queue full")]
    QueueFull,
    /// An engine thread failed.
    #[error("engine thread failed: {0}")]
    Thread(String),
    /// Writing the recording or journal failed.
    #[error("writing output files failed: {0}")]
    Output(String),
}
