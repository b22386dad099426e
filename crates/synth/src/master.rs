//! The master bus: a stereo delay, a reverb, and a limiter that keeps the
//! output under full scale.
//!
//! Everything is allocated in [`MasterBus::new`] and is plain state that the
//! snapshot carries (a reverb tail is state: after a failover it continues
//! bit for bit). Each effect runs only while its wet level is above zero;
//! parameters glide (one-pole, 10 ms) so changing them never clicks. The
//! limiter lets a signal under its ceiling through untouched (bit for bit),
//! so a quiet patch with no effects sounds exactly as without the bus.
//!
//! The reverb is the Freeverb design (Jezar's public-domain algorithm: 8
//! damped comb filters and 4 all-passes per channel, the right channel's
//! delays 23 samples longer), its delay lengths scaled to the sample rate.

use bytemuck::{Pod, Zeroable};

/// Longest delay time, seconds.
pub const MAX_DELAY_SECONDS: f32 = 1.0;
/// The limiter's ceiling: no output sample exceeds it.
pub const CEILING: f32 = 0.98;
/// The limiter's release time, seconds.
const LIMITER_RELEASE: f32 = 0.08;
/// Parameter glide time constant, seconds.
const GLIDE: f32 = 0.01;

/// Freeverb's comb and all-pass lengths at 44.1 kHz.
const COMBS: [usize; 8] = [1_116, 1_188, 1_277, 1_356, 1_422, 1_491, 1_557, 1_617];
const ALLPASSES: [usize; 4] = [556, 441, 341, 225];
const SPREAD: usize = 23;

/// The bus's settings and gliding state, plain data (in the snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct BusState {
    /// Target delay time, seconds.
    pub delay_time: f32,
    /// Target delay feedback.
    pub delay_feedback: f32,
    /// Target delay wet level.
    pub delay_mix: f32,
    /// Target reverb size.
    pub reverb_size: f32,
    /// Target reverb damping.
    pub reverb_damping: f32,
    /// Target reverb wet level.
    pub reverb_mix: f32,
    /// Gliding values of the six above, in that order.
    pub glide: [f32; 6],
    /// Limiter envelope (peak follower).
    pub limiter_env: f32,
    /// Next write position in the delay lines.
    pub delay_pos: u32,
    /// Next positions in the reverb's combs (8 per channel).
    pub comb_pos: [u32; 16],
    /// The combs' damping filter memories.
    pub comb_store: [f32; 16],
    /// Next positions in the reverb's all-passes (4 per channel).
    pub allpass_pos: [u32; 8],
}

impl BusState {
    fn new() -> Self {
        let mut s = Self::zeroed();
        s.delay_time = 0.25;
        s.delay_feedback = 0.35;
        s.reverb_size = 0.6;
        s.reverb_damping = 0.5;
        s.glide = [s.delay_time, s.delay_feedback, 0.0, s.reverb_size, s.reverb_damping, 0.0];
        s
    }

    fn targets(&self) -> [f32; 6] {
        [
            self.delay_time,
            self.delay_feedback,
            self.delay_mix,
            self.reverb_size,
            self.reverb_damping,
            self.reverb_mix,
        ]
    }
}

/// The effects' settings when nothing set them, numbered as
/// [`MasterBus::set`] numbers them.
pub(crate) fn default_targets() -> [f32; 6] {
    BusState::new().targets()
}

/// The master bus.
#[derive(Clone, Debug, PartialEq)]
pub struct MasterBus {
    pub(crate) state: BusState,
    /// Delay lines, left then right, `delay_len` each.
    pub(crate) delay: Vec<f32>,
    /// Reverb combs, then all-passes, left then right, back to back.
    pub(crate) reverb: Vec<f32>,
    sample_rate: f32,
    delay_len: usize,
    comb_len: [usize; 16],
    allpass_len: [usize; 8],
    glide_coef: f32,
    release_coef: f32,
}

fn scaled(len: usize, sample_rate: u32) -> usize {
    (len as u64 * u64::from(sample_rate) / 44_100).max(1) as usize
}

impl MasterBus {
    /// A bus for `sample_rate`, every effect off (allocates here only).
    pub fn new(sample_rate: u32) -> Self {
        let mut comb_len = [0; 16];
        let mut allpass_len = [0; 8];
        for ch in 0..2 {
            for (k, &c) in COMBS.iter().enumerate() {
                comb_len[ch * 8 + k] = scaled(c + ch * SPREAD, sample_rate);
            }
            for (k, &a) in ALLPASSES.iter().enumerate() {
                allpass_len[ch * 4 + k] = scaled(a + ch * SPREAD, sample_rate);
            }
        }
        let reverb_len = comb_len.iter().sum::<usize>() + allpass_len.iter().sum::<usize>();
        let delay_len = (MAX_DELAY_SECONDS * sample_rate as f32) as usize + 2;
        let sr = sample_rate as f32;
        Self {
            state: BusState::new(),
            delay: vec![0.0; 2 * delay_len],
            reverb: vec![0.0; reverb_len],
            sample_rate: sr,
            delay_len,
            comb_len,
            allpass_len,
            glide_coef: (-1.0 / (GLIDE * sr)).exp(),
            release_coef: (-1.0 / (LIMITER_RELEASE * sr)).exp(),
        }
    }

