//! 32-bit float stereo WAV files, through hound.

use std::path::Path;

/// A WAV file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// hound failed (I/O or format).
    #[error("{path}")]
    Hound {
        /// The file.
        path: String,
        /// What failed.
        source: hound::Error,
    },
    /// The file is not 32-bit float stereo.
    #[error("{0}: not a 32-bit float stereo WAV")]
    Format(String),
}

fn hound_err(path: &Path) -> impl FnOnce(hound::Error) -> WavError + '_ {
    move |source| WavError::Hound { path: path.display().to_string(), source }
}

fn float_stereo(sample_rate: u32) -> hound::WavSpec {
    hound::WavSpec {
        channels: 2,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    }
}

/// A 32-bit float stereo WAV file written as the audio comes.
pub struct WavFileWriter {
    path: std::path::PathBuf,
    inner: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
}

impl std::fmt::Debug for WavFileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavFileWriter").field("path", &self.path).finish_non_exhaustive()
    }
}

impl WavFileWriter {
    /// Creates (or truncates) `path`.
    ///
    /// # Errors
    /// [`WavError::Hound`] if the file cannot be created.
    pub fn create(path: &Path, sample_rate: u32) -> Result<Self, WavError> {
        let inner = hound::WavWriter::create(path, float_stereo(sample_rate)).map_err(hound_err(path))?;
        Ok(Self { path: path.to_owned(), inner })
    }

    /// Appends one sample (left and right alternate).
    ///
    /// # Errors
    /// [`WavError::Hound`] on an I/O error.
    pub fn write_sample(&mut self, sample: f32) -> Result<(), WavError> {
        let path = self.path.clone();
        self.inner.write_sample(sample).map_err(hound_err(&path))
    }

    /// Writes the header sizes and closes the file.
    ///
    /// # Errors
    /// [`WavError::Hound`] on an I/O error.
    pub fn finalize(self) -> Result<(), WavError> {
        self.inner.finalize().map_err(hound_err(&self.path))
    }
}

/// Writes `left`/`right` as a 32-bit float stereo WAV at `sample_rate`.
///
/// # Errors
/// [`WavError::Hound`] if the file cannot be created or written.
pub fn write_wav(path: &Path, sample_rate: u32, left: &[f32], right: &[f32]) -> Result<(), WavError> {
    let mut w = WavFileWriter::create(path, sample_rate)?;
    for (l, r) in left.iter().zip(right) {
        w.write_sample(*l)?;
        w.write_sample(*r)?;
    }
    w.finalize()
}

/// Reads a 32-bit float stereo WAV: `(sample_rate, left, right)`.
///
/// # Errors
/// [`WavError::Hound`] for I/O or format errors, [`WavError::Format`] for
/// another sample format or channel count.
pub fn read_wav(path: &Path) -> Result<(u32, Vec<f32>, Vec<f32>), WavError> {
    let mut r = hound::WavReader::open(path).map_err(hound_err(path))?;
    let spec = r.spec();
    if spec.channels != 2 || spec.sample_format != hound::SampleFormat::Float || spec.bits_per_sample != 32 {
        return Err(WavError::Format(path.display().to_string()));
    }
    let samples: Vec<f32> = r.samples::<f32>().collect::<Result<_, _>>().map_err(hound_err(path))?;
    let (left, right) = samples.chunks_exact(2).map(|f| (f[0], f[1])).unzip();
    Ok((spec.sample_rate, left, right))
}

/// A 32-bit float stereo WAV read frame by frame: constant memory whatever
/// its length. Ends at the end of the data or at the first read error.
pub struct WavFrames {
    samples: hound::WavIntoSamples<std::io::BufReader<std::fs::File>, f32>,
}

impl std::fmt::Debug for WavFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavFrames").finish_non_exhaustive()
    }
}

impl Iterator for WavFrames {
    type Item = (f32, f32);

    fn next(&mut self) -> Option<(f32, f32)> {
        let l = self.samples.next()?.ok()?;
        let r = self.samples.next()?.ok()?;
        Some((l, r))
    }
}

/// Opens a 32-bit float stereo WAV for reading frame by frame:
/// `(sample_rate, frames)`.
///
/// # Errors
/// As [`read_wav`].
pub fn wav_frames(path: &Path) -> Result<(u32, WavFrames), WavError> {
    let r = hound::WavReader::open(path).map_err(hound_err(path))?;
    let spec = r.spec();
    if spec.channels != 2 || spec.sample_format != hound::SampleFormat::Float || spec.bits_per_sample != 32 {
        return Err(WavError::Format(path.display().to_string()));
    }
    Ok((spec.sample_rate, WavFrames { samples: r.into_samples() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_round_trips_bit_for_bit() {
        let dir = std::env::temp_dir().join(format!("chronus-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.wav");
        let left = vec![0.0, -0.0, 1.0e-30, 0.5, -1.5];
        let right = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        write_wav(&path, 44_100, &left, &right).unwrap();
        let (sr, l, r) = read_wav(&path).unwrap();
        assert_eq!(sr, 44_100);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&l), bits(&left));
        assert_eq!(bits(&r), bits(&right));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
