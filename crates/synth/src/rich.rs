//! The instrument's voice, beyond the plain one: two band-limited
//! oscillators (sine, saw, pulse, triangle or noise, the second detuned and
//! mixed in), white noise, a resonant state-variable low-pass made for
//! sweeps (`filter 4`) with its own envelope, key tracking and velocity, and
//! an LFO per voice routable to pitch, cutoff, amplitude and pulse width.
//!
//! The plain voice (one sine, none of the above) keeps the bank's own
//! kernel, bit for bit; a voice runs this one only when the patch uses
//! something of it. Per sample, the oscillators are read lane by lane (a
//! table look-up each) and the rest — envelope, biquad, state-variable
//! filter, gains — runs on 8 lanes at once like the plain kernel. Slowly
//! moving values (LFO, filter envelope, the filter's coefficients, pitch and
//! width modulation) are computed at control rate, every [`CONTROL`] frames
//! at absolute frame numbers, so how blocks are split never changes a bit.
//! All state is plain data in the snapshot.

use bytemuck::{Pod, Zeroable};
use wide::{f32x8, i32x8, u32x8};

use crate::bank::{LANES, VoiceChunk};
use crate::sine::sine_from_phase;
use crate::wavetable::{NOISE, SAW, SINE, SQUARE, TRIANGLE, WaveTables};

/// Frames between control-rate updates (aligned to absolute frames): 0.67 ms
/// at 48 kHz (scsynth's control blocks are 64 frames).
pub const CONTROL: usize = 32;

pub use crate::param::SVF_LOWPASS;

/// Which filters a chunk's lanes run ([`run_rich`]'s `FILTERS`): only
/// biquads, only the state-variable low-pass, or some of each.
pub(crate) const BIQUAD_ONLY: u8 = 0;
/// See [`BIQUAD_ONLY`].
pub(crate) const SVF_ONLY: u8 = 1;
/// See [`BIQUAD_ONLY`].
pub(crate) const BOTH: u8 = 2;

/// Stages of the filter envelope.
const F_IDLE: u32 = 0;
const F_ATTACK: u32 = 1;
const F_DECAY: u32 = 2;
const F_SUSTAIN: u32 = 3;
const F_RELEASE: u32 = 4;

/// The patch's instrument settings: global, plain data (in the snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct Patch {
    /// Oscillator 1 waveform ([`crate::wavetable`] codes).
    pub wave: u32,
    /// Oscillator 2 waveform.
    pub wave2: u32,
    /// Pulse width, a fraction of a turn `[0.05, 0.95]`.
    pub pw: f32,
    /// Oscillator 2 detune, cents.
    pub detune: f32,
    /// Oscillator 2 level (oscillator 1 gets `1 - osc_mix`).
    pub osc_mix: f32,
    /// White noise level.
    pub noise: f32,
    /// Filter envelope amount, octaves (negative: closes).
    pub filter_env: f32,
    /// Filter envelope attack, seconds.
    pub filter_attack: f32,
    /// Filter envelope decay, seconds.
    pub filter_decay: f32,
    /// Filter envelope sustain, `[0, 1]`.
    pub filter_sustain: f32,
    /// Filter envelope release, seconds.
    pub filter_release: f32,
    /// Key tracking: the cutoff follows the note's pitch, `[0, 1]`.
    pub key_track: f32,
    /// Velocity (the note's amplitude) to cutoff, octaves at full amplitude.
    pub vel_cutoff: f32,
    /// LFO shape: 0 sine, 1 triangle, 2 square, 3 sample-and-hold.
    pub lfo_shape: u32,
    /// LFO rate, Hz.
    pub lfo_rate: f32,
    /// LFO to pitch, semitones.
    pub lfo_pitch: f32,
    /// LFO to cutoff, octaves.
    pub lfo_cutoff: f32,
    /// LFO to amplitude (tremolo depth), `[0, 1]`.
    pub lfo_amp: f32,
    /// LFO to pulse width.
    pub lfo_pw: f32,
}

