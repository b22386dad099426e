//! The sound card, through cpal: list devices, choose one with a config it
//! accepts (the device decides the sample rate and period size), and play
//! from a callback.

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, SampleFormat, StreamConfig, SupportedBufferSize};

/// Why no device could be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The host has no usable default output device (a headless machine;
    /// ALSA's `null` plugin does not count).
    #[error("no usable audio output device ({0})")]
    NoDevice(String),
    /// No device has that name.
    #[error("no output device named '{0}' (see --list-devices)")]
    NotFound(String),
    /// The device offers no 32-bit float stereo output.
    #[error("{0}: no 32-bit float stereo output")]
    Unsupported(String),
    /// The audio backend failed.
    #[error("{0}")]
    Backend(String),
}

fn backend(e: impl std::fmt::Display) -> DeviceError {
    DeviceError::Backend(e.to_string())
}

/// An output device and the settings to open it with.
pub struct ChosenDevice {
    device: cpal::Device,
    /// Its name.
    pub name: String,
    /// The sample rate it will run at, Hz.
    pub sample_rate: u32,
    /// Frames per period: what was asked for, clamped to what the device
    /// allows.
    pub block: u32,
    /// Whether the device accepts a fixed period size (else it picks its own,
    /// and callbacks may come in any size).
    pub fixed_block: bool,
}

impl std::fmt::Debug for ChosenDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChosenDevice")
            .field("name", &self.name)
            .field("sample_rate", &self.sample_rate)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

/// The device's short name (the ALSA PCM name, e.g. `jack`), if it has one.
fn short_name(d: &cpal::Device) -> Option<String> {
    d.id().ok().map(|id| id.id().to_owned())
}

/// The output devices as (short name, description), the default one first
/// (libasound's own error lines are kept off stderr).
///
/// # Errors
/// [`DeviceError::Backend`] if the host cannot list devices.
pub fn list_output_devices() -> Result<Vec<(String, String)>, DeviceError> {
    without_stderr(output_devices)
}

fn output_devices() -> Result<Vec<(String, String)>, DeviceError> {
    let host = cpal::default_host();
    let default = host.default_output_device().and_then(|d| short_name(&d));
    let mut devices: Vec<(String, String)> = host
        .output_devices()
        .map_err(backend)?
        .map(|d| (short_name(&d).unwrap_or_default(), d.to_string()))
        .collect();
    devices.sort_by_key(|(id, _)| Some(id) != default.as_ref());
    Ok(devices)
}

/// Chooses the device named `name` (or the default one) and a 32-bit float
/// stereo configuration: `sample_rate` if the device supports it, else its
/// own default rate; `block` frames per period, clamped to its range.
///
/// # Errors
/// [`DeviceError`] saying why no device can be used.
pub fn choose_output(name: Option<&str>, sample_rate: u32, block: u32) -> Result<ChosenDevice, DeviceError> {
    without_stderr(|| match choose(name, sample_rate, block) {
        Err(DeviceError::Backend(why) | DeviceError::Unsupported(why)) if name.is_none() => {
            Err(DeviceError::NoDevice(why))
        }
        other => other,
    })
}

/// Runs `f` with stderr pointed at /dev/null: libasound prints its own
/// errors there while devices are probed (several lines on a machine with
/// no sound card); the outcome is reported by the caller in one line. Call
/// it at start-up, before other threads write to stderr.
fn without_stderr<T>(f: impl FnOnce() -> T) -> T {
    let saved = nix::unistd::dup(std::io::stderr()).ok();
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null").ok();
    if let (Some(_), Some(null)) = (&saved, &null) {
        let _ = nix::unistd::dup2_stderr(null);
    }
    let out = f();
    if let Some(saved) = saved {
        let _ = nix::unistd::dup2_stderr(saved);
    }
    out
}

fn choose(name: Option<&str>, sample_rate: u32, block: u32) -> Result<ChosenDevice, DeviceError> {
    let host = cpal::default_host();
    let device = match name {
        // ALSA's `null` plugin is the default on a machine with no sound
        // card: it discards samples without keeping time. Not a device.
        None => host
            .default_output_device()
            .filter(|d| short_name(d).as_deref() != Some("null"))
            .ok_or_else(|| DeviceError::NoDevice("no sound card".into()))?,
        Some(n) => host
            .output_devices()
            .map_err(backend)?
            .find(|d| {
                d.to_string() == n
                    || short_name(d).as_deref() == Some(n)
                    || d.id().is_ok_and(|id| id.to_string() == n)
            })
            .ok_or_else(|| DeviceError::NotFound(n.to_owned()))?,
    };
    let dev_name = device.to_string();
    let configs: Vec<_> = device
        .supported_output_configs()
        .map_err(backend)?
        .filter(|c| c.channels() == 2 && c.sample_format() == SampleFormat::F32)
        .collect();
    let range = configs
        .iter()
        .find(|c| (c.min_sample_rate()..=c.max_sample_rate()).contains(&sample_rate))
        .or_else(|| configs.first())
        .ok_or_else(|| DeviceError::Unsupported(dev_name.clone()))?;
    let rate = sample_rate.clamp(range.min_sample_rate(), range.max_sample_rate());
    let (block, fixed_block) = match range.buffer_size() {
        SupportedBufferSize::Range { min, max } => (block.clamp(*min, *max), true),
        SupportedBufferSize::Unknown => (block, false),
    };
    Ok(ChosenDevice { device, name: dev_name, sample_rate: rate, block, fixed_block })
}

/// Most frames one callback is rendered in; longer device buffers are
/// rendered in several pieces.
const MAX_CALLBACK_FRAMES: usize = 8_192;

/// Opens `chosen` and starts calling `render(left, right)` from the device's
/// callback for every buffer it needs. The buffers are allocated here, never
/// in the callback. Keep the returned stream alive; dropping it stops the
/// device and drops `render`.
///
/// # Errors
/// [`DeviceError::Backend`] if the stream cannot be built or started.
pub fn start_output(
    chosen: &ChosenDevice,
    mut render: impl FnMut(&mut [f32], &mut [f32]) + Send + 'static,
) -> Result<cpal::Stream, DeviceError> {
    let mut left = vec![0.0f32; MAX_CALLBACK_FRAMES];
    let mut right = vec![0.0f32; MAX_CALLBACK_FRAMES];
    let callback = move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
        for chunk in data.chunks_mut(MAX_CALLBACK_FRAMES * 2) {
            let n = chunk.len() / 2;
            render(&mut left[..n], &mut right[..n]);
            for (frame, (l, r)) in chunk.chunks_exact_mut(2).zip(left.iter().zip(right.iter())) {
                frame[0] = *l;
                frame[1] = *r;
            }
        }
    };
    let error = |e| tracing_free_log(&e);
    let buffer_size = if chosen.fixed_block { BufferSize::Fixed(chosen.block) } else { BufferSize::Default };
    let config = StreamConfig { channels: 2, sample_rate: chosen.sample_rate, buffer_size };
    let stream =
        chosen.device.build_output_stream::<f32, _, _>(config, callback, error, None).map_err(backend)?;
    stream.play().map_err(backend)?;
    Ok(stream)
}

/// Device errors arrive on the device's thread: report them on stderr (this
/// crate does not log).
fn tracing_free_log(e: &dyn std::fmt::Display) {
    eprintln!("chronus: audio device error: {e}");
}
