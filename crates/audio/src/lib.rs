//! Audio outputs of Chronus: the sound card through cpal (feature `device`,
//! on by default; building needs ALSA's headers), a native JACK client with
//! MIDI input (feature `jack`, on by default; building needs JACK's headers,
//! and libjack is loaded when a client starts), and 32-bit float stereo WAV
//! files (hound). Without those features nothing here needs ALSA or JACK,
//! to build or to run.
#![deny(unsafe_code)]

#[cfg(feature = "device")]
mod device;
#[cfg(feature = "jack")]
mod jack_client;
mod render;
mod wav;

#[cfg(feature = "device")]
pub use device::{
    ChosenDevice, DeviceError, DeviceOutput, MAX_PERIOD, choose_output, list_output_devices, start_output,
};
#[cfg(feature = "jack")]
pub use jack_client::{JackConfig, JackConnect, JackError, JackOutput, JackServer};
pub use render::{CallbackInfo, DeviceCounters, DeviceRender};
pub use wav::{WavError, WavFileWriter, WavFrames, read_wav, wav_frames, write_wav};
