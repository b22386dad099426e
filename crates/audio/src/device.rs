//! The sound card, through cpal: list devices, choose one with a config it
//! accepts (the device decides the sample rate), and play from a callback
//! of whatever size the device asks for.
//!
//! A device on a desktop is usually PipeWire behind ALSA's `pipewire`
//! plugin, whose graph runs at a *quantum* (256 … 2048 frames, changeable
//! while playing) that an ALSA client cannot see. cpal double-buffers (the
//! device buffer is two periods), so a period below half the quantum runs
//! dry every cycle. The output therefore starts at the period asked for and
//! sizes itself from what the device actually asks for, up to 8192 frames:
//! when one xrun played a whole buffer of silence or more (the graph pulls
//! about the buffer plus that silence a cycle: a quantum raised while
//! playing), it rebuilds the stream at once with half that quantum as its
//! period; when the device keeps running dry by less (3 xruns within a
//! second), with twice the period. It first plays silence until the
//! device has run a quarter of a second without an xrun (growing the period
//! as needed), so a start at a large quantum loses nothing; later xruns (a
//! quantum raised while playing) are real losses. Every xrun is counted; the frames the
//! device played as silence are measured from the stream's timestamps and
//! handed to the renderer ([`CallbackInfo::xrun_frames`]), so they are lost
//! audio in the engine's counts, not a silent glitch. Repeated device errors
//! are logged once a second with a count, never once per callback.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, SampleFormat, StreamConfig, StreamInstant, SupportedBufferSize};

use crate::render::{CallbackInfo, DeviceCounters, DeviceRender};

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
    /// Frames per period to start with: what was asked for, clamped to what
    /// the device allows.
    pub block: u32,
    /// The largest period the device allows (the output grows its period up
    /// to this, and 8192, when the device keeps running dry).
    pub max_period: u32,
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
    chronus_sys::fd::without_stderr(output_devices)
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
/// own default rate; `block` frames per period to start with, clamped to its
/// range.
///
/// # Errors
/// [`DeviceError`] saying why no device can be used.
pub fn choose_output(name: Option<&str>, sample_rate: u32, block: u32) -> Result<ChosenDevice, DeviceError> {
    chronus_sys::fd::without_stderr(|| match choose(name, sample_rate, block) {
        Err(DeviceError::Backend(why) | DeviceError::Unsupported(why)) if name.is_none() => {
            Err(DeviceError::NoDevice(why))
        }
        other => other,
    })
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
    let (block, max_period, fixed_block) = match range.buffer_size() {
        SupportedBufferSize::Range { min, max } => (block.clamp(*min, *max), (*max).min(MAX_PERIOD), true),
        SupportedBufferSize::Unknown => (block, block, false),
    };
    Ok(ChosenDevice { device, name: dev_name, sample_rate: rate, block, max_period, fixed_block })
}

/// Most frames one render call gets; longer device buffers are rendered in
/// several pieces.
const MAX_CALLBACK_FRAMES: usize = 8_192;
/// The largest period the output grows to.
pub const MAX_PERIOD: u32 = 8_192;
/// Periods in a device buffer (cpal opens ALSA with two).
const DEVICE_PERIODS: u32 = 2;
/// Device xruns within [`XRUN_WINDOW`] that make the output grow its period.
const XRUNS_TO_GROW: usize = 3;
/// See [`XRUNS_TO_GROW`].
const XRUN_WINDOW: Duration = Duration::from_secs(1);
/// How long the device must run without an xrun before the output starts
/// rendering into it.
const SETTLE: Duration = Duration::from_millis(250);
/// The longest the output waits for the device to settle.
const MAX_SETTLE: Duration = Duration::from_secs(5);

/// The device callback: renders in pieces into its own buffers, measures
/// xruns, and hands the renderer back when the stream is dropped.
struct Callback<R: DeviceRender> {
    render: Option<R>,
    back: rtrb::Producer<R>,
    left: Vec<f32>,
    right: Vec<f32>,
    counters: Arc<DeviceCounters>,
    sample_rate: f64,
    period: u32,
    /// When the previous buffer was to be played, and how long it was.
    last: Option<(StreamInstant, usize)>,
    xruns_seen: u64,
    /// Still settling: play silence, do not render, count nothing as lost.
    warming: Arc<AtomicBool>,
}

