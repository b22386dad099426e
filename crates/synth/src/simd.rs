//! Which vector instructions render the voices: the baseline
//! (`wide::f32x8`, two SSE registers on x86-64) or, where the CPU has it,
//! AVX2 (one 256-bit register), chosen at run time.
//!
//! `wide` selects its implementation when the crate is compiled, so the AVX2
//! path is each kernel (the plain voice's and the instrument's) written
//! again on `std::arch` intrinsics: the same IEEE operations in the same
//! order, lane
//! by lane, and no fused multiply-add (FMA is not enabled, and Rust never
//! contracts), so both give the same bits (`tests/simd.rs` compares them on
//! every kind of segment). Every replica agrees whichever path its CPU
//! takes, and a journal renders alike on any machine.
//!
//! The crate's only `unsafe` is here: running AVX2 code is sound only on a
//! CPU that has AVX2, which [`Simd::best`] checks.
#![allow(unsafe_code)]

use wide::f32x8;

use crate::bank::VoiceChunk;

/// The instructions the voices render with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// `wide::f32x8` as compiled: SSE2 on x86-64 (every CPU).
    Baseline,
    /// 256-bit AVX2, on x86-64 CPUs that have it.
    Avx2,
}

impl Simd {
    /// The best this CPU offers, unless the environment says
    /// `CHRONUS_SIMD=baseline` (to compare the two side by side).
    pub fn detect() -> Self {
        if std::env::var_os("CHRONUS_SIMD").is_some_and(|v| v == "baseline") {
            return Simd::Baseline;
        }
        Self::best()
    }

    /// The best this CPU offers.
    pub fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Simd::Avx2;
        }
        Simd::Baseline
    }

    /// `self` if this CPU can run it, else the baseline.
    pub fn or_baseline(self) -> Self {
        if self == Simd::Avx2 && Self::best() != Simd::Avx2 { Simd::Baseline } else { self }
    }
}

/// Renders a plain chunk's segment with `simd` (see [`VoiceChunk::run`]).
/// `simd` must have come through [`Simd::best`] or [`Simd::or_baseline`].
#[inline(always)]
pub(crate) fn run_plain<const RAMP: bool>(
    simd: Simd,
    chunk: &mut VoiceChunk,
    acc_l: &mut [f32x8],
    acc_r: &mut [f32x8],
) {
    #[cfg(target_arch = "x86_64")]
    if simd == Simd::Avx2 {
        // SAFETY: a `Simd::Avx2` is only held after `Simd::best` found AVX2
        // on this CPU (`Synth` keeps its choice through `or_baseline`).
        unsafe { avx2::run::<RAMP>(chunk, acc_l, acc_r) };
        return;
    }
    let _ = simd;
    chunk.run::<RAMP>(acc_l, acc_r);
}

