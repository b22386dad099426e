//! Audio outputs of Chronus: the sound card through cpal (feature `device`,
//! on by default) and 32-bit float stereo WAV files (hound). Without the
//! `device` feature nothing here needs ALSA.
#![forbid(unsafe_code)]

#[cfg(feature = "device")]
mod device;
mod wav;

#[cfg(feature = "device")]
pub use device::{
    CallbackInfo, ChosenDevice, DeviceCounters, DeviceError, DeviceOutput, DeviceRender, MAX_PERIOD,
    choose_output, list_output_devices, start_output,
};
pub use wav::{WavError, WavFileWriter, WavFrames, read_wav, wav_frames, write_wav};
