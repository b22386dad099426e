//! `Biquad`: RBJ-cookbook second-order filters in transposed direct form II.
//!
//! Coefficients ([`BiquadCoefs`], `Copy`) are kept apart from the state
//! ([`BiquadState`]). Parameter changes move the coefficients linearly to the
//! new set over a short ramp instead of jumping, so a cutoff sweep does not
//! zipper. A linear path between two stable coefficient sets stays stable: the
//! stable region of `(a1, a2)` is a triangle, and triangles are convex.

use bytemuck::{Pod, Zeroable};

/// Lowest accepted cutoff, in Hz.
pub const MIN_CUTOFF_HZ: f32 = 10.0;
/// Highest accepted cutoff, as a fraction of the sample rate.
pub const MAX_CUTOFF_RATIO: f32 = 0.49;
/// Accepted range of the quality factor Q.
pub const Q_RANGE: (f32, f32) = (0.1, 40.0);

/// The response shape of a biquad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u32)]
pub enum FilterKind {
    /// Low-pass, gain Q at the cutoff.
    #[default]
    LowPass = 0,
    /// High-pass, gain Q at the cutoff.
    HighPass = 1,
    /// Band-pass with 0 dB peak gain at the centre.
    BandPass = 2,
    /// Notch: zero gain at the centre.
    Notch = 3,
}

impl FilterKind {
    /// The kind with this code (0 low-pass, 1 high-pass, 2 band-pass, 3 notch).
    pub fn from_u32(code: u32) -> Option<Self> {
        Some(match code {
            0 => Self::LowPass,
            1 => Self::HighPass,
            2 => Self::BandPass,
            3 => Self::Notch,
            _ => return None,
        })
    }
}

/// Normalised biquad coefficients (`a0` = 1).
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct BiquadCoefs {
    /// Feed-forward coefficient of x\[n\].
    pub b0: f32,
    /// Feed-forward coefficient of x\[n-1\].
    pub b1: f32,
    /// Feed-forward coefficient of x\[n-2\].
    pub b2: f32,
    /// Feedback coefficient of y\[n-1\].
    pub a1: f32,
    /// Feedback coefficient of y\[n-2\].
    pub a2: f32,
}