/// Renders an instrument chunk's segment with `simd` (see
/// `rich::run_rich`): `RAMP` steps the biquad and gains, `FILTERS` is the
/// chunk's filter mix. `simd` as for [`run_plain`].
#[inline(always)]
pub(crate) fn run_instrument<const RAMP: bool, const FILTERS: u8>(
    simd: Simd,
    v: &mut VoiceChunk,
    c: &mut crate::rich::RichChunk,
    p: &crate::rich::Patch,
    t: &crate::wavetable::WaveTables,
    acc_l: &mut [f32x8],
    acc_r: &mut [f32x8],
) {
    #[cfg(target_arch = "x86_64")]
    if simd == Simd::Avx2 {
        // SAFETY: as in `run_plain`.
        unsafe { avx2::run_rich::<RAMP, FILTERS>(v, c, p, t, acc_l, acc_r) };
        return;
    }
    let _ = simd;
    crate::rich::run_rich::<RAMP, FILTERS>(v, c, p, t, acc_l, acc_r);
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use wide::f32x8;

    use crate::bank::VoiceChunk;
    use crate::rich::{BIQUAD_ONLY, Patch, RichChunk, SVF_ONLY, Table, tables};
    use crate::sine::{PHASE_TO_TURNS, SINE_POLY};
    use crate::wavetable::{NOISE, SAW, SQUARE, TABLE_LEN, TRIANGLE, WaveTables};

    /// Bits of phase above a table index (`rich::read_x8`'s `SHIFT`).
    const SHIFT: i32 = 32 - TABLE_LEN.trailing_zeros() as i32;
    /// The shift that leaves the phase's fraction between two points.
    const FRAC_SHIFT: i32 = 32 - SHIFT;

    /// `crate::bank::sine_x8`: a signed fraction of a turn, folded into
    /// [-1/4, 1/4], an odd polynomial — the same operations.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn sine(phase: __m256i) -> __m256 {
        let sign = _mm256_set1_ps(-0.0);
        let x = _mm256_mul_ps(_mm256_cvtepi32_ps(phase), _mm256_set1_ps(PHASE_TO_TURNS));
        let h = _mm256_or_ps(_mm256_and_ps(x, sign), _mm256_set1_ps(0.5));
        let far = _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_andnot_ps(sign, x), _mm256_set1_ps(0.25));
        let x = _mm256_blendv_ps(x, _mm256_sub_ps(h, x), far);
        let x2 = _mm256_mul_ps(x, x);
        let [c9, c7, c5, c3, c1] = SINE_POLY;
        let p = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(c9), x2), _mm256_set1_ps(c7));
        let p = _mm256_add_ps(_mm256_mul_ps(p, x2), _mm256_set1_ps(c5));
        let p = _mm256_add_ps(_mm256_mul_ps(p, x2), _mm256_set1_ps(c3));
        let p = _mm256_add_ps(_mm256_mul_ps(p, x2), _mm256_set1_ps(c1));
        _mm256_mul_ps(p, x)
    }

    /// `crate::rich::read_x8`: each lane's table at its phase, the look-ups
    /// per lane, the interpolation on 8 lanes.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn read(t: &[&Table; 8], phase: __m256i) -> __m256 {
        let mut idx = [0u32; 8];
        // SAFETY: eight u32 written into an array of eight.
        unsafe { _mm256_storeu_si256(idx.as_mut_ptr().cast(), _mm256_srli_epi32::<SHIFT>(phase)) };
        let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
        for l in 0..8 {
            let i = idx[l] as usize & (TABLE_LEN - 1);
            a[l] = t[l][i];
            b[l] = t[l][i + 1];
        }
        let frac = _mm256_srli_epi32::<1>(_mm256_slli_epi32::<FRAC_SHIFT>(phase));
        let frac = _mm256_mul_ps(_mm256_cvtepi32_ps(frac), _mm256_set1_ps(1.0 / 2_147_483_648.0));
        // SAFETY: arrays of eight f32.
        let (a, b) = unsafe { (_mm256_loadu_ps(a.as_ptr()), _mm256_loadu_ps(b.as_ptr())) };
        _mm256_add_ps(a, _mm256_mul_ps(_mm256_sub_ps(b, a), frac))
    }

    /// `crate::rich::noise_x8`: xorshift32 per lane, as samples in [-1, 1).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn noise(state: &mut __m256i) -> __m256 {
        let mut x = *state;
        x = _mm256_xor_si256(x, _mm256_slli_epi32::<13>(x));
        x = _mm256_xor_si256(x, _mm256_srli_epi32::<17>(x));
        x = _mm256_xor_si256(x, _mm256_slli_epi32::<5>(x));
        *state = x;
        _mm256_mul_ps(_mm256_cvtepi32_ps(x), _mm256_set1_ps(1.0 / 2_147_483_648.0))
    }

    /// `crate::rich::wave_x8`: one sample of 8 lanes of waveform `wave`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn wave(wave: u32, t: &[&Table; 8], phase: __m256i, pw: __m256i, state: &mut __m256i) -> __m256 {
        match wave {
            SAW | TRIANGLE => read(t, phase),
            SQUARE => _mm256_sub_ps(read(t, phase), read(t, _mm256_sub_epi32(phase, pw))),
            NOISE => noise(state),
            _ => sine(phase),
        }
    }

    /// `crate::rich::run_rich` on AVX2: the same operations in the same
    /// order.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn run_rich<const RAMP: bool, const FILTERS: u8>(
        v: &mut VoiceChunk,
        c: &mut RichChunk,
        p: &Patch,
        t: &WaveTables,
        acc_l: &mut [f32x8],
        acc_r: &mut [f32x8],
    ) {
        macro_rules! ld {
            ($a:expr) => {
                // SAFETY: a reference to eight 32-bit values is what this reads.
                unsafe { _mm256_loadu_ps($a.as_ptr()) }
            };
        }
        macro_rules! ldi {
            ($a:expr) => {
                // SAFETY: a reference to eight 32-bit values is what this reads.
                unsafe { _mm256_loadu_si256($a.as_ptr().cast()) }
            };
        }
        let (base, slope, mut pos) = (ld!(v.env_base), ld!(v.env_slope), ld!(v.env_pos));
        let (mut b0, mut b1, mut b2) = (ld!(v.b0), ld!(v.b1), ld!(v.b2));
        let (mut a1, mut a2) = (ld!(v.a1), ld!(v.a2));
        let (db0, db1, db2, da1, da2) = (ld!(v.db0), ld!(v.db1), ld!(v.db2), ld!(v.da1), ld!(v.da2));
        let (mut z1, mut z2) = (ld!(v.z1), ld!(v.z2));
        let (mut gl, mut gr, dgl, dgr) = (ld!(v.gl), ld!(v.gr), ld!(v.dgl), ld!(v.dgr));
        let (mut ic1, mut ic2) = (ld!(c.ic1), ld!(c.ic2));
        let (sa1, sa2, sa3, svf) = (ld!(c.sa1), ld!(c.sa2), ld!(c.sa3), ld!(c.svf));
        let amp_mod = ld!(c.amp_mod);
        let (mix2, noise_level) = (_mm256_set1_ps(p.osc_mix), _mm256_set1_ps(p.noise));
        let one = _mm256_set1_ps(1.0);
        let two = _mm256_set1_ps(2.0);
        let mix1 = _mm256_sub_ps(one, mix2);
        let use2 = p.osc_mix > 0.0;
        let use_noise = p.noise > 0.0;
        let (t1, t2) = (tables(t, p.wave, &c.inc1), tables(t, p.wave2, &c.inc2));
        let (mut ph1, mut ph2) = (ldi!(v.phase), ldi!(c.phase2));
        let (inc1, inc2, pw) = (ldi!(c.inc1), ldi!(c.inc2), ldi!(c.pw));
        let mut state = ldi!(c.noise);
        for (al, ar) in acc_l.iter_mut().zip(acc_r.iter_mut()) {
            ph1 = _mm256_add_epi32(ph1, inc1);
            let mut x = _mm256_mul_ps(wave(p.wave, &t1, ph1, pw, &mut state), mix1);
            if use2 {
                ph2 = _mm256_add_epi32(ph2, inc2);
                x = _mm256_add_ps(x, _mm256_mul_ps(wave(p.wave2, &t2, ph2, pw, &mut state), mix2));
            }
            if use_noise {
                x = _mm256_add_ps(x, _mm256_mul_ps(noise(&mut state), noise_level));
            }
            pos = _mm256_add_ps(pos, one);
            let level = _mm256_add_ps(base, _mm256_mul_ps(slope, pos));
            let input = _mm256_mul_ps(_mm256_mul_ps(x, level), amp_mod);
            let y = if FILTERS == SVF_ONLY {
                input
            } else {
                let y = _mm256_add_ps(_mm256_mul_ps(b0, input), z1);
                z1 = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(b1, input), _mm256_mul_ps(a1, y)), z2);
                z2 = _mm256_sub_ps(_mm256_mul_ps(b2, input), _mm256_mul_ps(a2, y));
                y
            };
            let out = if FILTERS == BIQUAD_ONLY {
                y
            } else {
                let v3 = _mm256_sub_ps(y, ic2);
                let v1 = _mm256_add_ps(_mm256_mul_ps(sa1, ic1), _mm256_mul_ps(sa2, v3));
                let v2 = _mm256_add_ps(_mm256_add_ps(ic2, _mm256_mul_ps(sa2, ic1)), _mm256_mul_ps(sa3, v3));
                ic1 = _mm256_sub_ps(_mm256_mul_ps(two, v1), ic1);
                ic2 = _mm256_sub_ps(_mm256_mul_ps(two, v2), ic2);
                if FILTERS == SVF_ONLY {
                    v2
                } else {
                    _mm256_add_ps(_mm256_mul_ps(svf, v2), _mm256_mul_ps(_mm256_sub_ps(one, svf), y))
                }
            };
            let (pl, pr): (*mut f32, *mut f32) = ((al as *mut f32x8).cast(), (ar as *mut f32x8).cast());
            // SAFETY: an `f32x8` is eight f32 (`Pod`, no padding).
            unsafe {
                _mm256_storeu_ps(pl, _mm256_add_ps(_mm256_loadu_ps(pl), _mm256_mul_ps(out, gl)));
                _mm256_storeu_ps(pr, _mm256_add_ps(_mm256_loadu_ps(pr), _mm256_mul_ps(out, gr)));
            }
            if RAMP {
                b0 = _mm256_add_ps(b0, db0);
                b1 = _mm256_add_ps(b1, db1);
                b2 = _mm256_add_ps(b2, db2);
                a1 = _mm256_add_ps(a1, da1);
                a2 = _mm256_add_ps(a2, da2);
                gl = _mm256_add_ps(gl, dgl);
                gr = _mm256_add_ps(gr, dgr);
            }
        }
        macro_rules! st {
            ($a:expr, $v:expr) => {
                // SAFETY: a reference to eight f32 is what this writes.
                unsafe { _mm256_storeu_ps($a.as_mut_ptr(), $v) }
            };
        }
        macro_rules! sti {
            ($a:expr, $v:expr) => {
                // SAFETY: a reference to eight u32 is what this writes.
                unsafe { _mm256_storeu_si256($a.as_mut_ptr().cast(), $v) }
            };
        }
        sti!(v.phase, ph1);
        sti!(c.phase2, ph2);
        sti!(c.noise, state);
        st!(v.env_pos, pos);
        st!(v.b0, b0);
        st!(v.b1, b1);
        st!(v.b2, b2);
        st!(v.a1, a1);
        st!(v.a2, a2);
        st!(v.z1, z1);
        st!(v.z2, z2);
        st!(v.gl, gl);
        st!(v.gr, gr);
        st!(c.ic1, ic1);
        st!(c.ic2, ic2);
    }

    /// [`VoiceChunk::run`] on AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn run<const RAMP: bool>(c: &mut VoiceChunk, acc_l: &mut [f32x8], acc_r: &mut [f32x8]) {
        // Loads and stores are of `[f32; 8]` / `[u32; 8]` fields and of
        // `f32x8`s (eight f32, `Pod`), unaligned: no alignment is assumed.
        macro_rules! ld {
            ($a:expr) => {
                // SAFETY: a reference to eight f32 is what this reads.
                unsafe { _mm256_loadu_ps($a.as_ptr()) }
            };
        }
        // SAFETY: references to eight u32, what these read.
        let mut phase = unsafe { _mm256_loadu_si256(c.phase.as_ptr().cast()) };
        // SAFETY: as above.
        let inc = unsafe { _mm256_loadu_si256(c.inc.as_ptr().cast()) };
        let (base, slope, mut pos) = (ld!(c.env_base), ld!(c.env_slope), ld!(c.env_pos));
        let (mut b0, mut b1, mut b2) = (ld!(c.b0), ld!(c.b1), ld!(c.b2));
        let (mut a1, mut a2) = (ld!(c.a1), ld!(c.a2));
        let (db0, db1, db2, da1, da2) = (ld!(c.db0), ld!(c.db1), ld!(c.db2), ld!(c.da1), ld!(c.da2));
        let (mut z1, mut z2) = (ld!(c.z1), ld!(c.z2));
        let (mut gl, mut gr, dgl, dgr) = (ld!(c.gl), ld!(c.gr), ld!(c.dgl), ld!(c.dgr));
        let one = _mm256_set1_ps(1.0);
        for (al, ar) in acc_l.iter_mut().zip(acc_r.iter_mut()) {
            phase = _mm256_add_epi32(phase, inc);
            let s = sine(phase);
            pos = _mm256_add_ps(pos, one);
            let level = _mm256_add_ps(base, _mm256_mul_ps(slope, pos));
            let input = _mm256_mul_ps(s, level);
            let y = _mm256_add_ps(_mm256_mul_ps(b0, input), z1);
            z1 = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(b1, input), _mm256_mul_ps(a1, y)), z2);
            z2 = _mm256_sub_ps(_mm256_mul_ps(b2, input), _mm256_mul_ps(a2, y));
            let (pl, pr): (*mut f32, *mut f32) = ((al as *mut f32x8).cast(), (ar as *mut f32x8).cast());
            // SAFETY: an `f32x8` is eight f32 (`Pod`, no padding).
            unsafe {
                _mm256_storeu_ps(pl, _mm256_add_ps(_mm256_loadu_ps(pl), _mm256_mul_ps(y, gl)));
                _mm256_storeu_ps(pr, _mm256_add_ps(_mm256_loadu_ps(pr), _mm256_mul_ps(y, gr)));
            }
            if RAMP {
                b0 = _mm256_add_ps(b0, db0);
                b1 = _mm256_add_ps(b1, db1);
                b2 = _mm256_add_ps(b2, db2);
                a1 = _mm256_add_ps(a1, da1);
                a2 = _mm256_add_ps(a2, da2);
                gl = _mm256_add_ps(gl, dgl);
                gr = _mm256_add_ps(gr, dgr);
            }
        }
        macro_rules! st {
            ($a:expr, $v:expr) => {
                // SAFETY: a reference to eight f32 is what this writes.
                unsafe { _mm256_storeu_ps($a.as_mut_ptr(), $v) }
            };
        }
        // SAFETY: a reference to eight u32 is what this writes.
        unsafe { _mm256_storeu_si256(c.phase.as_mut_ptr().cast(), phase) };
        st!(c.env_pos, pos);
        st!(c.b0, b0);
        st!(c.b1, b1);
        st!(c.b2, b2);
        st!(c.a1, a1);
        st!(c.a2, a2);
        st!(c.z1, z1);
        st!(c.z2, z2);
        st!(c.gl, gl);
        st!(c.gr, gr);
    }
}