impl Default for Patch {
    /// The plain voice: one sine oscillator, nothing else.
    fn default() -> Self {
        Self {
            wave: SINE,
            wave2: SAW,
            pw: 0.5,
            detune: 0.0,
            osc_mix: 0.0,
            noise: 0.0,
            filter_env: 0.0,
            filter_attack: 0.01,
            filter_decay: 0.3,
            filter_sustain: 0.0,
            filter_release: 0.3,
            key_track: 0.0,
            vel_cutoff: 0.0,
            lfo_shape: 0,
            lfo_rate: 5.0,
            lfo_pitch: 0.0,
            lfo_cutoff: 0.0,
            lfo_amp: 0.0,
            lfo_pw: 0.0,
        }
    }
}

impl Patch {
    /// Stores an already sanitised value of a patch parameter (others are
    /// ignored).
    pub fn store(&mut self, param: crate::Param, value: f32) {
        use crate::Param as P;
        match param {
            P::Wave => self.wave = value as u32,
            P::Wave2 => self.wave2 = value as u32,
            P::Pw => self.pw = value,
            P::Detune => self.detune = value,
            P::OscMix => self.osc_mix = value,
            P::Noise => self.noise = value,
            P::FilterEnv => self.filter_env = value,
            P::FilterAttack => self.filter_attack = value,
            P::FilterDecay => self.filter_decay = value,
            P::FilterSustain => self.filter_sustain = value,
            P::FilterRelease => self.filter_release = value,
            P::KeyTrack => self.key_track = value,
            P::VelCutoff => self.vel_cutoff = value,
            P::LfoShape => self.lfo_shape = value as u32,
            P::LfoRate => self.lfo_rate = value,
            P::LfoPitch => self.lfo_pitch = value,
            P::LfoCutoff => self.lfo_cutoff = value,
            P::LfoAmp => self.lfo_amp = value,
            P::LfoPw => self.lfo_pw = value,
            _ => {}
        }
    }

    /// The value of a patch parameter (0 for others).
    pub fn get(&self, param: crate::Param) -> f32 {
        use crate::Param as P;
        match param {
            P::Wave => self.wave as f32,
            P::Wave2 => self.wave2 as f32,
            P::Pw => self.pw,
            P::Detune => self.detune,
            P::OscMix => self.osc_mix,
            P::Noise => self.noise,
            P::FilterEnv => self.filter_env,
            P::FilterAttack => self.filter_attack,
            P::FilterDecay => self.filter_decay,
            P::FilterSustain => self.filter_sustain,
            P::FilterRelease => self.filter_release,
            P::KeyTrack => self.key_track,
            P::VelCutoff => self.vel_cutoff,
            P::LfoShape => self.lfo_shape as f32,
            P::LfoRate => self.lfo_rate,
            P::LfoPitch => self.lfo_pitch,
            P::LfoCutoff => self.lfo_cutoff,
            P::LfoAmp => self.lfo_amp,
            P::LfoPw => self.lfo_pw,
            _ => 0.0,
        }
    }

    /// Whether every field is in range (a snapshot's).
    pub(crate) fn valid(&self, sample_rate: u32) -> bool {
        crate::Param::ALL.iter().filter(|p| p.is_patch_param()).all(|&p| {
            p.sanitize(self.get(p), sample_rate).is_ok_and(|(v, clamped)| !clamped && v == self.get(p))
        })
    }

    /// Whether a voice needs this module's kernel: anything but one sine.
    pub fn is_rich(&self) -> bool {
        self.wave != SINE
            || self.osc_mix > 0.0
            || self.noise > 0.0
            || self.filter_env != 0.0
            || self.key_track > 0.0
            || self.vel_cutoff > 0.0
            || self.lfo_pitch > 0.0
            || self.lfo_cutoff > 0.0
            || self.lfo_amp > 0.0
            || self.lfo_pw > 0.0
    }
}

