//! Audio outputs of Chronus: the sound card (cpal) and 32-bit float stereo
//! WAV files (hound).
#![forbid(unsafe_code)]

mod device;
mod wav;

pub use device::{ChosenDevice, DeviceError, choose_output, list_output_devices, start_output};
pub use wav::{WavError, WavFileWriter, read_wav, write_wav};
