//! `Adsr`: a linear attack/decay/sustain/release envelope with stage lengths
//! exact to the sample.
//!
//! The envelope is a sequence of linear segments. Within a segment the level
//! is `base + slope · pos`, where `pos` counts the samples done (1 on the
//! segment's first sample), so the level never drifts and a stage of `n`
//! samples ends on its target. The state is plain data ([`EnvState`]) so the
//! voice bank can keep the per-sample part in SIMD-friendly arrays and call
//! the same transition functions as the scalar [`Adsr`].
//!
//! Timing rules, for a gate-on at sample `F`:
//! * attack ramps from the current level to 1.0 over `round(attack · sr)`
//!   samples: the first sample (at `F`) has level `1/n` from silence, the
//!   `n`-th is exactly 1.0;
//! * decay ramps from 1.0 to `sustain` over `round(decay · sr)` samples;
//! * release ramps from the current level to 0 over `round(release · sr)`
//!   samples, whatever stage it interrupts;
//! * a gate-on while releasing starts the attack from the current level, so a
//!   retrigger never jumps (no click);
//! * a zero-length stage is skipped at once.

use bytemuck::{Pod, Zeroable};

/// Longest accepted attack, decay or release time, in seconds.
pub const MAX_STAGE_SECONDS: f32 = 60.0;

/// Marks a stage with no end (idle, sustain).
pub const ENDLESS: u32 = u32::MAX;

/// The stage an envelope is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Stage {
    /// Silent, waiting for a gate-on.
    Idle = 0,
    /// Rising to 1.0.
    Attack = 1,
    /// Falling (or gliding) to the sustain level.
    Decay = 2,
    /// Holding the sustain level until gate-off.
    Sustain = 3,
    /// Falling to 0 after gate-off.
    Release = 4,
}

impl Stage {
    /// The stage with this `u32` code, if any (for untrusted snapshots).
    pub fn from_u32(code: u32) -> Option<Self> {
        Some(match code {
            0 => Self::Idle,
            1 => Self::Attack,
            2 => Self::Decay,
            3 => Self::Sustain,
            4 => Self::Release,
            _ => return None,
        })
    }
}

/// Envelope settings in seconds (times) and linear level (sustain).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdsrParams {
    /// Attack time in seconds, `[0, 60]`.
    pub attack: f32,
    /// Decay time in seconds, `[0, 60]`.
    pub decay: f32,
    /// Sustain level, linear gain `[0, 1]`.
    pub sustain: f32,
    /// Release time in seconds, `[0, 60]`.
    pub release: f32,
}

impl Default for AdsrParams {
    fn default() -> Self {
        Self { attack: 0.005, decay: 0.1, sustain: 0.7, release: 0.2 }
    }
}

/// Envelope settings resolved to whole samples at one sample rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct AdsrTimes {
    /// Attack length in samples.
    pub attack: u32,
    /// Decay length in samples.
    pub decay: u32,
    /// Release length in samples.
    pub release: u32,
    /// Length of a glide to a changed sustain level, in samples (at least 1).
    pub glide: u32,
    /// Sustain level as `f32` bits (kept as bits so the struct is `Eq`).
    pub sustain_bits: u32,
}

impl AdsrTimes {
    /// Resolves `params` at `sample_rate`; out-of-range values are clamped and
    /// non-finite ones become 0.
    pub fn new(params: &AdsrParams, sample_rate: u32, glide: u32) -> Self {
        Self {
            attack: seconds_to_samples(params.attack, sample_rate),
            decay: seconds_to_samples(params.decay, sample_rate),
            release: seconds_to_samples(params.release, sample_rate),
            glide: glide.max(1),
            sustain_bits: clamp_level(params.sustain).to_bits(),
        }
    }

    /// The sustain level.
    pub fn sustain(&self) -> f32 {
        f32::from_bits(self.sustain_bits)
    }
}

/// Clamps a level to `[0, 1]`; NaN becomes 0.
pub fn clamp_level(level: f32) -> f32 {
    if level.is_nan() { 0.0 } else { level.clamp(0.0, 1.0) }
}

/// Converts seconds to whole samples, clamped to `[0, MAX_STAGE_SECONDS]`.
pub fn seconds_to_samples(seconds: f32, sample_rate: u32) -> u32 {
    let s = if seconds.is_nan() { 0.0 } else { seconds.clamp(0.0, MAX_STAGE_SECONDS) };
    (f64::from(s) * f64::from(sample_rate)).round() as u32
}

/// The complete state of one envelope, as plain data.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct EnvState {
    /// [`Stage`] as `u32`.
    pub stage: u32,
    /// Samples left in the current segment, or [`ENDLESS`].
    pub remaining: u32,
    /// Level the segment ends on.
    pub target: f32,
    /// Level at the segment's start.
    pub base: f32,
    /// Level change per sample.
    pub slope: f32,
    /// Samples done in this segment (as `f32`; exact below 2^24).
    pub pos: f32,
}