/// The instrument state of [`LANES`] voices (next to their [`VoiceChunk`]).
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C, align(64))]
pub struct RichChunk {
    /// Oscillator 2 phase.
    pub phase2: [u32; LANES],
    /// Oscillator 1 increment after pitch modulation.
    pub inc1: [u32; LANES],
    /// Oscillator 2 increment.
    pub inc2: [u32; LANES],
    /// Pulse width (a fraction of a turn as `u32`), after modulation.
    pub pw: [u32; LANES],
    /// Noise generator state (xorshift32, never 0).
    pub noise: [u32; LANES],
    /// LFO phase.
    pub lfo_phase: [u32; LANES],
    /// Filter envelope stage.
    pub fenv_stage: [u32; LANES],
    /// State-variable filter memories.
    pub ic1: [f32; LANES],
    /// See `ic1`.
    pub ic2: [f32; LANES],
    /// State-variable filter coefficients (Simper's `a1, a2, a3`).
    pub sa1: [f32; LANES],
    /// See `sa1`.
    pub sa2: [f32; LANES],
    /// See `sa1`.
    pub sa3: [f32; LANES],
    /// 1 where the lane runs the state-variable filter, else 0.
    pub svf: [f32; LANES],
    /// Filter envelope level.
    pub fenv: [f32; LANES],
    /// LFO value, `[-1, 1]`.
    pub lfo: [f32; LANES],
    /// Sample-and-hold value.
    pub held: [f32; LANES],
    /// Amplitude modulation (tremolo) multiplier.
    pub amp_mod: [f32; LANES],
    /// The note's velocity (its amplitude at note-on).
    pub vel: [f32; LANES],
}

impl RichChunk {
    /// A chunk of idle voices.
    pub fn idle() -> Self {
        let mut c = Self::zeroed();
        for l in 0..LANES {
            c.noise[l] = 0x9e37_79b9 ^ (l as u32 + 1).wrapping_mul(0x85eb_ca6b);
            c.amp_mod[l] = 1.0;
            c.sa1[l] = 1.0;
            c.pw[l] = 1 << 31;
        }
        c
    }

    /// Lane `l` starts a note from silence: its memories and envelopes from
    /// zero, its phases from 0.
    pub fn start(&mut self, l: usize, vel: f32) {
        self.phase2[l] = 0;
        self.ic1[l] = 0.0;
        self.ic2[l] = 0.0;
        self.lfo_phase[l] = 0;
        self.fenv[l] = 0.0;
        self.vel[l] = vel;
        self.fenv_stage[l] = F_ATTACK;
    }

    /// A retrigger (the voice was sounding): the filter envelope attacks
    /// again from where it is; phases and memories run on.
    pub fn retrigger(&mut self, l: usize, vel: f32) {
        self.vel[l] = vel;
        self.fenv_stage[l] = F_ATTACK;
    }

    /// The gate closed.
    pub fn release(&mut self, l: usize) {
        if self.fenv_stage[l] != F_IDLE {
            self.fenv_stage[l] = F_RELEASE;
        }
    }

    /// The lane went silent: canonical idle state.
    pub fn go_idle(&mut self, l: usize) {
        self.ic1[l] = 0.0;
        self.ic2[l] = 0.0;
        self.fenv[l] = 0.0;
        self.fenv_stage[l] = F_IDLE;
    }

    /// Checks a chunk read from a snapshot.
    pub(crate) fn valid(&self) -> bool {
        let floats = [
            &self.ic1,
            &self.ic2,
            &self.sa1,
            &self.sa2,
            &self.sa3,
            &self.svf,
            &self.fenv,
            &self.lfo,
            &self.held,
            &self.amp_mod,
            &self.vel,
        ];
        floats.iter().all(|a| a.iter().all(|v| v.is_finite()))
            && self.fenv_stage.iter().all(|&s| s <= F_RELEASE)
            && self.noise.iter().all(|&n| n != 0)
    }
}

/// What the control-rate update of one lane needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LaneControl {
    /// The note's base increment (from its frequency).
    pub inc: u32,
    /// The note's frequency, Hz.
    pub freq: f32,
    /// The voice's cutoff, Hz, and Q.
    pub cutoff: f32,
    /// See `cutoff`.
    pub q: f32,
    /// The voice's filter code.
    pub filter: u32,
}

/// Precomputed per-patch constants of the control update.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ControlRates {
    sample_rate: f32,
    lfo_inc: u32,
    attack_step: f32,
    decay_coef: f32,
    release_coef: f32,
    detune: f32,
}

