//! Audio outputs of Chronus. For now: 32-bit float stereo WAV files.
#![forbid(unsafe_code)]

mod wav;

pub use wav::{WavError, WavFileWriter, read_wav, write_wav};
