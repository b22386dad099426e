//! Errors of the text formats.

use crate::AddressError;

/// A journal or score could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A line is not valid.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A line names an unusable command.
    #[error("line {line}")]
    Command {
        /// 1-based line number.
        line: usize,
        /// What is wrong with the command.
        source: AddressError,
    },
    /// The header is missing or wrong.
    #[error("not a Chronus journal: {0}")]
    Header(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