/// A per-`CONTROL`-frames coefficient for a time constant of `seconds`.
fn coef(seconds: f32, sample_rate: f32) -> f32 {
    let steps = (seconds.max(1.0e-4) * sample_rate / CONTROL as f32).max(1.0);
    (-4.6 / steps).exp() // ≈ 1% left after `seconds`
}

impl ControlRates {
    pub(crate) fn new(p: &Patch, sample_rate: u32) -> Self {
        let sr = sample_rate as f32;
        let per = CONTROL as f32;
        Self {
            sample_rate: sr,
            lfo_inc: ((p.lfo_rate / sr * per) as f64 * 4_294_967_296.0) as u32,
            attack_step: per / (p.filter_attack.max(1.0e-4) * sr),
            decay_coef: coef(p.filter_decay, sr),
            release_coef: coef(p.filter_release, sr),
            detune: (p.detune / 1_200.0).exp2(),
        }
    }
}

fn xorshift(state: &mut u32) -> f32 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    (x as i32) as f32 * (1.0 / 2_147_483_648.0)
}

/// One control-rate step of lane `l` (`advance`: a step of time passes; not
/// when a note starts between steps): LFO, filter envelope, then the
/// modulated pitch, width, amplitude and filter coefficients.
pub(crate) fn control_step(
    c: &mut RichChunk,
    l: usize,
    p: &Patch,
    r: &ControlRates,
    lane: &LaneControl,
    advance: bool,
) {
    // LFO.
    let before = c.lfo_phase[l];
    if advance {
        c.lfo_phase[l] = before.wrapping_add(r.lfo_inc);
    }
    let phase = c.lfo_phase[l];
    let turns = phase as f32 * (1.0 / 4_294_967_296.0);
    c.lfo[l] = match p.lfo_shape {
        0 => sine_from_phase(phase),
        1 => 1.0 - 4.0 * (turns - 0.5).abs(),
        2 => {
            if turns < 0.5 {
                1.0
            } else {
                -1.0
            }
        }
        _ => {
            // A new random value each cycle.
            if phase < before {
                c.held[l] = xorshift(&mut c.noise[l]);
            }
            c.held[l]
        }
    };
    let lfo = c.lfo[l];
    // Filter envelope.
    let (stage, level) = (c.fenv_stage[l], c.fenv[l]);
    let (stage, level) = if !advance {
        (stage, level)
    } else {
        match stage {
            F_ATTACK if level + r.attack_step >= 1.0 => (F_DECAY, 1.0),
            F_ATTACK => (F_ATTACK, level + r.attack_step),
            F_DECAY => {
                let s = p.filter_sustain;
                let next = s + (level - s) * r.decay_coef;
                if (next - s).abs() < 1.0e-4 { (F_SUSTAIN, s) } else { (F_DECAY, next) }
            }
            F_SUSTAIN => (F_SUSTAIN, p.filter_sustain),
            F_RELEASE => {
                let next = level * r.release_coef;
                if next < 1.0e-4 { (F_IDLE, 0.0) } else { (F_RELEASE, next) }
            }
            _ => (F_IDLE, 0.0),
        }
    };
    c.fenv_stage[l] = stage;
    c.fenv[l] = level;
    // Pitch and width.
    let inc1 = if p.lfo_pitch == 0.0 {
        lane.inc
    } else {
        let pitch = (p.lfo_pitch * lfo / 12.0).exp2();
        (lane.inc as f32 * pitch).min(2_147_483_648.0) as u32
    };
    c.inc1[l] = inc1;
    c.inc2[l] = (inc1 as f32 * r.detune).min(2_147_483_648.0) as u32;
    let pw = (p.pw + p.lfo_pw * lfo).clamp(0.02, 0.98);
    c.pw[l] = (pw * 4_294_967_296.0) as u32;
    c.amp_mod[l] = 1.0 - p.lfo_amp * (0.5 - 0.5 * lfo);
    // The state-variable filter's cutoff, modulated, and its coefficients.
    c.svf[l] = f32::from(u8::from(lane.filter == SVF_LOWPASS));
    if lane.filter == SVF_LOWPASS {
        let key = if p.key_track == 0.0 || lane.freq <= 0.0 { 0.0 } else { (lane.freq / 261.626).log2() };
        let octaves = p.filter_env * level + p.lfo_cutoff * lfo + p.vel_cutoff * c.vel[l] + p.key_track * key;
        let fc = (lane.cutoff * octaves.exp2()).clamp(20.0, 0.45 * r.sample_rate);
        let g = (std::f32::consts::PI * fc / r.sample_rate).tan();
        let k = 1.0 / lane.q.max(0.5);
        let a1 = 1.0 / (1.0 + g * (g + k));
        c.sa1[l] = a1;
        c.sa2[l] = g * a1;
        c.sa3[l] = g * g * a1;
    }
}