    /// Back to every effect off, silent. Never allocates.
    pub fn reset(&mut self) {
        self.state = BusState::new();
        self.delay.fill(0.0);
        self.reverb.fill(0.0);
    }

    /// Sets a target (already sanitised): 0 delay time, 1 feedback, 2 delay
    /// mix, 3 reverb size, 4 damping, 5 reverb mix.
    pub(crate) fn set(&mut self, which: usize, value: f32) {
        let s = &mut self.state;
        match which {
            0 => s.delay_time = value,
            1 => s.delay_feedback = value,
            2 => s.delay_mix = value,
            3 => s.reverb_size = value,
            4 => s.reverb_damping = value,
            _ => s.reverb_mix = value,
        }
    }

    /// Bytes of its state in a snapshot.
    pub fn snapshot_len(&self) -> usize {
        size_of::<BusState>() + 4 * (self.delay.len() + self.reverb.len())
    }

    /// Processes `left`/`right` in place. Never allocates.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        let targets = self.state.targets();
        let settled = self.state.glide == targets;
        let delay_on = self.state.delay_mix > 0.0 || self.state.glide[2] > 0.0;
        let reverb_on = self.state.reverb_mix > 0.0 || self.state.glide[5] > 0.0;
        if settled && !delay_on && !reverb_on && self.quiet(left, right) {
            return;
        }
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            if !settled {
                self.glide(&targets);
            }
            let (dry_l, dry_r) = (*l, *r);
            if delay_on {
                let (wl, wr) = self.delay_tick(dry_l, dry_r);
                let mix = self.state.glide[2];
                *l += wl * mix;
                *r += wr * mix;
            }
            if reverb_on {
                let (wl, wr) = self.reverb_tick(dry_l, dry_r);
                let mix = self.state.glide[5];
                *l += wl * mix;
                *r += wr * mix;
            }
            self.limit(l, r);
        }
        if settled {
            return;
        }
        // A glide that has come within float resolution of its target lands.
        let g = &mut self.state.glide;
        for (v, t) in g.iter_mut().zip(targets) {
            if (*v - t).abs() <= 1.0e-6 * t.abs().max(1.0) {
                *v = t;
            }
        }
    }

    fn glide(&mut self, targets: &[f32; 6]) {
        let c = self.glide_coef;
        for (v, &t) in self.state.glide.iter_mut().zip(targets) {
            *v = t + (*v - t) * c;
        }
    }

    /// One stereo sample of the delay (ping-pong free, fed back per channel),
    /// read with linear interpolation at the gliding time.
    fn delay_tick(&mut self, in_l: f32, in_r: f32) -> (f32, f32) {
        let n = self.delay_len;
        let pos = self.state.delay_pos as usize;
        let d = (self.state.glide[0] * self.sample_rate).clamp(1.0, (n - 2) as f32);
        let whole = d as usize;
        let frac = d - whole as f32;
        let at = |k: usize| (pos + n - k) % n;
        let read = |buf: &[f32]| {
            let a = buf[at(whole)];
            let b = buf[at(whole + 1)];
            a + (b - a) * frac
        };
        let (dl, dr) = self.delay.split_at_mut(n);
        let (out_l, out_r) = (read(dl), read(dr));
        let fb = self.state.glide[1];
        dl[pos] = flush(in_l + out_l * fb);
        dr[pos] = flush(in_r + out_r * fb);
        self.state.delay_pos = ((pos + 1) % n) as u32;
        (out_l, out_r)
    }

    /// One stereo sample of the reverb.
    fn reverb_tick(&mut self, in_l: f32, in_r: f32) -> (f32, f32) {
        let input = (in_l + in_r) * 0.015;
        let feedback = self.state.glide[3] * 0.28 + 0.7;
        let damp = self.state.glide[4] * 0.4;
        let mut out = [0.0f32; 2];
        let mut base = 0usize;
        for (ch, o) in out.iter_mut().enumerate() {
            for k in 0..8 {
                let i = ch * 8 + k;
                let len = self.comb_len[i];
                let pos = self.state.comb_pos[i] as usize;
                let y = self.reverb[base + pos];
                let store = flush(y * (1.0 - damp) + self.state.comb_store[i] * damp);
                self.state.comb_store[i] = store;
                self.reverb[base + pos] = flush(input + store * feedback);
                self.state.comb_pos[i] = ((pos + 1) % len) as u32;
                *o += y;
                base += len;
            }
        }
        for (ch, o) in out.iter_mut().enumerate() {
            for k in 0..4 {
                let i = ch * 4 + k;
                let len = self.allpass_len[i];
                let pos = self.state.allpass_pos[i] as usize;
                let b = self.reverb[base + pos];
                let y = b - *o;
                self.reverb[base + pos] = flush(*o + b * 0.5);
                self.state.allpass_pos[i] = ((pos + 1) % len) as u32;
                *o = y;
                base += len;
            }
        }
        (out[0] * 3.0, out[1] * 3.0)
    }

    /// With no effect on: when the block and the limiter's envelope are
    /// under the ceiling, nothing is to be done but to carry the envelope
    /// (kept as its bound: the block's peak or its decayed self, whichever
    /// is higher). Returns false when the block needs the limiter.
    fn quiet(&mut self, left: &[f32], right: &[f32]) -> bool {
        let peak = left.iter().chain(right).fold(0.0f32, |m, x| m.max(x.abs()));
        let env = self.state.limiter_env;
        if peak > CEILING || env > CEILING {
            return false;
        }
        let decayed = env * self.release_coef.powi(left.len() as i32);
        self.state.limiter_env = flush(peak.max(decayed));
        true
    }

    /// The limiter: a peak follower with instant attack, so the sample it
    /// follows is never over the ceiling; under the ceiling, untouched.
    fn limit(&mut self, l: &mut f32, r: &mut f32) {
        let peak = l.abs().max(r.abs());
        let env = peak.max(self.state.limiter_env * self.release_coef);
        self.state.limiter_env = flush(env);
        if env > CEILING {
            // (The clamp only catches the last rounding: |x| ≤ env.)
            let g = CEILING / env;
            *l = (*l * g).clamp(-CEILING, CEILING);
            *r = (*r * g).clamp(-CEILING, CEILING);
        }
    }

    /// Checks state read from a snapshot.
    pub(crate) fn valid(&self, s: &BusState, delay: &[f32], reverb: &[f32]) -> bool {
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        finite(delay) && finite(reverb) && self.valid_state(s)
    }

    /// Checks the lines' lengths and values as the bytes of a snapshot
    /// hold them (little-endian f32, back to back).
    pub(crate) fn valid_line_bytes(&self, delay: &[u8], reverb: &[u8]) -> bool {
        let finite =
            |b: &[u8]| b.chunks_exact(4).all(|w| f32::from_le_bytes([w[0], w[1], w[2], w[3]]).is_finite());
        delay.len() == 4 * self.delay.len()
            && reverb.len() == 4 * self.reverb.len()
            && finite(delay)
            && finite(reverb)
    }

    /// Checks the bus's settings and positions read from a snapshot.
    pub(crate) fn valid_state(&self, s: &BusState) -> bool {
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        let in_range = |v: f32, hi: f32| (0.0..=hi).contains(&v);
        finite(&s.glide)
            && finite(&s.comb_store)
            && s.limiter_env.is_finite()
            && in_range(s.delay_time, MAX_DELAY_SECONDS)
            && in_range(s.delay_feedback, 0.95)
            && [s.delay_mix, s.reverb_size, s.reverb_damping, s.reverb_mix].iter().all(|&v| in_range(v, 1.0))
            && (s.delay_pos as usize) < self.delay_len
            && s.comb_pos.iter().zip(&self.comb_len).all(|(&p, &n)| (p as usize) < n)
            && s.allpass_pos.iter().zip(&self.allpass_len).all(|(&p, &n)| (p as usize) < n)
    }
}