impl EnvState {
    /// The idle state: level 0, waiting.
    pub const IDLE: Self =
        Self { stage: Stage::Idle as u32, remaining: ENDLESS, target: 0.0, base: 0.0, slope: 0.0, pos: 0.0 };

    /// The stage. An invalid code (only possible through a corrupt snapshot,
    /// which restore rejects) reads as idle.
    pub fn stage(&self) -> Stage {
        Stage::from_u32(self.stage).unwrap_or(Stage::Idle)
    }

    /// The level of the last sample produced.
    #[inline(always)]
    pub fn level(&self) -> f32 {
        self.base + self.slope * self.pos
    }

    /// A segment of `len` samples from `from` to `to` in `stage`; a zero
    /// length lands on `to` at once and reports `None`.
    fn segment(stage: Stage, from: f32, to: f32, len: u32) -> Option<Self> {
        (len > 0).then(|| Self {
            stage: stage as u32,
            remaining: len,
            target: to,
            base: from,
            slope: (to - from) / len as f32,
            pos: 0.0,
        })
    }

    fn hold(stage: Stage, level: f32) -> Self {
        Self { stage: stage as u32, remaining: ENDLESS, target: level, base: level, slope: 0.0, pos: 0.0 }
    }

    /// Enters decay from 1.0 (or sustain at once when decay is 0).
    fn decay_from_peak(times: &AdsrTimes) -> Self {
        Self::segment(Stage::Decay, 1.0, times.sustain(), times.decay)
            .unwrap_or_else(|| Self::hold(Stage::Sustain, times.sustain()))
    }

    /// Gate on: attack from the current level.
    pub fn gate_on(&self, times: &AdsrTimes) -> Self {
        let from = if self.stage() == Stage::Idle { 0.0 } else { self.level() };
        Self::segment(Stage::Attack, from, 1.0, times.attack).unwrap_or_else(|| Self::decay_from_peak(times))
    }

    /// Gate off: release from the current level (nothing when idle).
    pub fn gate_off(&self, times: &AdsrTimes) -> Self {
        if self.stage() == Stage::Idle {
            return *self;
        }
        Self::segment(Stage::Release, self.level(), 0.0, times.release).unwrap_or(Self::IDLE)
    }

    /// The state after the current segment has run out (`remaining` hit 0).
    pub fn segment_end(&self, times: &AdsrTimes) -> Self {
        match self.stage() {
            Stage::Attack => Self::decay_from_peak(times),
            Stage::Decay => {
                let held = Self::hold(Stage::Sustain, self.target);
                held.sustain_changed(times)
            }
            Stage::Release | Stage::Idle => Self::IDLE,
            Stage::Sustain => *self,
        }
    }

    /// Called after the sustain level changed: a sustaining envelope glides to
    /// the new level over `times.glide` samples instead of jumping.
    pub fn sustain_changed(&self, times: &AdsrTimes) -> Self {
        let level = self.level();
        if self.stage() == Stage::Sustain && level != times.sustain() {
            Self::segment(Stage::Decay, level, times.sustain(), times.glide)
                .unwrap_or_else(|| Self::hold(Stage::Sustain, times.sustain()))
        } else {
            *self
        }
    }

    /// Advances `n` samples of the current segment (the caller has produced
    /// them) and returns whether the segment ran out.
    #[inline]
    pub fn consume(&mut self, n: u32) -> bool {
        if self.remaining == ENDLESS {
            return false;
        }
        self.remaining = self.remaining.saturating_sub(n);
        self.remaining == 0
    }
}

/// One per-sample envelope step: advances `pos` and returns the new level.
#[inline(always)]
pub fn env_tick(base: f32, slope: f32, pos: &mut f32) -> f32 {
    *pos += 1.0;
    base + slope * *pos
}

/// A scalar ADSR envelope, for use on its own or in a [`crate::Voice`].
///
/// ```
/// use chronus_synth::{Adsr, AdsrParams};
/// let mut env = Adsr::new(AdsrParams { attack: 0.001, decay: 0.0, sustain: 0.5, release: 0.001 }, 48_000);
/// env.gate_on();
/// let levels: Vec<f32> = (0..48).map(|_| env.next_level()).collect();
/// assert_eq!(levels[47], 1.0);          // 1 ms attack = 48 samples
/// assert_eq!(env.next_level(), 0.5);    // zero decay, straight to sustain
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adsr {
    times: AdsrTimes,
    state: EnvState,
}

/// Default glide for sustain changes: 5 ms.
pub const GLIDE_SECONDS: f32 = 0.005;

impl Adsr {
    /// An idle envelope with `params` at `sample_rate` Hz.
    pub fn new(params: AdsrParams, sample_rate: u32) -> Self {
        let glide = seconds_to_samples(GLIDE_SECONDS, sample_rate);
        Self { times: AdsrTimes::new(&params, sample_rate, glide), state: EnvState::IDLE }
    }

