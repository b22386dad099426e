//! The voice bank: every voice's state in 8-lane chunks (array of structs of
//! arrays), so the per-sample chain vectorises across voices.
//!
//! Hot per-sample state lives in [`VoiceChunk`]; control state that changes
//! only at segment ends or commands lives in [`VoiceControl`]. Both are plain
//! `#[repr(C)]` data, which is also the snapshot format.
//!
//! Determinism rules that make the output independent of block splitting and
//! of skipping idle chunks:
//! * the per-sample kernel runs the same operations as [`crate::Voice`];
//! * an idle voice holds a canonical state (filter memories 0, ramps landed),
//!   so it outputs exact zeros and skipping it changes nothing;
//! * a note-on on an idle voice restarts its phase at 0.

use bytemuck::{Pod, Zeroable};

use crate::adsr::{AdsrTimes, EnvState, Stage};
use crate::biquad::{BiquadCoefs, flush_tiny};
use crate::gain::{GainRamp, pan_gains};
use crate::param::{Param, VoiceParams};
use crate::sine::{PHASE_TO_TURNS, SINE_POLY, phase_increment};
use wide::{f32x8, i32x8, u32x8};

/// Voices per chunk: one AVX register of `f32`, two SSE registers.
pub const LANES: usize = 8;

/// Per-sample state of [`LANES`] voices, one array per field.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C, align(64))]
pub struct VoiceChunk {
    /// Oscillator phase (fraction of a turn).
    pub phase: [u32; LANES],
    /// Oscillator phase increment per sample.
    pub inc: [u32; LANES],
    /// Envelope segment start level.
    pub env_base: [f32; LANES],
    /// Envelope level change per sample.
    pub env_slope: [f32; LANES],
    /// Envelope samples done in the segment.
    pub env_pos: [f32; LANES],
    /// Filter coefficient b0.
    pub b0: [f32; LANES],
    /// Filter coefficient b1.
    pub b1: [f32; LANES],
    /// Filter coefficient b2.
    pub b2: [f32; LANES],
    /// Filter coefficient a1.
    pub a1: [f32; LANES],
    /// Filter coefficient a2.
    pub a2: [f32; LANES],
    /// Ramp step of b0.
    pub db0: [f32; LANES],
    /// Ramp step of b1.
    pub db1: [f32; LANES],
    /// Ramp step of b2.
    pub db2: [f32; LANES],
    /// Ramp step of a1.
    pub da1: [f32; LANES],
    /// Ramp step of a2.
    pub da2: [f32; LANES],
    /// Filter memory z1.
    pub z1: [f32; LANES],
    /// Filter memory z2.
    pub z2: [f32; LANES],
    /// Left gain.
    pub gl: [f32; LANES],
    /// Right gain.
    pub gr: [f32; LANES],
    /// Ramp step of the left gain.
    pub dgl: [f32; LANES],
    /// Ramp step of the right gain.
    pub dgr: [f32; LANES],
    /// Padding to a whole number of cache lines.
    pub _pad: [u32; LANES],
}

/// Control state of one voice.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct VoiceControl {
    /// The voice's settings.
    pub params: VoiceParams,
    /// Envelope settings in samples.
    pub times: AdsrTimes,
    /// Envelope [`Stage`] code.
    pub env_stage: u32,
    /// Samples left in the envelope segment.
    pub env_remaining: u32,
    /// Level the envelope segment ends on.
    pub env_target: f32,
    /// Samples left in the filter coefficient ramp.
    pub coef_remaining: u32,
    /// Coefficients the ramp ends on.
    pub coef_target: BiquadCoefs,
    /// Samples left in the gain ramp.
    pub gain_remaining: u32,
    /// Gains the ramp ends on.
    pub gain_target: [f32; 2],
}

impl VoiceChunk {
    /// A chunk of idle voices with `params`.
    pub(crate) fn idle(params: &VoiceParams, sample_rate: u32) -> Self {
        let mut c = Self::zeroed();
        let coefs = design(params, sample_rate);
        let [gl, gr] = pan_gains(params.amp, params.pan);
        for l in 0..LANES {
            c.inc[l] = phase_increment(params.freq, sample_rate);
            c.set_coefs(l, &coefs);
            c.gl[l] = gl;
            c.gr[l] = gr;
        }
        c
    }