impl<R: DeviceRender> Callback<R> {
    fn call(&mut self, data: &mut [f32], info: &cpal::OutputCallbackInfo) {
        let n = data.len() / 2;
        let playback = info.timestamp().playback;
        // Frames the device played as silence since the last buffer: its
        // playback time came later than the last buffer's end.
        let late = self.last.and_then(|(at, frames)| {
            let expected = at.checked_add(Duration::from_secs_f64(frames as f64 / self.sample_rate))?;
            playback.checked_duration_since(expected)
        });
        let late = late.map_or(0, |d| (d.as_secs_f64() * self.sample_rate).round() as u64);
        // Only when the device reported an xrun: timestamps alone jitter,
        // and jump when a stream starts.
        let xruns = self.counters.xruns.load(Relaxed);
        if self.warming.load(Relaxed) {
            self.xruns_seen = xruns;
            self.last = Some((playback, n));
            data.fill(0.0);
            return;
        }
        let xrun_frames = if xruns != self.xruns_seen {
            self.xruns_seen = xruns;
            late.max(n as u64)
        } else {
            0
        };
        if xrun_frames > 0 {
            self.counters.xrun_frames.fetch_add(xrun_frames, Relaxed);
        }
        self.last = Some((playback, n));
        let Some(render) = self.render.as_mut() else {
            data.fill(0.0);
            return;
        };
        let mut info = CallbackInfo {
            xrun_frames,
            period: self.period,
            buffer: DEVICE_PERIODS * self.period,
            ..CallbackInfo::default()
        };
        for chunk in data.chunks_mut(MAX_CALLBACK_FRAMES * 2) {
            let n = chunk.len() / 2;
            render.render(&mut self.left[..n], &mut self.right[..n], &info);
            info.xrun_frames = 0;
            for (frame, (l, r)) in chunk.chunks_exact_mut(2).zip(self.left.iter().zip(self.right.iter())) {
                frame[0] = *l;
                frame[1] = *r;
            }
        }
    }
}

impl<R: DeviceRender> Drop for Callback<R> {
    fn drop(&mut self) {
        if let Some(r) = self.render.take() {
            // Capacity 1, empty: cannot fail, never allocates.
            let _ = self.back.push(r);
        }
    }
}

/// A playing device output. Dropping it stops the device and drops the
/// renderer.
pub struct DeviceOutput {
    counters: Arc<DeviceCounters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DeviceOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceOutput").field("counters", &self.counters).finish_non_exhaustive()
    }
}

impl DeviceOutput {
    /// The counters.
    pub fn counters(&self) -> &DeviceCounters {
        &self.counters
    }

    /// A handle to the counters that outlives the output.
    pub fn shared_counters(&self) -> Arc<DeviceCounters> {
        self.counters.clone()
    }

    /// Stops the device (the renderer is dropped).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DeviceOutput {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn build<R: DeviceRender>(
    chosen: &ChosenDevice,
    period: u32,
    render: R,
    counters: &Arc<DeviceCounters>,
    warming: &Arc<AtomicBool>,
) -> Result<(cpal::Stream, rtrb::Consumer<R>), (DeviceError, Option<R>)> {
    let (back, back_rx) = rtrb::RingBuffer::new(1);
    let callback = Callback::<R> {
        render: Some(render),
        back,
        left: vec![0.0f32; MAX_CALLBACK_FRAMES],
        right: vec![0.0f32; MAX_CALLBACK_FRAMES],
        counters: counters.clone(),
        sample_rate: f64::from(chosen.sample_rate),
        period,
        last: None,
        xruns_seen: counters.xruns.load(Relaxed),
        warming: warming.clone(),
    };
    let mut callback = Some(callback);
    let mut data = move |d: &mut [f32], info: &cpal::OutputCallbackInfo| {
        if let Some(c) = callback.as_mut() {
            c.call(d, info);
        }
    };
    let errors = counters.clone();
    let error = move |e: cpal::Error| {
        // On the device's thread: count only; the monitor logs.
        if e.kind() == cpal::ErrorKind::Xrun {
            errors.xruns.fetch_add(1, Relaxed);
        } else {
            errors.errors.fetch_add(1, Relaxed);
        }
    };
    let buffer_size = if chosen.fixed_block { BufferSize::Fixed(period) } else { BufferSize::Default };
    let config = StreamConfig { channels: 2, sample_rate: chosen.sample_rate, buffer_size };
    // On failure cpal drops the closure, and with it the callback, which
    // hands the renderer back.
    let mut back_rx = back_rx;
    let result = chosen.device.build_output_stream::<f32, _, _>(config, move |d, i| data(d, i), error, None);
    match result.map_err(backend).and_then(|stream| stream.play().map(|()| stream).map_err(backend)) {
        Ok(stream) => Ok((stream, back_rx)),
        Err(e) => Err((e, back_rx.pop().ok())),
    }
}