impl BiquadCoefs {
    /// The RBJ cookbook design of `kind` at `cutoff_hz` with quality `q`, for
    /// `sample_rate` Hz. Cutoff and Q are clamped to their accepted ranges
    /// (NaN to the lowest), so the result is always finite and stable.
    pub fn design(kind: FilterKind, cutoff_hz: f32, q: f32, sample_rate: u32) -> Self {
        let sr = f64::from(sample_rate.max(1));
        let max_cutoff = (MAX_CUTOFF_RATIO as f64) * sr;
        let f0 = clamp_or_low(f64::from(cutoff_hz), f64::from(MIN_CUTOFF_HZ), max_cutoff);
        let q = clamp_or_low(f64::from(q), f64::from(Q_RANGE.0), f64::from(Q_RANGE.1));
        let w0 = std::f64::consts::TAU * f0 / sr;
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * q);
        let (b0, b1, b2) = match kind {
            FilterKind::LowPass => ((1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0),
            FilterKind::HighPass => ((1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0),
            FilterKind::BandPass => (alpha, 0.0, -alpha),
            FilterKind::Notch => (1.0, -2.0 * cos, 1.0),
        };
        let a0 = 1.0 + alpha;
        Self {
            b0: (b0 / a0) as f32,
            b1: (b1 / a0) as f32,
            b2: (b2 / a0) as f32,
            a1: (-2.0 * cos / a0) as f32,
            a2: ((1.0 - alpha) / a0) as f32,
        }
    }

    /// Coefficients that pass the input through unchanged.
    pub const IDENTITY: Self = Self { b0: 1.0, b1: 0.0, b2: 0.0, a1: 0.0, a2: 0.0 };

    /// Magnitude of the frequency response at `freq_hz`, computed in `f64`
    /// from these coefficients.
    pub fn magnitude_at(&self, freq_hz: f64, sample_rate: u32) -> f64 {
        let w = std::f64::consts::TAU * freq_hz / f64::from(sample_rate);
        let (s1, c1) = w.sin_cos();
        let (s2, c2) = (2.0 * w).sin_cos();
        let (b0, b1, b2) = (f64::from(self.b0), f64::from(self.b1), f64::from(self.b2));
        let (a1, a2) = (f64::from(self.a1), f64::from(self.a2));
        // H(e^jw) with z^-1 = e^-jw = cos w - j sin w.
        let num_re = b0 + b1 * c1 + b2 * c2;
        let num_im = -(b1 * s1 + b2 * s2);
        let den_re = 1.0 + a1 * c1 + a2 * c2;
        let den_im = -(a1 * s1 + a2 * s2);
        (num_re.hypot(num_im)) / (den_re.hypot(den_im))
    }

    /// Per-sample steps that move `self` to `target` in `len` samples.
    pub fn steps_to(&self, target: &Self, len: u32) -> Self {
        let n = len.max(1) as f32;
        Self {
            b0: (target.b0 - self.b0) / n,
            b1: (target.b1 - self.b1) / n,
            b2: (target.b2 - self.b2) / n,
            a1: (target.a1 - self.a1) / n,
            a2: (target.a2 - self.a2) / n,
        }
    }
}

fn clamp_or_low(v: f64, lo: f64, hi: f64) -> f64 {
    if v.is_nan() { lo } else { v.clamp(lo, hi) }
}

/// The two state memories of a transposed direct form II biquad.
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct BiquadState {
    /// First state memory.
    pub z1: f32,
    /// Second state memory.
    pub z2: f32,
}

/// Magnitude below which a filter memory is flushed to zero, so the state
/// can never become denormal (denormals are slow and their handling could
/// differ between processes).
pub const FLUSH_BELOW: f32 = 1.0e-20;

/// Flushes a tiny filter memory to zero (see [`FLUSH_BELOW`]).
#[inline(always)]
pub fn flush_tiny(z: f32) -> f32 {
    if z.abs() < FLUSH_BELOW { 0.0 } else { z }
}

/// One sample of transposed direct form II. The operation order is part of
/// the determinism contract: the voice bank calls this same function.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // Scalars keep the SIMD lanes free of structs.
pub fn biquad_tick(b0: f32, b1: f32, b2: f32, a1: f32, a2: f32, z1: &mut f32, z2: &mut f32, x: f32) -> f32 {
    let y = b0 * x + *z1;
    *z1 = b1 * x - a1 * y + *z2;
    *z2 = b2 * x - a2 * y;
    y
}

/// A biquad filter with smoothed coefficient changes.
///
/// ```
/// use chronus_synth::{Biquad, BiquadCoefs, FilterKind};
/// let mut f = Biquad::new(BiquadCoefs::design(FilterKind::LowPass, 1_000.0, 0.707, 48_000));
/// let y = f.process(1.0);
/// assert!(y > 0.0 && y < 0.01);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Biquad {
    coefs: BiquadCoefs,
    steps: BiquadCoefs,
    target: BiquadCoefs,
    remaining: u32,
    state: BiquadState,
}

impl Biquad {
    /// A filter with `coefs` and cleared state.
    pub fn new(coefs: BiquadCoefs) -> Self {
        Self {
            coefs,
            steps: BiquadCoefs::zeroed(),
            target: coefs,
            remaining: 0,
            state: BiquadState::default(),
        }
    }

    /// Moves to `target` linearly over `ramp` samples (at once when 0).
    pub fn set_coefs(&mut self, target: BiquadCoefs, ramp: u32) {
        self.target = target;
        if ramp == 0 {
            self.coefs = target;
            self.steps = BiquadCoefs::zeroed();
            self.remaining = 0;
        } else {
            self.steps = self.coefs.steps_to(&target, ramp);
            self.remaining = ramp;
        }
    }

    /// The coefficients in use now.
    pub fn coefs(&self) -> &BiquadCoefs {
        &self.coefs
    }

    /// Clears the state memories.
    pub fn reset(&mut self) {
        self.state = BiquadState::default();
    }

    /// Filters one sample.
    #[inline]
    pub fn process(&mut self, x: f32) -> f32 {
        let c = &self.coefs;
        let y = biquad_tick(c.b0, c.b1, c.b2, c.a1, c.a2, &mut self.state.z1, &mut self.state.z2, x);
        if self.remaining > 0 {
            ramp_coefs(&mut self.coefs, &self.steps);
            self.remaining -= 1;
            if self.remaining == 0 {
                self.coefs = self.target;
                self.steps = BiquadCoefs::zeroed();
            }
        }
        y
    }

    /// Flushes denormal-range state to zero (see [`flush_tiny`]).
    pub fn flush(&mut self) {
        self.state.z1 = flush_tiny(self.state.z1);
        self.state.z2 = flush_tiny(self.state.z2);
    }
}