    fn set_coefs(&mut self, l: usize, c: &BiquadCoefs) {
        self.b0[l] = c.b0;
        self.b1[l] = c.b1;
        self.b2[l] = c.b2;
        self.a1[l] = c.a1;
        self.a2[l] = c.a2;
    }

    fn coefs(&self, l: usize) -> BiquadCoefs {
        BiquadCoefs { b0: self.b0[l], b1: self.b1[l], b2: self.b2[l], a1: self.a1[l], a2: self.a2[l] }
    }

    fn set_coef_steps(&mut self, l: usize, s: &BiquadCoefs) {
        self.db0[l] = s.b0;
        self.db1[l] = s.b1;
        self.db2[l] = s.b2;
        self.da1[l] = s.a1;
        self.da2[l] = s.a2;
    }

    /// Flushes denormal-range filter memories of every lane to 0.
    pub(crate) fn flush(&mut self) {
        for l in 0..LANES {
            self.z1[l] = flush_tiny(self.z1[l]);
            self.z2[l] = flush_tiny(self.z2[l]);
        }
    }

    /// Renders `acc_l.len()` samples of all lanes, adding each lane's output
    /// into the per-lane accumulators. `RAMP` also steps coefficients and
    /// gains (a lane that is not ramping has zero steps).
    ///
    /// This is the scalar chain of [`crate::Voice`] (same operations in the
    /// same order: `sine_from_phase`, `env_tick`, `biquad_tick`, gain) written
    /// on 8-lane vectors; IEEE add, multiply and convert are lane-wise exact,
    /// so each lane gives the scalar chain's bits.
    #[inline(always)]
    pub(crate) fn run<const RAMP: bool>(&mut self, acc_l: &mut [f32x8], acc_r: &mut [f32x8]) {
        let v = f32x8::new;
        let mut phase = u32x8::new(self.phase);
        let inc = u32x8::new(self.inc);
        let (base, slope, mut pos) = (v(self.env_base), v(self.env_slope), v(self.env_pos));
        let (mut b0, mut b1, mut b2) = (v(self.b0), v(self.b1), v(self.b2));
        let (mut a1, mut a2) = (v(self.a1), v(self.a2));
        let (db0, db1, db2, da1, da2) = (v(self.db0), v(self.db1), v(self.db2), v(self.da1), v(self.da2));
        let (mut z1, mut z2) = (v(self.z1), v(self.z2));
        let (mut gl, mut gr, dgl, dgr) = (v(self.gl), v(self.gr), v(self.dgl), v(self.dgr));
        let one = f32x8::splat(1.0);
        for (al, ar) in acc_l.iter_mut().zip(acc_r.iter_mut()) {
            phase += inc;
            let x = sine_x8(phase);
            pos += one;
            let level = base + slope * pos;
            let input = x * level;
            let y = b0 * input + z1;
            z1 = b1 * input - a1 * y + z2;
            z2 = b2 * input - a2 * y;
            *al += y * gl;
            *ar += y * gr;
            if RAMP {
                b0 += db0;
                b1 += db1;
                b2 += db2;
                a1 += da1;
                a2 += da2;
                gl += dgl;
                gr += dgr;
            }
        }
        self.phase = phase.to_array();
        self.env_pos = pos.to_array();
        (self.b0, self.b1, self.b2) = (b0.to_array(), b1.to_array(), b2.to_array());
        (self.a1, self.a2) = (a1.to_array(), a2.to_array());
        (self.z1, self.z2) = (z1.to_array(), z2.to_array());
        (self.gl, self.gr) = (gl.to_array(), gr.to_array());
    }
}

