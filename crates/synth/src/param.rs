//! Voice and global parameters: names, units, accepted ranges.

use bytemuck::{Pod, Zeroable};

use crate::SynthError;
use crate::adsr::{AdsrParams, MAX_STAGE_SECONDS};
use crate::biquad::{FilterKind, MAX_CUTOFF_RATIO, MIN_CUTOFF_HZ, Q_RANGE};

/// The one table of parameters: the enum, its ids, its wire names (OSC,
/// scores, journals, patch files) and [`Param::ALL`] all come from it.
macro_rules! parameters {
    ($($(#[$doc:meta])* $variant:ident = $id:literal, $name:literal;)*) => {
        /// A settable parameter. The names are the ones used on the wire
        /// (OSC, scores, journals, patch files).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum Param {
            $($(#[$doc])* $variant = $id,)*
        }

        impl Param {
            /// Every parameter, in id order.
            pub const ALL: [Param; PARAMS] = [$(Param::$variant),*];
            /// The wire names, in id order (the `param` choice of `/set`).
            pub const NAMES: [&'static str; PARAMS] = [$($name),*];
        }

        /// How many parameters there are.
        const PARAMS: usize = [$($id),*].len();
    };
}

parameters! {
    /// Oscillator frequency in Hz, `[0, sr/2]`.
    Freq = 0, "freq";
    /// Voice amplitude, linear gain `[0, 1]`.
    Amp = 1, "amp";
    /// Filter cutoff in Hz, `[10, 0.49·sr]`.
    Cutoff = 2, "cutoff";
    /// Filter quality factor, `[0.1, 40]`.
    Q = 3, "q";
    /// Attack time in seconds, `[0, 60]`.
    Attack = 4, "attack";
    /// Decay time in seconds, `[0, 60]`.
    Decay = 5, "decay";
    /// Sustain level, linear `[0, 1]`.
    Sustain = 6, "sustain";
    /// Release time in seconds, `[0, 60]`.
    Release = 7, "release";
    /// Stereo position, `-1` (left) to `1` (right), constant power.
    Pan = 8, "pan";
    /// Filter kind: 0 low-pass, 1 high-pass, 2 band-pass, 3 notch.
    Filter = 9, "filter";
    /// Master output gain, linear `[0, 4]`; global only.
    Master = 10, "master";
    /// Stereo delay time in seconds, `[0.001, 1]`; global.
    DelayTime = 11, "delay_time";
    /// Delay feedback, `[0, 0.95]`; global.
    DelayFeedback = 12, "delay_feedback";
    /// Delay wet level, `[0, 1]` (0: off); global.
    DelayMix = 13, "delay_mix";
    /// Reverb room size, `[0, 1]`; global.
    ReverbSize = 14, "reverb_size";
    /// Reverb high-frequency damping, `[0, 1]`; global.
    ReverbDamping = 15, "reverb_damping";
    /// Reverb wet level, `[0, 1]` (0: off); global.
    ReverbMix = 16, "reverb_mix";
    /// Oscillator 1 waveform: 0 sine, 1 saw, 2 square, 3 triangle, 4 noise.
    Wave = 17, "wave";
    /// Oscillator 2 waveform (same codes).
    Wave2 = 18, "wave2";
    /// Pulse width of the square waves, `[0.05, 0.95]`.
    Pw = 19, "pw";
    /// Oscillator 2 detune in cents, `[-1200, 1200]`.
    Detune = 20, "detune";
    /// Oscillator 2 level, `[0, 1]` (oscillator 1 gets the rest).
    OscMix = 21, "osc_mix";
    /// White noise level, `[0, 1]`.
    Noise = 22, "noise";
    /// Filter envelope amount in octaves, `[-8, 8]`.
    FilterEnv = 23, "filter_env";
    /// Filter envelope attack, seconds `[0, 60]`.
    FilterAttack = 24, "filter_attack";
    /// Filter envelope decay, seconds `[0, 60]`.
    FilterDecay = 25, "filter_decay";
    /// Filter envelope sustain, `[0, 1]`.
    FilterSustain = 26, "filter_sustain";
    /// Filter envelope release, seconds `[0, 60]`.
    FilterRelease = 27, "filter_release";
    /// Cutoff key tracking, `[0, 1]`.
    KeyTrack = 28, "key_track";
    /// Velocity to cutoff, octaves `[0, 8]`.
    VelCutoff = 29, "vel_cutoff";
    /// LFO shape: 0 sine, 1 triangle, 2 square, 3 sample-and-hold.
    LfoShape = 30, "lfo_shape";
    /// LFO rate, Hz `[0, 50]`.
    LfoRate = 31, "lfo_rate";
    /// LFO to pitch, semitones `[0, 24]`.
    LfoPitch = 32, "lfo_pitch";
    /// LFO to cutoff, octaves `[0, 8]`.
    LfoCutoff = 33, "lfo_cutoff";
    /// LFO to amplitude (tremolo), `[0, 1]`.
    LfoAmp = 34, "lfo_amp";
    /// LFO to pulse width, `[0, 0.45]`.
    LfoPw = 35, "lfo_pw";
}

/// The `filter` code of the state-variable (resonant) low-pass; 0–3 are
/// the biquad's kinds.
pub const SVF_LOWPASS: u32 = 4;

/// Parameter names in id order (the `param` choice of `/set`).
pub const PARAM_NAMES: [&str; PARAMS] = Param::NAMES;

// Ids are positions: `from_id` and `NAMES` index by them.
const _: () = {
    let mut i = 0;
    while i < PARAMS {
        assert!(Param::ALL[i] as usize == i);
        i += 1;
    }
};

impl Param {
    /// The wire name (`"cutoff"`).
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The parameter with this wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The parameter with this numeric id (as in shared memory).
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.get(usize::from(id)).copied()
    }

    /// The numeric id.
    pub fn id(self) -> u16 {
        self as u16
    }

    /// Whether this parameter exists per voice (`freq` … `filter`); the
    /// others are global (`master`, the effects).
    pub fn is_voice_param(self) -> bool {
        (self as u16) < Param::Master as u16
    }

    /// Whether it belongs to the instrument's patch (oscillators, filter
    /// envelope, LFO: `wave` … `lfo_pw`).
    pub(crate) fn is_patch_param(self) -> bool {
        (self as u16) >= Param::Wave as u16
    }

    /// Its index among the master bus's settings, for the effects'.
    pub(crate) fn bus_index(self) -> Option<usize> {
        let i = (self as u16).checked_sub(Param::DelayTime as u16)?;
        (i < 6).then_some(usize::from(i))
    }

    /// Validates `value` for this parameter at `sample_rate`: non-finite
    /// values are errors, out-of-range ones are clamped. Returns the value to
    /// use and whether it was clamped.
    pub fn sanitize(self, value: f32, sample_rate: u32) -> Result<(f32, bool), SynthError> {
        if !value.is_finite() {
            return Err(SynthError::NonFinite { param: self });
        }
        let sr = sample_rate as f32;
        let (lo, hi) = match self {
            Param::Freq => (0.0, sr * 0.5),
            Param::Amp | Param::Sustain => (0.0, 1.0),
            Param::Cutoff => (MIN_CUTOFF_HZ, sr * MAX_CUTOFF_RATIO),
            Param::Q => Q_RANGE,
            Param::Attack | Param::Decay | Param::Release => (0.0, MAX_STAGE_SECONDS),
            Param::Pan => (-1.0, 1.0),
            Param::Master => (0.0, 4.0),
            Param::DelayTime => (0.001, crate::master::MAX_DELAY_SECONDS),
            Param::DelayFeedback => (0.0, 0.95),
            Param::DelayMix
            | Param::ReverbSize
            | Param::ReverbDamping
            | Param::ReverbMix
            | Param::OscMix
            | Param::Noise
            | Param::FilterSustain
            | Param::KeyTrack
            | Param::LfoAmp => (0.0, 1.0),
            Param::Pw => (0.05, 0.95),
            Param::Detune => (-1_200.0, 1_200.0),
            Param::FilterEnv => (-8.0, 8.0),
            Param::FilterAttack | Param::FilterDecay | Param::FilterRelease => (0.0, MAX_STAGE_SECONDS),
            Param::VelCutoff | Param::LfoCutoff => (0.0, 8.0),
            Param::LfoRate => (0.0, 50.0),
            Param::LfoPitch => (0.0, 24.0),
            Param::LfoPw => (0.0, 0.45),
            Param::Wave | Param::Wave2 | Param::LfoShape => {
                let most = if self == Param::LfoShape { 3.0 } else { 4.0 };
                return if value.fract() == 0.0 && (0.0..=most).contains(&value) {
                    Ok((value, false))
                } else {
                    Err(SynthError::BadChoice { param: self, value })
                };
            }
            Param::Filter => {
                let kind = value.round();
                let known = FilterKind::from_u32(kind as u32).is_some() || kind == SVF_LOWPASS as f32;
                return if known && kind == value && kind >= 0.0 {
                    Ok((kind, false))
                } else {
                    Err(SynthError::BadFilterKind(value))
                };
            }
        };
        let v = value.clamp(lo, hi);
        Ok((v, v != value))
    }
}

impl std::fmt::Display for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The settings of one voice, as plain data.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct VoiceParams {
    /// Oscillator frequency in Hz.
    pub freq: f32,
    /// Amplitude, linear gain.
    pub amp: f32,
    /// Filter cutoff in Hz.
    pub cutoff: f32,
    /// Filter quality factor.
    pub q: f32,
    /// Attack in seconds.
    pub attack: f32,
    /// Decay in seconds.
    pub decay: f32,
    /// Sustain level, linear.
    pub sustain: f32,
    /// Release in seconds.
    pub release: f32,
    /// Stereo position, -1 to 1.
    pub pan: f32,
    /// [`FilterKind`] code.
    pub filter: u32,
}

impl Default for VoiceParams {
    fn default() -> Self {
        let env = AdsrParams::default();
        Self {
            freq: 440.0,
            amp: 0.5,
            cutoff: 4_000.0,
            q: std::f32::consts::FRAC_1_SQRT_2,
            attack: env.attack,
            decay: env.decay,
            sustain: env.sustain,
            release: env.release,
            pan: 0.0,
            filter: FilterKind::LowPass as u32,
        }
    }
}

impl VoiceParams {
    /// Stores an already sanitised value of a voice parameter.
    pub fn store(&mut self, param: Param, value: f32) {
        match param {
            Param::Freq => self.freq = value,
            Param::Amp => self.amp = value,
            Param::Cutoff => self.cutoff = value,
            Param::Q => self.q = value,
            Param::Attack => self.attack = value,
            Param::Decay => self.decay = value,
            Param::Sustain => self.sustain = value,
            Param::Release => self.release = value,
            Param::Pan => self.pan = value,
            Param::Filter => self.filter = value as u32,
            _ => {}
        }
    }

    /// The value of a voice parameter (`None` for a global one).
    pub fn load(&self, param: Param) -> Option<f32> {
        Some(match param {
            Param::Freq => self.freq,
            Param::Amp => self.amp,
            Param::Cutoff => self.cutoff,
            Param::Q => self.q,
            Param::Attack => self.attack,
            Param::Decay => self.decay,
            Param::Sustain => self.sustain,
            Param::Release => self.release,
            Param::Pan => self.pan,
            Param::Filter => self.filter as f32,
            _ => return None,
        })
    }

    /// The envelope part.
    pub fn adsr(&self) -> AdsrParams {
        AdsrParams { attack: self.attack, decay: self.decay, sustain: self.sustain, release: self.release }
    }

    /// The filter kind.
    pub fn filter_kind(&self) -> FilterKind {
        FilterKind::from_u32(self.filter).unwrap_or_default()
    }

    /// Sanitises every field (for configurations and snapshots).
    pub fn sanitized(&self, sample_rate: u32) -> Result<Self, SynthError> {
        let mut out = *self;
        for param in Param::ALL {
            let Some(raw) = self.load(param) else { continue };
            out.store(param, param.sanitize(raw, sample_rate)?.0);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_round_trip() {
        for p in Param::ALL {
            assert_eq!(Param::from_name(p.name()), Some(p));
            assert_eq!(Param::from_id(p.id()), Some(p));
        }
        assert_eq!(Param::from_name("volume"), None);
        assert_eq!(Param::from_id(Param::ALL.len() as u16), None);
    }

    #[test]
    fn sanitize_rejects_non_finite_and_clamps_the_rest() {
        assert!(Param::Freq.sanitize(f32::NAN, 48_000).is_err());
        assert!(Param::Q.sanitize(f32::NEG_INFINITY, 48_000).is_err());
        assert_eq!(Param::Freq.sanitize(1.0e6, 48_000), Ok((24_000.0, true)));
        assert_eq!(Param::Q.sanitize(0.0, 48_000), Ok((0.1, true)));
        assert_eq!(Param::Attack.sanitize(-1.0, 48_000), Ok((0.0, true)));
        assert_eq!(Param::Amp.sanitize(0.25, 48_000), Ok((0.25, false)));
        assert_eq!(Param::Filter.sanitize(2.0, 48_000), Ok((2.0, false)));
        assert!(Param::Filter.sanitize(1.5, 48_000).is_err());
        assert_eq!(Param::Filter.sanitize(4.0, 48_000), Ok((4.0, false)), "the resonant low-pass");
        assert!(Param::Filter.sanitize(5.0, 48_000).is_err());
        assert!(Param::Wave.sanitize(1.5, 48_000).is_err());
        assert_eq!(Param::Wave.sanitize(4.0, 48_000), Ok((4.0, false)));
        assert!(Param::LfoShape.sanitize(4.0, 48_000).is_err());
        assert!(Param::Filter.sanitize(-1.0, 48_000).is_err());
    }
}
