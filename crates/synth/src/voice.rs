//! `Voice`: SimpleSine → Adsr → Biquad → stereo gain, one sample at a time.
//!
//! This is the readable reference of the voice chain and a building block
//! for embedding. [`crate::Synth`] runs the same chain vectorised across
//! voices and is tested to produce bit-identical samples.

use crate::adsr::{Adsr, Stage};
use crate::biquad::{Biquad, BiquadCoefs};
use crate::gain::{GainRamp, pan_gains};
use crate::param::{Param, VoiceParams};
use crate::sine::SimpleSine;
use crate::{FLUSH_PERIOD, RAMP_SECONDS, SynthError};

/// One voice of the synth.
///
/// ```
/// use chronus_synth::{Voice, VoiceParams};
/// let mut v = Voice::new(VoiceParams::default(), 48_000).unwrap();
/// v.note_on(440.0, 0.5).unwrap();
/// let (l, r) = v.next_frame();
/// assert!(l.is_finite() && r.is_finite());
/// ```
#[derive(Clone, Debug)]
pub struct Voice {
    sample_rate: u32,
    ramp: u32,
    params: VoiceParams,
    osc: SimpleSine,
    env: Adsr,
    filter: Biquad,
    gain: GainRamp,
    age: u64,
}

impl Voice {
    /// An idle voice with `params` (sanitised) at `sample_rate` Hz.
    ///
    /// # Errors
    /// [`SynthError::NonFinite`] or [`SynthError::BadFilterKind`] if a parameter
    /// is unusable.
    pub fn new(params: VoiceParams, sample_rate: u32) -> Result<Self, SynthError> {
        let params = params.sanitized(sample_rate)?;
        let mut osc = SimpleSine::new(sample_rate);
        osc.set_freq(params.freq);
        Ok(Self {
            sample_rate,
            ramp: crate::adsr::seconds_to_samples(RAMP_SECONDS, sample_rate).max(1),
            params,
            osc,
            env: Adsr::new(params.adsr(), sample_rate),
            filter: Biquad::new(Self::coefs(&params, sample_rate)),
            gain: GainRamp::steady(pan_gains(params.amp, params.pan)),
            age: 0,
        })
    }

    fn coefs(p: &VoiceParams, sample_rate: u32) -> BiquadCoefs {
        BiquadCoefs::design(p.filter_kind(), p.cutoff, p.q, sample_rate)
    }

    fn is_idle(&self) -> bool {
        self.env.stage() == Stage::Idle
    }

    /// The current settings.
    pub fn params(&self) -> &VoiceParams {
        &self.params
    }

    /// Opens the gate with a new frequency (Hz) and amplitude (linear).
    ///
    /// # Errors
    /// [`SynthError::NonFinite`] if either value is NaN or infinite.
    pub fn note_on(&mut self, freq: f32, amp: f32) -> Result<(), SynthError> {
        let (freq, _) = Param::Freq.sanitize(freq, self.sample_rate)?;
        let (amp, _) = Param::Amp.sanitize(amp, self.sample_rate)?;
        self.params.freq = freq;
        self.params.amp = amp;
        self.osc.set_freq(freq);
        let target = pan_gains(amp, self.params.pan);
        if self.is_idle() {
            self.osc.reset_phase();
            self.filter.reset();
            self.gain = GainRamp::steady(target);
        } else {
            self.gain.ramp_to(target, self.ramp);
        }
        self.env.gate_on();
        Ok(())
    }

    /// Closes the gate.
    pub fn note_off(&mut self) {
        self.env.gate_off();
        if self.is_idle() {
            self.go_idle();
        }
    }

    /// Sets a voice parameter; out-of-range values are clamped. Returns
    /// whether the value was clamped.
    ///
    /// # Errors
    /// [`SynthError::NonFinite`], [`SynthError::BadFilterKind`], or
    /// [`SynthError::NotAVoiceParam`] for `master`.
    pub fn set(&mut self, param: Param, value: f32) -> Result<bool, SynthError> {
        if !param.is_voice_param() {
            return Err(SynthError::NotAVoiceParam(param));
        }
        let (value, clamped) = param.sanitize(value, self.sample_rate)?;
        self.params.store(param, value);
        let ramp = if self.is_idle() { 0 } else { self.ramp };
        match param {
            Param::Freq => self.osc.set_freq(value),
            Param::Amp | Param::Pan => self.gain.ramp_to(pan_gains(self.params.amp, self.params.pan), ramp),
            Param::Cutoff | Param::Q | Param::Filter => {
                self.filter.set_coefs(Self::coefs(&self.params, self.sample_rate), ramp)
            }
            Param::Attack | Param::Decay | Param::Sustain | Param::Release => {
                self.env.set_params(self.params.adsr(), self.sample_rate)
            }
            // Global parameters: not a voice's.
            _ => {}
        }
        Ok(clamped)
    }

    fn go_idle(&mut self) {
        self.filter.reset();
        let coefs = Self::coefs(&self.params, self.sample_rate);
        self.filter.set_coefs(coefs, 0);
        self.gain = GainRamp::steady(self.gain.target);
    }

    /// Renders one stereo frame.
    #[inline]
    pub fn next_frame(&mut self) -> (f32, f32) {
        if self.age.is_multiple_of(FLUSH_PERIOD as u64) {
            self.filter.flush();
        }
        self.age += 1;
        let was_idle = self.is_idle();
        let x = self.osc.next_sample();
        let level = self.env.next_level();
        let y = self.filter.process(x * level);
        let [gl, gr] = self.gain.value;
        let out = (y * gl, y * gr);
        if self.gain.remaining > 0 {
            self.gain.value[0] += self.gain.step[0];
            self.gain.value[1] += self.gain.step[1];
            self.gain.consume(1);
        }
        if !was_idle && self.is_idle() {
            self.go_idle();
        }
        out
    }
}