/// The biquad's coefficients for a voice's settings: with the
/// state-variable low-pass selected (`filter 4`), the biquad passes the
/// signal through.
pub(crate) fn design(p: &VoiceParams, sample_rate: u32) -> BiquadCoefs {
    if p.filter == crate::param::SVF_LOWPASS {
        BiquadCoefs { b0: 1.0, b1: 0.0, b2: 0.0, a1: 0.0, a2: 0.0 }
    } else {
        BiquadCoefs::design(p.filter_kind(), p.cutoff, p.q, sample_rate)
    }
}

/// [`sine_from_phase`] on 8 lanes, with the same operations.
#[inline(always)]
pub(crate) fn sine_x8(phase: u32x8) -> f32x8 {
    let signed: i32x8 = bytemuck::cast(phase);
    let x = f32x8::from_i32x8(signed) * f32x8::splat(PHASE_TO_TURNS);
    let half = f32x8::splat(0.5).copysign(x);
    let x = x.abs().simd_gt(f32x8::splat(0.25)).bitselect(half - x, x);
    let x2 = x * x;
    let [c9, c7, c5, c3, c1] = SINE_POLY.map(f32x8::splat);
    let p = c9 * x2 + c7;
    let p = p * x2 + c5;
    let p = p * x2 + c3;
    let p = p * x2 + c1;
    p * x
}

impl VoiceControl {
    /// Control state of an idle voice with `params`.
    pub(crate) fn idle(params: &VoiceParams, sample_rate: u32, glide: u32) -> Self {
        let idle = EnvState::IDLE;
        Self {
            params: *params,
            times: AdsrTimes::new(&params.adsr(), sample_rate, glide),
            env_stage: idle.stage,
            env_remaining: idle.remaining,
            env_target: idle.target,
            coef_remaining: 0,
            coef_target: design(params, sample_rate),
            gain_remaining: 0,
            gain_target: pan_gains(params.amp, params.pan),
        }
    }

    /// Whether the voice is silent and waiting.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.env_stage == Stage::Idle as u32
    }

    /// Samples until this voice's next segment end or ramp end, if any.
    #[inline]
    pub(crate) fn next_event(&self) -> u32 {
        let mut n = self.env_remaining;
        if self.coef_remaining > 0 {
            n = n.min(self.coef_remaining);
        }
        if self.gain_remaining > 0 {
            n = n.min(self.gain_remaining);
        }
        n
    }

    /// Whether a coefficient or gain ramp is under way.
    #[inline]
    pub(crate) fn is_ramping(&self) -> bool {
        self.coef_remaining > 0 || self.gain_remaining > 0
    }
}

/// A mutable view of one voice: its chunk, lane and control state.
pub(crate) struct Lane<'a> {
    pub chunk: &'a mut VoiceChunk,
    pub l: usize,
    pub ctl: &'a mut VoiceControl,
    pub sample_rate: u32,
    pub ramp: u32,
}