pub(crate) type Table = [f32; crate::wavetable::TABLE_LEN + 1];

/// 8 lanes' tables at their phases, interpolated: the look-ups per lane,
/// the arithmetic on 8 lanes.
#[inline(always)]
fn read_x8(t: &[&Table; LANES], phase: u32x8) -> f32x8 {
    const SHIFT: u32 = 32 - crate::wavetable::TABLE_LEN.trailing_zeros();
    let idx = phase.unbounded_shr_scalar(SHIFT).to_array();
    let (mut a, mut b) = ([0.0f32; LANES], [0.0f32; LANES]);
    for l in 0..LANES {
        let i = idx[l] as usize & (crate::wavetable::TABLE_LEN - 1);
        a[l] = t[l][i];
        b[l] = t[l][i + 1];
    }
    let frac: i32x8 = bytemuck::cast(phase.unbounded_shl_scalar(32 - SHIFT).unbounded_shr_scalar(1));
    let frac = f32x8::from_i32x8(frac) * f32x8::splat(1.0 / 2_147_483_648.0);
    let (a, b) = (f32x8::new(a), f32x8::new(b));
    a + (b - a) * frac
}

/// xorshift32 on 8 lanes (each lane as [`xorshift`]), as samples in
/// `[-1, 1)`.
#[inline(always)]
fn noise_x8(state: &mut u32x8) -> f32x8 {
    let mut x = *state;
    x ^= x.unbounded_shl_scalar(13);
    x ^= x.unbounded_shr_scalar(17);
    x ^= x.unbounded_shl_scalar(5);
    *state = x;
    f32x8::from_i32x8(bytemuck::cast(x)) * f32x8::splat(1.0 / 2_147_483_648.0)
}

/// One sample of 8 lanes of an oscillator of waveform `wave`.
#[inline(always)]
fn wave_x8(wave: u32, t: &[&Table; LANES], phase: u32x8, pw: u32x8, noise: &mut u32x8) -> f32x8 {
    match wave {
        SAW | TRIANGLE => read_x8(t, phase),
        SQUARE => read_x8(t, phase) - read_x8(t, phase - pw),
        NOISE => noise_x8(noise),
        _ => crate::bank::sine_x8(phase),
    }
}

/// Each lane's table for `wave` at its increment.
pub(crate) fn tables<'t>(t: &'t WaveTables, wave: u32, inc: &[u32; LANES]) -> [&'t Table; LANES] {
    std::array::from_fn(|l| if wave == TRIANGLE { t.triangle_table(inc[l]) } else { t.saw_table(inc[l]) })
}

