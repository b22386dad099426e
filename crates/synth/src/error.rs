//! Typed errors of the synth. None of them allocates, so they can be
//! returned from the real-time path.

use crate::Param;

/// Why a command, configuration or snapshot was refused.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// A parameter value was NaN or infinite; the command was not applied.
    #[error("{param} must be a finite number")]
    NonFinite {
        /// The parameter that got the bad value.
        param: Param,
    },
    /// The voice id does not exist in this synth.
    #[error("voice {voice} is out of range (this synth has voices 0..{voices})")]
    VoiceOutOfRange {
        /// The requested voice.
        voice: u32,
        /// The number of voices.
        voices: u32,
    },
    /// No note with this ID sounds (never played, released, or its voice
    /// was taken by another note).
    #[error("no note {0} is sounding")]
    UnknownNote(i32),
    /// `master` was sent to a single voice; it is global only.
    #[error("{0} is a global parameter; use /set")]
    NotAVoiceParam(Param),
    /// The filter kind is not 0 (low-pass), 1 (high-pass), 2 (band-pass),
    /// 3 (notch) or 4 (resonant state-variable low-pass).
    #[error(
        "filter must be 0 (lowpass), 1 (highpass), 2 (bandpass), 3 (notch) or 4 (resonant lowpass), got {0}"
    )]
    BadFilterKind(f32),
    /// A choice parameter got a number that names no choice.
    #[error("{param} takes a whole number naming a choice (docs/journal.md), got {value}")]
    BadChoice {
        /// The parameter.
        param: Param,
        /// What came.
        value: f32,
    },
    /// A patch change's fade was NaN or infinite.
    #[error("a patch change's fade must be a finite number of seconds, got {0}")]
    BadFade(f32),
    /// The synth configuration is unusable.
    #[error("invalid synth configuration: {0}")]
    InvalidConfig(&'static str),
    /// A snapshot does not fit this synth or holds impossible values.
    #[error("snapshot rejected: {0}")]
    BadSnapshot(&'static str),
}
