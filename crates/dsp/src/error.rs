//! Typed errors of the seam.

use std::borrow::Cow;

/// Why a DSP could not be prepared, or refused a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DspError {
    /// The sample rate or block size is one the DSP cannot run at.
    #[error("unusable setup: {0}")]
    InvalidSetup(Cow<'static, str>),
    /// The DSP's own configuration is unusable (or did not decode).
    #[error("invalid configuration: {0}")]
    InvalidConfig(Cow<'static, str>),
    /// A snapshot does not fit this DSP or holds impossible values; nothing
    /// was changed.
    #[error("snapshot refused: {0}")]
    BadSnapshot(Cow<'static, str>),
    /// The DSP's address table is unusable.
    #[error(transparent)]
    Table(#[from] TableError),
}

/// Why an address table was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// An address is malformed or conflicts with another.
    #[error("address {path}: {why}")]
    Bad {
        /// The address.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// More addresses than event indices.
    #[error("{0} addresses: more than an event can index")]
    TooMany(usize),
}

/// Why an address and its arguments are not an event.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// No such address.
    #[error("unknown address {path} (known: {known})")]
    UnknownAddress {
        /// The address.
        path: String,
        /// The addresses the DSP knows.
        known: String,
    },
    /// Wrong number of arguments.
    #[error("{address} takes {expected} argument{} ({usage}), got {got}", if *.expected == 1 { "" } else { "s" })]
    WrongArgCount {
        /// The address.
        address: &'static str,
        /// How many it takes.
        expected: usize,
        /// Its argument names.
        usage: String,
        /// How many came.
        got: usize,
    },
    /// An argument has the wrong type.
    #[error("{address}: argument {index} ({name}) must be {expected}")]
    WrongArgType {
        /// The address.
        address: &'static str,
        /// 1-based position.
        index: usize,
        /// The argument's name.
        name: &'static str,
        /// What it must be.
        expected: String,
    },
    /// A whole number outside its range.
    #[error("{address}: {name} {value} is out of range {min}..={max}")]
    OutOfRange {
        /// The address.
        address: &'static str,
        /// The argument's name.
        name: &'static str,
        /// What came.
        value: i64,
        /// Smallest accepted.
        min: i64,
        /// Largest accepted.
        max: i64,
    },
    /// NaN or an infinity.
    #[error("{address}: {name} must be a finite number")]
    NonFinite {
        /// The address.
        address: &'static str,
        /// The argument's name.
        name: &'static str,
    },
    /// A name that is not in the argument's list.
    #[error("{address}: unknown {name} '{got}' (known: {known})")]
    UnknownName {
        /// The address.
        address: &'static str,
        /// The argument's name.
        name: &'static str,
        /// What came.
        got: String,
        /// The names accepted.
        known: String,
    },
    /// The DSP refused it (its own check, e.g. a global-only parameter sent
    /// to one voice).
    #[error("{address}: {message}")]
    Refused {
        /// The address.
        address: String,
        /// Why.
        message: String,
    },
}
