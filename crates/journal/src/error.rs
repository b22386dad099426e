//! Errors of the text formats.

use chronus_dsp::AddressError;

/// A journal or score could not be read, or rendered.
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
    /// The DSP the journal names cannot be made here.
    #[error("{0}")]
    Dsp(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl JournalError {
    /// The message with its causes, on one line (`line 4: /note_on takes …`).
    pub fn full_message(&self) -> String {
        let mut msg = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            msg.push_str(": ");
            msg.push_str(&c.to_string());
            cause = c.source();
        }
        msg
    }
}

impl From<chronus_dsp::DspError> for JournalError {
    fn from(e: chronus_dsp::DspError) -> Self {
        Self::Dsp(e.to_string())
    }
}