/// Opens `chosen` and starts calling `render` from the device's callback
/// for every buffer it needs (the buffers are allocated here, never in the
/// callback). A thread of its own owns the stream: it rebuilds it with a
/// larger period when the device keeps running dry, and logs device errors
/// once a second with a count. Keep the returned output alive; dropping it
/// stops the device and drops `render`.
///
/// # Errors
/// [`DeviceError::Backend`] if the stream cannot be built or started.
pub fn start_output(chosen: ChosenDevice, render: impl DeviceRender) -> Result<DeviceOutput, DeviceError> {
    let counters = Arc::new(DeviceCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (c, s) = (counters.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("chronus-device".into())
        .spawn(move || monitor(chosen, render, c, s, started_tx))
        .map_err(backend)?;
    match started_rx.recv() {
        Ok(Ok(())) => Ok(DeviceOutput { counters, stop, thread: Some(thread) }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(DeviceError::Backend("the device thread died while starting".into())),
    }
}

/// How often the stream's owner looks at the xruns, ms.
const POLL_MS: u64 = 20;

/// The period a device needs after it played `silence` frames of silence in
/// one poll with a buffer of [`DEVICE_PERIODS`] × `period`: when the silence
/// is at least a whole buffer, the device's graph pulls about `buffer +
/// silence` frames a cycle (a quantum raised while playing), and the period
/// must be half of that, rounded up to a power of two, at most `limit`.
/// Otherwise `period` (a short xrun is a stall, or a quantum just above
/// the buffer, which the three-xruns rule grows by doubling).
fn period_for_silence(period: u32, silence: u64, limit: u32) -> u32 {
    let buffer = u64::from(DEVICE_PERIODS * period);
    if silence < buffer {
        return period;
    }
    let quantum = (buffer + silence).min(u64::from(limit) * u64::from(DEVICE_PERIODS));
    let wanted = (quantum.div_ceil(u64::from(DEVICE_PERIODS)) as u32).next_power_of_two();
    wanted.clamp(period, limit)
}

/// Owns the stream: builds it, watches xruns, grows the period when the
/// device keeps running dry, logs errors with counts.
fn monitor<R: DeviceRender>(
    chosen: ChosenDevice,
    render: R,
    counters: Arc<DeviceCounters>,
    stop: Arc<AtomicBool>,
    started: std::sync::mpsc::Sender<Result<(), DeviceError>>,
) {
    let mut period = chosen.block;
    let mut render = Some(render);
    let mut first = true;
    let warming = Arc::new(AtomicBool::new(true));
    let warm_started = Instant::now();
    let mut reported = (0u64, 0u64);
    let mut next_report = Instant::now() + Duration::from_secs(1);
    let mut recent: std::collections::VecDeque<Instant> = std::collections::VecDeque::new();
    let mut seen_xruns = 0u64;
    let mut seen_silence = counters.xrun_frames.load(Relaxed);
    while let Some(mut r) = render.take() {
        counters.period.store(period, Relaxed);
        r.prepare(DEVICE_PERIODS * period);
        let (stream, mut back) = match build(&chosen, period, r, &counters, &warming) {
            Ok(ok) => ok,
            Err((e, _)) => {
                if first {
                    let _ = started.send(Err(e));
                } else {
                    eprintln!(
                        "chronus: audio device: cannot rebuild the stream with a period of {period}: {e}"
                    );
                }
                return;
            }
        };
        recent.clear();
        let built = Instant::now();
        let grow = loop {
            if stop.load(Relaxed) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(POLL_MS));
            let now = Instant::now();
            let xruns = counters.xruns.load(Relaxed);
            for _ in seen_xruns..xruns {
                recent.push_back(now);
            }
            seen_xruns = xruns;
            while recent.front().is_some_and(|t| now - *t > XRUN_WINDOW) {
                recent.pop_front();
            }
            let settled = now - built >= SETTLE && recent.back().is_none_or(|t| now - *t >= SETTLE);
            // A device that never settles is played all the same, after a while.
            if warming.load(Relaxed) && (settled || now - warm_started >= MAX_SETTLE) {
                // Settled: from now on the renderer plays, and xruns count.
                warming.store(false, Relaxed);
                reported = (counters.xruns.load(Relaxed), counters.errors.load(Relaxed));
                recent.clear();
                if std::mem::take(&mut first) {
                    let _ = started.send(Ok(()));
                }
            }
            if now >= next_report && !warming.load(Relaxed) {
                next_report = now + Duration::from_secs(1);
                let errors = counters.errors.load(Relaxed);
                let (new_xruns, new_errors) = (xruns - reported.0, errors - reported.1);
                if new_xruns > 0 {
                    eprintln!(
                        "chronus: audio device: {new_xruns} xrun(s) in the last second (buffer underrun: the device \
                         played silence); counted as lost audio"
                    );
                }
                if new_errors > 0 {
                    eprintln!("chronus: audio device: {new_errors} error(s) in the last second");
                }
                reported = (xruns, errors);
            }
            let limit = chosen.max_period.max(chosen.block);
            // The silence the new xruns played: a device that took more
            // than its whole buffer in one go runs a larger quantum, and
            // says how much larger.
            let silence = counters.xrun_frames.load(Relaxed) - seen_silence;
            seen_silence += silence;
            let sized = period_for_silence(period, silence, limit);
            // While settling, one xrun is enough: nothing is playing yet.
            let needed = if warming.load(Relaxed) { 1 } else { XRUNS_TO_GROW };
            if chosen.fixed_block && period < limit && (recent.len() >= needed || sized > period) {
                break Some(sized.max(period * 2).min(limit));
            }
        };
        drop(stream);
        render = back.pop().ok();
        let Some(grown) = grow else { return };
        let from = period;
        period = grown;
        counters.rebuilds.fetch_add(1, Relaxed);
        if !warming.load(Relaxed) {
            eprintln!(
                "chronus: audio device: it keeps running dry with a period of {from} frames (its graph runs larger \
                 quanta); reopening with {period}"
            );
        }
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;
    use assert_no_alloc::{AllocDisabler, assert_no_alloc, violation_count};

    #[global_allocator]
    static ALLOCATOR: AllocDisabler = AllocDisabler;

    struct Count(u64, u64);

    impl DeviceRender for Count {
        fn render(&mut self, left: &mut [f32], right: &mut [f32], info: &CallbackInfo) {
            self.0 += left.len() as u64;
            self.1 += info.xrun_frames;
            left.fill(0.25);
            right.fill(-0.25);
        }
    }

    fn at(ms: u64) -> cpal::OutputCallbackInfo {
        let t = |ms: u64| StreamInstant::new(ms / 1_000, (ms % 1_000 * 1_000_000) as u32);
        cpal::OutputCallbackInfo::new(cpal::OutputStreamTimestamp { callback: t(ms), playback: t(ms + 10) })
    }

    #[test]
    fn an_xrun_of_a_whole_buffer_or_more_sizes_the_period_for_the_quantum_it_shows() {
        // 256-frame periods, a buffer of 512; the quantum raised to 2048:
        // each cycle plays 1,536 frames of silence.
        assert_eq!(period_for_silence(256, 1_536, MAX_PERIOD), 1_024);
        // To 1024: 512 of silence, a whole buffer.
        assert_eq!(period_for_silence(256, 512, MAX_PERIOD), 512);
        // A stall shorter than the buffer changes nothing.
        assert_eq!(period_for_silence(256, 300, MAX_PERIOD), 256);
        assert_eq!(period_for_silence(256, 0, MAX_PERIOD), 256);
        // Never past the limit, even for an hour of silence.
        assert_eq!(period_for_silence(256, 48_000 * 3_600, 4_096), 4_096);
        assert_eq!(period_for_silence(1_024, u64::MAX / 2, MAX_PERIOD), MAX_PERIOD);
    }

    #[test]
    fn the_callback_measures_xruns_hands_back_its_renderer_and_never_allocates() {
        let counters = Arc::new(DeviceCounters::default());
        let (back, mut back_rx) = rtrb::RingBuffer::new(1);
        let mut cb = Callback {
            render: Some(Count(0, 0)),
            back,
            left: vec![0.0; MAX_CALLBACK_FRAMES],
            right: vec![0.0; MAX_CALLBACK_FRAMES],
            counters: counters.clone(),
            sample_rate: 48_000.0,
            period: 480,
            last: None,
            xruns_seen: 0,
            warming: Arc::new(AtomicBool::new(false)),
        };
        let mut data = vec![0.0f32; 2 * 20_000];
        let before = violation_count();
        assert_no_alloc(|| {
            // 10 ms periods, on time; then one 30 ms late after a reported
            // xrun; then a callback larger than any render call.
            for k in 0..5 {
                cb.call(&mut data[..960], &at(10 * k));
            }
            counters.xruns.fetch_add(1, Relaxed);
            cb.call(&mut data[..960], &at(80));
            cb.call(&mut data, &at(90));
        });
        assert_eq!(violation_count(), before, "the device callback allocated");
        assert_eq!(counters.xrun_frames.load(Relaxed), 1_440, "30 ms late at 48 kHz");
        assert!(data.chunks_exact(2).all(|f| f == [0.25, -0.25]), "every frame rendered, interleaved");
        drop(cb);
        let count = back_rx.pop().expect("the renderer is handed back");
        assert_eq!((count.0, count.1), (6 * 480 + 20_000, 1_440));
    }
}
