//! Typed errors of the shared-memory layer.

/// Why a region could not be created or attached, or a ring refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    /// The region does not start with the Chronus magic.
    #[error("not a Chronus region (magic {0:#018x})")]
    BadMagic(u64),
    /// The region was laid out by another version of Chronus.
    #[error("region layout version {found}, this binary speaks {expected}")]
    VersionMismatch {
        /// Version in the region.
        found: u32,
        /// Version of this binary.
        expected: u32,
    },
    /// The region belongs to another worker generation.
    #[error("region is for worker generation {found}, this worker is generation {expected}")]
    GenerationMismatch {
        /// Generation in the region.
        found: u64,
        /// Generation this worker was started for.
        expected: u64,
    },
    /// The memory file is smaller than its header says.
    #[error("region too small: {actual} bytes, needs {needed}")]
    BufTooSmall {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The region's contents are inconsistent.
    #[error("region corrupt: {0}")]
    BufCorrupt(&'static str),
    /// The geometry is unusable.
    #[error("bad region geometry: {0}")]
    BadGeometry(&'static str),
    /// An OS call failed.
    #[error("{call} failed")]
    Os {
        /// The call.
        call: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

impl IpcError {
    /// Maps an `io::Error` from `call`.
    pub(crate) fn os(call: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Os { call, source }
    }
}
