//! `SimpleSine`: a phase-accumulator sine oscillator.
//!
//! The phase is a `u32` fraction of a turn, so wrap-around is exact integer
//! arithmetic and a frequency change never moves the phase: the waveform stays
//! continuous (no click) whatever the new frequency.

/// Scale from a signed `u32` phase to a fraction of a turn.
pub(crate) const PHASE_TO_TURNS: f32 = 1.0 / 4_294_967_296.0;

/// Odd polynomial in `x` (turns, `|x| ≤ 0.25`) for `sin(2πx)`, highest
/// power first: `((((c9·x² + c7)·x² + c5)·x² + c3)·x² + c1)·x`. Fitted for
/// minimax error; the maximum error against `f64::sin` is about 2e-7, at the
/// level of `f32` rounding.
#[allow(clippy::approx_constant)] // c1 is a fitted value, not 2π.
pub(crate) const SINE_POLY: [f32; 5] = [39.536_705, -76.549_78, 81.601_006, -41.341_656, 6.283_185];

/// Converts a phase (fraction of a turn, `u32` full scale) to `sin(2π·phase)`.
///
/// Branch-free. The voice bank runs the same operations on 8 lanes at once
/// (`crate::bank`), so both give identical bits.
#[inline(always)]
pub fn sine_from_phase(phase: u32) -> f32 {
    // Signed fraction of a turn in [-0.5, 0.5).
    let x = (phase as i32) as f32 * PHASE_TO_TURNS;
    // Fold into [-0.25, 0.25] using sin(π - a) = sin(a).
    let half = 0.5f32.copysign(x);
    let x = if x.abs() > 0.25 { half - x } else { x };
    let x2 = x * x;
    let [c9, c7, c5, c3, c1] = SINE_POLY;
    let p = c9 * x2 + c7;
    let p = p * x2 + c5;
    let p = p * x2 + c3;
    let p = p * x2 + c1;
    p * x
}

/// The phase increment per sample for `freq_hz` at `sample_rate` Hz.
///
/// `freq_hz` is clamped to `[0, sample_rate / 2]`; a non-finite frequency
/// gives 0 (silence rather than garbage).
pub fn phase_increment(freq_hz: f32, sample_rate: u32) -> u32 {
    let sr = f64::from(sample_rate.max(1));
    let f = f64::from(freq_hz);
    if !f.is_finite() {
        return 0;
    }
    let f = f.clamp(0.0, sr * 0.5);
    // 2^32 · f / sr ≤ 2^31, so the cast cannot overflow.
    (f / sr * 4_294_967_296.0).round() as u32
}

/// A sine oscillator with a `u32` phase accumulator.
///
/// ```
/// use chronus_synth::SimpleSine;
/// let mut osc = SimpleSine::new(48_000);
/// osc.set_freq(440.0);
/// let first = osc.next_sample();
/// assert!(first > 0.0 && first < 0.1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimpleSine {
    sample_rate: u32,
    phase: u32,
    inc: u32,
}

impl SimpleSine {
    /// A silent oscillator (0 Hz, phase 0) at `sample_rate` Hz.
    pub fn new(sample_rate: u32) -> Self {
        Self { sample_rate, phase: 0, inc: 0 }
    }

    /// Sets the frequency in Hz (clamped to `[0, sample_rate / 2]`). The phase
    /// is kept, so the change is glitch-free.
    pub fn set_freq(&mut self, freq_hz: f32) {
        self.inc = phase_increment(freq_hz, self.sample_rate);
    }

    /// Restarts the waveform at phase 0.
    pub fn reset_phase(&mut self) {
        self.phase = 0;
    }

    /// The current phase, as a `u32` fraction of a turn.
    pub fn phase(&self) -> u32 {
        self.phase
    }

    /// The phase increment per sample, as a `u32` fraction of a turn.
    pub fn increment(&self) -> u32 {
        self.inc
    }

    /// Advances one sample and returns it, in `[-1, 1]`.
    #[inline]
    pub fn next_sample(&mut self) -> f32 {
        self.phase = self.phase.wrapping_add(self.inc);
        sine_from_phase(self.phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polynomial_matches_libm_sine_over_a_full_turn() {
        let mut worst = 0.0f64;
        for i in 0..=65_536u64 {
            let phase = (i << 16) as u32;
            let exact = (std::f64::consts::TAU * f64::from(phase) / 4_294_967_296.0).sin();
            worst = worst.max((f64::from(sine_from_phase(phase)) - exact).abs());
        }
        assert!(worst < 5e-7, "worst error {worst}");
    }

    #[test]
    fn frequency_is_accurate_by_zero_crossings() {
        // 10 s of 441 Hz at 48 kHz: count upward zero crossings.
        let mut osc = SimpleSine::new(48_000);
        osc.set_freq(441.0);
        let mut prev = 0.0f32;
        let mut crossings = 0u32;
        let mut first = None;
        let mut last = 0usize;
        for n in 0..480_000usize {
            let s = osc.next_sample();
            if prev < 0.0 && s >= 0.0 {
                crossings += 1;
                first.get_or_insert(n);
                last = n;
            }
            prev = s;
        }
        // 4410 cycles; the upward crossing at t = 0 has no negative sample before it.
        assert_eq!(crossings, 4_409);
        let measured = f64::from(crossings - 1) * 48_000.0 / (last - first.unwrap()) as f64;
        assert!((measured - 441.0).abs() < 0.02, "measured {measured} Hz");
    }

    #[test]
    fn frequency_change_keeps_the_waveform_continuous() {
        let mut osc = SimpleSine::new(48_000);
        osc.set_freq(1_000.0);
        let mut prev = 0.0;
        for n in 0..4_800 {
            if n == 1_234 {
                osc.set_freq(3_000.0);
            }
            let s = osc.next_sample();
            // Max slope of a 3 kHz unit sine at 48 kHz is 2π·3000/48000 ≈ 0.39.
            assert!((s - prev).abs() < 0.4, "jump at sample {n}");
            prev = s;
        }
    }

    #[test]
    fn out_of_range_frequencies_are_clamped() {
        assert_eq!(phase_increment(f32::NAN, 48_000), 0);
        assert_eq!(phase_increment(-5.0, 48_000), 0);
        assert_eq!(phase_increment(1.0e6, 48_000), 1 << 31);
        assert_eq!(phase_increment(f32::INFINITY, 48_000), 0);
    }
}