/// One ramp step of every coefficient.
#[inline(always)]
pub fn ramp_coefs(c: &mut BiquadCoefs, step: &BiquadCoefs) {
    c.b0 += step.b0;
    c.b1 += step.b1;
    c.b2 += step.b2;
    c.a1 += step.a1;
    c.a2 += step.a2;
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: u32 = 48_000;

    /// Measures the steady-state gain of `coefs` for a sine at `freq`.
    fn measured_gain(coefs: BiquadCoefs, freq: f64) -> f64 {
        let mut f = Biquad::new(coefs);
        let n = SR as usize; // 1 s: long enough to settle at the tested Qs
        let (mut pin, mut pout) = (0.0f64, 0.0f64);
        for i in 0..n {
            let x = (std::f64::consts::TAU * freq * i as f64 / f64::from(SR)).sin() as f32;
            let y = f.process(x);
            if i >= n / 2 {
                pin += f64::from(x) * f64::from(x);
                pout += f64::from(y) * f64::from(y);
            }
        }
        (pout / pin).sqrt()
    }

    #[test]
    fn lowpass_and_highpass_have_gain_q_at_cutoff() {
        for kind in [FilterKind::LowPass, FilterKind::HighPass] {
            let c = BiquadCoefs::design(kind, 1_000.0, 2.0, SR);
            let m = c.magnitude_at(1_000.0, SR);
            assert!((m - 2.0).abs() < 1e-3, "{kind:?} |H(f0)| = {m}");
        }
        let bp = BiquadCoefs::design(FilterKind::BandPass, 1_000.0, 2.0, SR);
        assert!((bp.magnitude_at(1_000.0, SR) - 1.0).abs() < 1e-4);
        let notch = BiquadCoefs::design(FilterKind::Notch, 1_000.0, 2.0, SR);
        assert!(notch.magnitude_at(1_000.0, SR) < 1e-4);
    }

    #[test]
    fn processing_matches_the_rbj_response() {
        for kind in [FilterKind::LowPass, FilterKind::HighPass, FilterKind::BandPass, FilterKind::Notch] {
            let c = BiquadCoefs::design(kind, 2_000.0, 0.9, SR);
            for freq in [200.0, 1_000.0, 2_000.0, 4_000.0, 12_000.0] {
                let want = c.magnitude_at(freq, SR);
                let got = measured_gain(c, freq);
                assert!(
                    (got - want).abs() < 1e-3 + want * 1e-3,
                    "{kind:?} at {freq} Hz: measured {got}, formula {want}"
                );
            }
        }
        // And the response has the right shape.
        let lp = BiquadCoefs::design(FilterKind::LowPass, 1_000.0, 0.707, SR);
        assert!(lp.magnitude_at(100.0, SR) > 0.99 && lp.magnitude_at(10_000.0, SR) < 0.02);
        let hp = BiquadCoefs::design(FilterKind::HighPass, 1_000.0, 0.707, SR);
        assert!(hp.magnitude_at(100.0, SR) < 0.02 && hp.magnitude_at(10_000.0, SR) > 0.99);
    }

    #[test]
    fn hostile_parameters_give_finite_stable_coefficients() {
        for (f, q) in
            [(f32::NAN, 1.0), (0.0, 0.0), (1.0e6, -3.0), (f32::INFINITY, f32::NAN), (-5.0, f32::INFINITY)]
        {
            let c = BiquadCoefs::design(FilterKind::LowPass, f, q, SR);
            for v in [c.b0, c.b1, c.b2, c.a1, c.a2] {
                assert!(v.is_finite());
            }
            assert!(c.a2.abs() < 1.0 && c.a1.abs() < 1.0 + c.a2, "unstable {c:?}");
        }
    }

    #[test]
    fn coefficient_ramp_lands_exactly_on_target() {
        let from = BiquadCoefs::design(FilterKind::LowPass, 200.0, 0.7, SR);
        let to = BiquadCoefs::design(FilterKind::LowPass, 8_000.0, 0.7, SR);
        let mut f = Biquad::new(from);
        f.set_coefs(to, 100);
        for _ in 0..99 {
            f.process(0.0);
            assert_ne!(*f.coefs(), to);
        }
        f.process(0.0);
        assert_eq!(*f.coefs(), to);
    }

    #[test]
    fn flush_clears_denormal_range_state() {
        let mut f = Biquad::new(BiquadCoefs::design(FilterKind::LowPass, 100.0, 0.7, SR));
        f.process(1.0e-25);
        f.flush();
        assert_eq!(f.process(0.0), 0.0);
    }
}
