//! Offline rendering of stamped commands, in-process.

use chronus_dsp::{DspError, SliceSource, Synth, SynthConfig, TimedCommand};

/// Frames rendered per call offline. Any size gives the same bits.
const BLOCK: usize = 1_024;

/// Stereo audio rendered offline.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    /// Left channel.
    pub left: Vec<f32>,
    /// Right channel.
    pub right: Vec<f32>,
    /// Commands the synth refused (non-finite values, unknown voices).
    pub rejected: u64,
}

/// Renders `frames` frames of `commands` (sorted by frame) on a fresh synth
/// with `voices` voices at `sample_rate`: exactly what a worker process
/// produces for the same stamped commands.
///
/// # Errors
/// [`DspError::InvalidConfig`] for an unusable sample rate or voice count.
pub fn render_offline(
    commands: &[TimedCommand],
    sample_rate: u32,
    voices: u32,
    frames: u64,
) -> Result<Rendered, DspError> {
    let mut synth = Synth::new(SynthConfig::new(sample_rate, voices))?;
    let n = usize::try_from(frames).map_err(|_| DspError::InvalidConfig("too many frames"))?;
    let (mut left, mut right) = (vec![0.0f32; n], vec![0.0f32; n]);
    let mut source = SliceSource::new(commands);
    for (l, r) in left.chunks_mut(BLOCK).zip(right.chunks_mut(BLOCK)) {
        synth.render_with(l, r, &mut source);
    }
    Ok(Rendered { left, right, rejected: synth.stats().rejected })
}

/// A default length for commands with no recorded end: the last command's
/// frame plus `tail_seconds`.
pub fn default_length(commands: &[TimedCommand], sample_rate: u32, tail_seconds: f64) -> u64 {
    let last = commands.iter().map(|c| c.frame).max().unwrap_or(0);
    last + (tail_seconds.max(0.0) * f64::from(sample_rate)).round() as u64
}