    /// Changes the settings; times apply from the next stage, a new sustain
    /// level is glided to.
    pub fn set_params(&mut self, params: AdsrParams, sample_rate: u32) {
        self.times = AdsrTimes::new(&params, sample_rate, self.times.glide);
        self.state = self.state.sustain_changed(&self.times);
    }

    /// Starts (or restarts) the attack at the next sample.
    pub fn gate_on(&mut self) {
        self.state = self.state.gate_on(&self.times);
    }

    /// Starts the release at the next sample.
    pub fn gate_off(&mut self) {
        self.state = self.state.gate_off(&self.times);
    }

    /// The current stage.
    pub fn stage(&self) -> Stage {
        self.state.stage()
    }

    /// The plain-data state.
    pub fn state(&self) -> &EnvState {
        &self.state
    }

    /// Advances one sample and returns its level, in `[0, 1]`.
    #[inline]
    pub fn next_level(&mut self) -> f32 {
        let level = env_tick(self.state.base, self.state.slope, &mut self.state.pos);
        if self.state.consume(1) {
            self.state = self.state.segment_end(&self.times);
        }
        level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(a: f32, d: f32, s: f32, r: f32) -> Adsr {
        Adsr::new(AdsrParams { attack: a, decay: d, sustain: s, release: r }, 48_000)
    }

    #[test]
    fn stage_lengths_are_exact_to_the_sample() {
        // 10 ms attack = 480, 20 ms decay = 960, 5 ms release = 240 samples.
        let mut e = env(0.010, 0.020, 0.25, 0.005);
        e.gate_on();
        for n in 1..=480 {
            let l = e.next_level();
            assert_eq!(e.stage() == Stage::Attack, n < 480, "attack at {n}");
            if n < 480 {
                assert!(l < 1.0);
            } else {
                assert!((l - 1.0).abs() < 1e-6);
            }
        }
        for n in 1..=960 {
            let l = e.next_level();
            assert_eq!(e.stage() == Stage::Decay, n < 960, "decay at {n}");
            assert!((0.25 - 1e-6..1.0).contains(&l));
        }
        assert_eq!(e.next_level(), 0.25);
        assert_eq!(e.stage(), Stage::Sustain);
        e.gate_off();
        for n in 1..=240 {
            let l = e.next_level();
            assert_eq!(e.stage() == Stage::Release, n < 240, "release at {n}");
            assert!(l < 0.25);
        }
        assert_eq!(e.stage(), Stage::Idle);
        assert_eq!(e.next_level(), 0.0);
    }

    #[test]
    fn first_attack_sample_is_nonzero_and_linear() {
        let mut e = env(0.001, 0.0, 1.0, 0.0);
        e.gate_on();
        assert_eq!(e.next_level(), 1.0 / 48.0);
        assert_eq!(e.next_level(), 2.0 / 48.0);
    }

    #[test]
    fn retrigger_while_releasing_continues_from_the_current_level() {
        let mut e = env(0.01, 0.0, 1.0, 0.1);
        e.gate_on();
        for _ in 0..480 {
            e.next_level();
        }
        e.gate_off();
        let mut last = 0.0;
        for _ in 0..1_000 {
            last = e.next_level();
        }
        e.gate_on();
        let next = e.next_level();
        assert_eq!(e.stage(), Stage::Attack);
        assert!(next > last && next - last < 0.01, "{last} -> {next}");
    }

    #[test]
    fn zero_times_jump_without_stalling() {
        let mut e = env(0.0, 0.0, 0.3, 0.0);
        e.gate_on();
        assert_eq!(e.stage(), Stage::Sustain);
        assert_eq!(e.next_level(), 0.3);
        e.gate_off();
        assert_eq!(e.stage(), Stage::Idle);
        assert_eq!(e.next_level(), 0.0);
    }

    #[test]
    fn sustain_change_glides() {
        let mut e = env(0.0, 0.0, 1.0, 0.1);
        e.gate_on();
        e.next_level();
        e.set_params(AdsrParams { attack: 0.0, decay: 0.0, sustain: 0.0, release: 0.1 }, 48_000);
        let first = e.next_level();
        assert!(first > 0.99, "jumped to {first}");
        for _ in 0..240 {
            e.next_level();
        }
        assert_eq!(e.next_level(), 0.0);
        assert_eq!(e.stage(), Stage::Sustain);
    }

    #[test]
    fn hostile_times_are_clamped() {
        assert_eq!(seconds_to_samples(-1.0, 48_000), 0);
        assert_eq!(seconds_to_samples(f32::NAN, 48_000), 0);
        assert_eq!(seconds_to_samples(f32::INFINITY, 48_000), 2_880_000);
        assert_eq!(clamp_level(f32::NAN), 0.0);
        assert_eq!(clamp_level(7.0), 1.0);
    }
}