/// Tiny values to zero, so a decaying tail never turns denormal.
#[inline(always)]
fn flush(x: f32) -> f32 {
    if x.abs() < 1.0e-20 { 0.0 } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_and_quiet_it_changes_nothing() {
        let mut bus = MasterBus::new(48_000);
        let mut l: Vec<f32> = (0..1_000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let mut r = l.clone();
        let want = l.clone();
        bus.process(&mut l, &mut r);
        assert_eq!(l, want);
    }

    #[test]
    fn the_limiter_never_lets_a_sample_over_the_ceiling() {
        let mut bus = MasterBus::new(48_000);
        let mut l: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.01).sin() * 8.0).collect();
        let mut r: Vec<f32> = l.iter().map(|x| -x).collect();
        bus.process(&mut l, &mut r);
        assert!(l.iter().chain(&r).all(|x| x.abs() <= CEILING), "over the ceiling");
    }

    #[test]
    fn the_delay_repeats_and_the_reverb_rings_on() {
        let mut bus = MasterBus::new(48_000);
        bus.set(0, 0.1);
        bus.set(1, 0.5);
        bus.set(2, 1.0);
        bus.set(5, 0.5);
        let mut l = vec![0.0f32; 48_000];
        let mut r = vec![0.0f32; 48_000];
        l[0] = 0.5;
        r[0] = 0.5;
        bus.process(&mut l, &mut r);
        // The echo, 100 ms later (mix still gliding up at first: present).
        assert!(l[4_800].abs() > 0.05, "no echo: {}", l[4_800]);
        // The reverb tail is still there half a second on.
        assert!(l[24_000..].iter().any(|x| x.abs() > 1.0e-4));
    }
}