impl Lane<'_> {
    fn env(&self) -> EnvState {
        EnvState {
            stage: self.ctl.env_stage,
            remaining: self.ctl.env_remaining,
            target: self.ctl.env_target,
            base: self.chunk.env_base[self.l],
            slope: self.chunk.env_slope[self.l],
            pos: self.chunk.env_pos[self.l],
        }
    }

    fn set_env(&mut self, e: EnvState) {
        self.ctl.env_stage = e.stage;
        self.ctl.env_remaining = e.remaining;
        self.ctl.env_target = e.target;
        self.chunk.env_base[self.l] = e.base;
        self.chunk.env_slope[self.l] = e.slope;
        self.chunk.env_pos[self.l] = e.pos;
    }

    fn gains(&self) -> GainRamp {
        let l = self.l;
        GainRamp {
            value: [self.chunk.gl[l], self.chunk.gr[l]],
            step: [self.chunk.dgl[l], self.chunk.dgr[l]],
            target: self.ctl.gain_target,
            remaining: self.ctl.gain_remaining,
        }
    }

    fn set_gains(&mut self, g: GainRamp) {
        let l = self.l;
        [self.chunk.gl[l], self.chunk.gr[l]] = g.value;
        [self.chunk.dgl[l], self.chunk.dgr[l]] = g.step;
        self.ctl.gain_target = g.target;
        self.ctl.gain_remaining = g.remaining;
    }

    fn ramp_len(&self) -> u32 {
        if self.ctl.is_idle() { 0 } else { self.ramp }
    }

    fn retarget_coefs(&mut self) {
        let target = design(&self.ctl.params, self.sample_rate);
        self.ctl.coef_target = target;
        let len = self.ramp_len();
        if len == 0 {
            self.snap_coefs();
        } else {
            let steps = self.chunk.coefs(self.l).steps_to(&target, len);
            self.chunk.set_coef_steps(self.l, &steps);
            self.ctl.coef_remaining = len;
        }
    }

    fn snap_coefs(&mut self) {
        let target = self.ctl.coef_target;
        self.chunk.set_coefs(self.l, &target);
        self.chunk.set_coef_steps(self.l, &BiquadCoefs::zeroed());
        self.ctl.coef_remaining = 0;
    }

    fn retarget_gains(&mut self) {
        let target = pan_gains(self.ctl.params.amp, self.ctl.params.pan);
        let mut g = self.gains();
        g.ramp_to(target, self.ramp_len());
        self.set_gains(g);
    }

    /// Makes the lane canonical-idle: memories cleared, ramps landed.
    fn go_idle(&mut self) {
        self.chunk.z1[self.l] = 0.0;
        self.chunk.z2[self.l] = 0.0;
        self.snap_coefs();
        let target = self.ctl.gain_target;
        self.set_gains(GainRamp::steady(target));
    }

    /// Opens the gate with sanitised `freq` and `amp`.
    pub fn note_on(&mut self, freq: f32, amp: f32) {
        let was_idle = self.ctl.is_idle();
        self.ctl.params.freq = freq;
        self.ctl.params.amp = amp;
        self.chunk.inc[self.l] = phase_increment(freq, self.sample_rate);
        if was_idle {
            self.chunk.phase[self.l] = 0;
            self.chunk.z1[self.l] = 0.0;
            self.chunk.z2[self.l] = 0.0;
        }
        self.retarget_gains();
        let env = self.env().gate_on(&self.ctl.times);
        self.set_env(env);
    }

    /// Closes the gate.
    pub fn note_off(&mut self) {
        let env = self.env().gate_off(&self.ctl.times);
        self.set_env(env);
        if self.ctl.is_idle() {
            self.go_idle();
        }
    }

    /// Sets a sanitised voice parameter.
    pub fn set(&mut self, param: Param, value: f32) {
        self.ctl.params.store(param, value);
        match param {
            Param::Freq => self.chunk.inc[self.l] = phase_increment(value, self.sample_rate),
            Param::Amp | Param::Pan => self.retarget_gains(),
            Param::Cutoff | Param::Q | Param::Filter => self.retarget_coefs(),
            Param::Attack | Param::Decay | Param::Sustain | Param::Release => {
                let glide = self.ctl.times.glide;
                self.ctl.times = AdsrTimes::new(&self.ctl.params.adsr(), self.sample_rate, glide);
                let env = self.env().sustain_changed(&self.ctl.times);
                self.set_env(env);
            }
            // Global parameters: not a voice's.
            _ => {}
        }
    }

    /// Accounts for `n` rendered samples: ends segments and ramps that ran
    /// out. Returns whether the voice is still active.
    pub fn consume(&mut self, n: u32) -> bool {
        let mut env = self.env();
        if env.consume(n) {
            env = env.segment_end(&self.ctl.times);
            self.set_env(env);
            if self.ctl.is_idle() {
                self.go_idle();
            }
        } else {
            self.ctl.env_remaining = env.remaining;
        }
        if self.ctl.coef_remaining > 0 {
            self.ctl.coef_remaining = self.ctl.coef_remaining.saturating_sub(n);
            if self.ctl.coef_remaining == 0 {
                self.snap_coefs();
            }
        }
        let mut g = self.gains();
        g.consume(n);
        self.set_gains(g);
        !self.ctl.is_idle()
    }
}