/// Renders `acc_l.len()` samples (at most [`CONTROL`]) of every lane of a
/// chunk with the instrument's voice, adding into the accumulators: the
/// oscillators per lane, the rest on 8 lanes like the plain kernel (amp
/// envelope, biquad, state-variable filter, gains; `RAMP` steps the
/// biquad's coefficients and the gains).
#[inline(always)]
pub(crate) fn run_rich<const RAMP: bool, const FILTERS: u8>(
    v: &mut VoiceChunk,
    c: &mut RichChunk,
    p: &Patch,
    t: &WaveTables,
    acc_l: &mut [f32x8],
    acc_r: &mut [f32x8],
) {
    let w = f32x8::new;
    let (base, slope, mut pos) = (w(v.env_base), w(v.env_slope), w(v.env_pos));
    let (mut b0, mut b1, mut b2) = (w(v.b0), w(v.b1), w(v.b2));
    let (mut a1, mut a2) = (w(v.a1), w(v.a2));
    let (db0, db1, db2, da1, da2) = (w(v.db0), w(v.db1), w(v.db2), w(v.da1), w(v.da2));
    let (mut z1, mut z2) = (w(v.z1), w(v.z2));
    let (mut gl, mut gr, dgl, dgr) = (w(v.gl), w(v.gr), w(v.dgl), w(v.dgr));
    let (mut ic1, mut ic2) = (w(c.ic1), w(c.ic2));
    let (sa1, sa2, sa3, svf) = (w(c.sa1), w(c.sa2), w(c.sa3), w(c.svf));
    let amp_mod = w(c.amp_mod);
    let (mix2, noise_level) = (f32x8::splat(p.osc_mix), f32x8::splat(p.noise));
    let mix1 = f32x8::splat(1.0) - mix2;
    let one = f32x8::splat(1.0);
    let two = f32x8::splat(2.0);
    let use2 = p.osc_mix > 0.0;
    let use_noise = p.noise > 0.0;
    let (t1, t2) = (tables(t, p.wave, &c.inc1), tables(t, p.wave2, &c.inc2));
    let (mut ph1, mut ph2) = (u32x8::new(v.phase), u32x8::new(c.phase2));
    let (inc1, inc2, pw) = (u32x8::new(c.inc1), u32x8::new(c.inc2), u32x8::new(c.pw));
    let mut noise = u32x8::new(c.noise);
    for (al, ar) in acc_l.iter_mut().zip(acc_r.iter_mut()) {
        ph1 += inc1;
        let mut x = wave_x8(p.wave, &t1, ph1, pw, &mut noise) * mix1;
        if use2 {
            ph2 += inc2;
            x += wave_x8(p.wave2, &t2, ph2, pw, &mut noise) * mix2;
        }
        if use_noise {
            x += noise_x8(&mut noise) * noise_level;
        }
        pos += one;
        let level = base + slope * pos;
        let input = x * level * amp_mod;
        // The biquad (unless every lane runs the state-variable filter:
        // `FILTERS` is BIQUAD, SVF or BOTH, the chunk's lanes' choice).
        let y = if FILTERS == SVF_ONLY {
            input
        } else {
            let y = b0 * input + z1;
            z1 = b1 * input - a1 * y + z2;
            z2 = b2 * input - a2 * y;
            y
        };
        // The state-variable low-pass (a lane not using it passes `y`).
        let out = if FILTERS == BIQUAD_ONLY {
            y
        } else {
            let v3 = y - ic2;
            let v1 = sa1 * ic1 + sa2 * v3;
            let v2 = ic2 + sa2 * ic1 + sa3 * v3;
            ic1 = two * v1 - ic1;
            ic2 = two * v2 - ic2;
            if FILTERS == SVF_ONLY { v2 } else { svf * v2 + (one - svf) * y }
        };
        *al += out * gl;
        *ar += out * gr;
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
    v.phase = ph1.to_array();
    c.phase2 = ph2.to_array();
    c.noise = noise.to_array();
    v.env_pos = pos.to_array();
    (v.b0, v.b1, v.b2) = (b0.to_array(), b1.to_array(), b2.to_array());
    (v.a1, v.a2) = (a1.to_array(), a2.to_array());
    (v.z1, v.z2) = (z1.to_array(), z2.to_array());
    (v.gl, v.gr) = (gl.to_array(), gr.to_array());
    (c.ic1, c.ic2) = (ic1.to_array(), ic2.to_array());
}

/// Flushes tiny filter memories of every lane to 0.
pub(crate) fn flush(c: &mut RichChunk) {
    for l in 0..LANES {
        c.ic1[l] = crate::biquad::flush_tiny(c.ic1[l]);
        c.ic2[l] = crate::biquad::flush_tiny(c.ic2[l]);
    }
}
