//! `Synth`: the polyphonic voice bank with stereo output and a master gain.

use crate::bank::{LANES, Lane, VoiceChunk, VoiceControl};
use crate::command::{Command, CommandSource, SliceSource, TimedCommand};
use crate::master::MasterBus;
use crate::notes::{ANONYMOUS, NoteTable};
use crate::param::{Param, VoiceParams};
use crate::patch_change::{MAX_FADE_SECONDS, PATCH_VOICE_PARAMS, PatchChange};
use crate::rich::{
    BIQUAD_ONLY, BOTH, CONTROL, ControlRates, LaneControl, Patch, RichChunk, SVF_LOWPASS, SVF_ONLY,
};
use crate::simd::Simd;
use crate::wavetable::WaveTables;
use crate::{FLUSH_PERIOD, RAMP_SECONDS, SynthError};
use wide::f32x8;

/// Most voices a synth may have.
pub const MAX_VOICES: u32 = 4_096;
/// Accepted sample rates, in Hz.
pub const SAMPLE_RATE_RANGE: (u32, u32) = (8_000, 384_000);

/// How to build a [`Synth`] (besides its sample rate): what the engine
/// sends its workers, as JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SynthConfig {
    /// Number of voices, `1..=MAX_VOICES`; fixed for the synth's life.
    pub voices: u32,
}

impl SynthConfig {
    /// A synth with `voices` voices.
    pub fn new(voices: u32) -> Self {
        Self { voices }
    }
}

/// Counters of what happened to commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynthStats {
    /// Commands applied (possibly with clamped values).
    pub applied: u64,
    /// Commands refused (non-finite value, unknown voice, …).
    pub rejected: u64,
    /// Values clamped into range.
    pub clamped: u64,
    /// Commands that arrived for a frame already rendered (applied at once).
    pub late: u64,
}

/// A polyphonic synth: `voices` × (SimpleSine → Adsr → Biquad → gain), summed
/// to stereo, times a master gain.
///
/// Everything is allocated in [`Synth::new`]; [`Synth::apply`] and the render
/// calls never allocate, lock or panic, whatever the parameters. The output is
/// a pure function of the commands and the frames they apply at: how renders
/// are split into blocks does not change a bit.
///
/// ```
/// use chronus_synth::{Command, Synth, SynthConfig};
/// let mut synth = Synth::new(48_000, SynthConfig::new(16)).unwrap();
/// synth.apply(&Command::NoteOn { voice: 0, freq: 440.0, amp: 0.5 }).unwrap();
/// let (mut l, mut r) = (vec![0.0; 256], vec![0.0; 256]);
/// synth.render(&mut l, &mut r);
/// assert!(l.iter().any(|s| *s != 0.0));
/// assert_eq!(synth.frame(), 256);
/// ```
#[derive(Clone, Debug)]
pub struct Synth {
    pub(crate) sample_rate: u32,
    pub(crate) voices: u32,
    pub(crate) ramp: u32,
    pub(crate) chunks: Vec<VoiceChunk>,
    pub(crate) ctls: Vec<VoiceControl>,
    /// Bit `l` of `active[c]`: voice `c·LANES + l` is not idle.
    pub(crate) active: Vec<u8>,
    pub(crate) defaults: VoiceParams,
    pub(crate) master: crate::gain::GainRamp,
    pub(crate) frame: u64,
    acc_l: Box<[f32x8; FLUSH_PERIOD]>,
    acc_r: Box<[f32x8; FLUSH_PERIOD]>,
    stats: SynthStats,
    /// Which note each voice holds (notes by ID).
    pub(crate) notes: NoteTable,
    /// Delay, reverb, limiter.
    pub(crate) bus: MasterBus,
    /// The instrument's per-voice state, one per chunk.
    pub(crate) rich: Vec<RichChunk>,
    /// The instrument's settings.
    pub(crate) patch: Patch,
    /// A patch change under way (or none).
    pub(crate) change: PatchChange,
    rates: ControlRates,
    /// The instructions the plain voices render with.
    simd: Simd,
    tables: std::sync::Arc<WaveTables>,
    /// Where a snapshot in bytes is checked before it replaces the state.
    pub(crate) scratch: crate::snapshot::SynthSnapshot,
}

impl Synth {
    /// Builds a synth; this is where all of its memory is allocated.
    ///
    /// # Errors
    /// [`SynthError::InvalidConfig`] for a voice count or sample rate out of
    /// range.
    pub fn new(sample_rate: u32, config: SynthConfig) -> Result<Self, SynthError> {
        let sr = sample_rate;
        if !(SAMPLE_RATE_RANGE.0..=SAMPLE_RATE_RANGE.1).contains(&sr) {
            return Err(SynthError::InvalidConfig("sample rate must be 8000..=384000 Hz"));
        }
        if config.voices == 0 || config.voices > MAX_VOICES {
            return Err(SynthError::InvalidConfig("voices must be 1..=4096"));
        }
        let defaults = VoiceParams::default();
        let master = 1.0;
        let ramp = crate::adsr::seconds_to_samples(RAMP_SECONDS, sr).max(1);
        let n_chunks = (config.voices as usize).div_ceil(LANES);
        Ok(Self {
            sample_rate: sr,
            voices: config.voices,
            ramp,
            chunks: vec![VoiceChunk::idle(&defaults, sr); n_chunks],
            ctls: vec![VoiceControl::idle(&defaults, sr, ramp); n_chunks * LANES],
            active: vec![0; n_chunks],
            defaults,
            master: crate::gain::GainRamp::steady([master, master]),
            frame: 0,
            acc_l: Box::new([f32x8::ZERO; FLUSH_PERIOD]),
            acc_r: Box::new([f32x8::ZERO; FLUSH_PERIOD]),
            stats: SynthStats::default(),
            notes: NoteTable::new(config.voices),
            bus: MasterBus::new(sr),
            rich: vec![RichChunk::idle(); n_chunks],
            patch: Patch::default(),
            change: PatchChange::idle(),
            rates: ControlRates::new(&Patch::default(), sr),
            simd: Simd::detect(),
            tables: WaveTables::shared(),
            scratch: crate::snapshot::SynthSnapshot {
                header: bytemuck::Zeroable::zeroed(),
                chunks: vec![VoiceChunk::idle(&defaults, sr); n_chunks],
                controls: vec![VoiceControl::idle(&defaults, sr, ramp); n_chunks * LANES],
                notes: NoteTable::new(config.voices).slots,
                bus: MasterBus::new(sr).state,
                // Restoring from bytes reads the lines from the bytes.
                delay: Vec::new(),
                reverb: Vec::new(),
                rich: vec![RichChunk::idle(); n_chunks],
            },
        })
    }

    /// Back to the state right after [`Synth::new`]: every voice idle with
    /// the default settings, master gain 1, frame 0, counters cleared.
    /// Never allocates.
    pub fn reset_state(&mut self) {
        let defaults = VoiceParams::default();
        self.chunks.fill(VoiceChunk::idle(&defaults, self.sample_rate));
        self.ctls.fill(VoiceControl::idle(&defaults, self.sample_rate, self.ramp));
        self.active.fill(0);
        self.defaults = defaults;
        self.master = crate::gain::GainRamp::steady([1.0, 1.0]);
        self.frame = 0;
        self.stats = SynthStats::default();
        self.notes.clear();
        self.bus.reset();
        self.rich.fill(RichChunk::idle());
        self.patch = Patch::default();
        self.change = PatchChange::idle();
        self.rates = ControlRates::new(&self.patch, self.sample_rate);
    }

    /// Counts an event that is not one of the synth's commands.
    pub(crate) fn count_rejected(&mut self) {
        self.stats.rejected += 1;
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Number of voices.
    pub fn voices(&self) -> u32 {
        self.voices
    }

    /// The absolute index of the next frame to render.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// Command counters.
    pub fn stats(&self) -> SynthStats {
        self.stats
    }

    /// Number of voices currently sounding (not idle).
    pub fn voices_in_use(&self) -> u32 {
        self.active.iter().map(|m| m.count_ones()).sum()
    }

    /// The voice note `id` sounds on, while it is addressable.
    pub fn note_voice(&self, id: i32) -> Option<u32> {
        self.notes.voice_of(id)
    }

    /// The settings `/set` last gave every voice.
    pub fn defaults(&self) -> &VoiceParams {
        &self.defaults
    }

    fn lane(&mut self, voice: u32) -> Lane<'_> {
        let v = voice as usize;
        Lane {
            chunk: &mut self.chunks[v / LANES],
            l: v % LANES,
            ctl: &mut self.ctls[v],
            sample_rate: self.sample_rate,
            ramp: self.ramp,
        }
    }

    fn check_voice(&self, voice: u32) -> Result<(), SynthError> {
        if voice < self.voices {
            Ok(())
        } else {
            Err(SynthError::VoiceOutOfRange { voice, voices: self.voices })
        }
    }

    fn mark(&mut self, voice: u32) {
        let v = voice as usize;
        let bit = 1u8 << (v % LANES);
        if self.ctls[v].is_idle() {
            self.active[v / LANES] &= !bit;
        } else {
            self.active[v / LANES] |= bit;
        }
    }

    /// What the control step of voice `v` needs.
    fn lane_control(&self, v: usize) -> LaneControl {
        lane_control(&self.chunks[v / LANES], &self.ctls[v], v % LANES)
    }

    /// Brings voice `v`'s instrument state up to date now, without a step
    /// of time (a note started, a filter changed, between control steps).
    fn refresh(&mut self, v: usize) {
        let lane = self.lane_control(v);
        crate::rich::control_step(
            &mut self.rich[v / LANES],
            v % LANES,
            &self.patch,
            &self.rates,
            &lane,
            false,
        );
    }

    /// Replaces the patch (its values already checked).
    pub(crate) fn set_patch(&mut self, patch: Patch) {
        self.patch = patch;
        self.rates = ControlRates::new(&self.patch, self.sample_rate);
    }

    /// The instrument's settings now.
    pub fn patch(&self) -> &Patch {
        &self.patch
    }

    /// Opens voice `voice`'s gate (sanitised values).
    fn start_note(&mut self, voice: u32, freq: f32, amp: f32) {
        let v = voice as usize;
        let was_idle = self.ctls[v].is_idle();
        self.lane(voice).note_on(freq, amp);
        let rich = &mut self.rich[v / LANES];
        if was_idle {
            rich.start(v % LANES, amp);
        } else {
            rich.retrigger(v % LANES, amp);
        }
        self.refresh(v);
        self.mark(voice);
    }

    /// Closes voice `voice`'s gate.
    fn end_note(&mut self, voice: u32) {
        let v = voice as usize;
        self.lane(voice).note_off();
        self.rich[v / LANES].release(v % LANES);
        if self.ctls[v].is_idle() {
            self.rich[v / LANES].go_idle(v % LANES);
        }
        self.mark(voice);
    }

    /// Sets a voice parameter (sanitised).
    fn set_voice(&mut self, voice: u32, param: Param, value: f32) {
        self.lane(voice).set(param, value);
        if matches!(param, Param::Freq | Param::Cutoff | Param::Q | Param::Filter) {
            self.refresh(voice as usize);
        }
        self.mark(voice);
    }

    /// The staged patch replaces the live one (at the bottom of a patch
    /// change's fade): every setting it holds, on every voice.
    fn swap_patch(&mut self) {
        let c = self.change;
        self.set_patch(c.patch);
        for (k, &v) in c.bus.iter().enumerate() {
            self.bus.set(k, v);
        }
        for p in PATCH_VOICE_PARAMS {
            if let Some(v) = c.defaults.load(p) {
                self.defaults.store(p, v);
            }
        }
        for voice in 0..self.voices {
            let mut lane = self.lane(voice);
            for p in PATCH_VOICE_PARAMS {
                if let Some(v) = c.defaults.load(p) {
                    lane.set(p, v);
                }
            }
            self.refresh(voice as usize);
            self.mark(voice);
        }
        self.change.finish();
    }

    /// Applies a command at the current frame. Non-finite values and unknown
    /// voices are refused (and counted); out-of-range values are clamped.
    ///
    /// # Errors
    /// The [`SynthError`] that explains the refusal; the synth is unchanged.
    pub fn apply(&mut self, command: &Command) -> Result<(), SynthError> {
        let result = self.try_apply(command);
        match result {
            Ok(clamped) => {
                self.stats.applied += 1;
                self.stats.clamped += u64::from(clamped);
            }
            Err(_) => self.stats.rejected += 1,
        }
        result.map(|_| ())
    }

    fn try_apply(&mut self, command: &Command) -> Result<u32, SynthError> {
        let sr = self.sample_rate;
        match *command {
            Command::NoteOn { voice, freq, amp } => {
                self.check_voice(voice)?;
                // Addressed by number: no note ID owns it any more.
                self.notes.forget_voice(voice);
                let (freq, c1) = Param::Freq.sanitize(freq, sr)?;
                let (amp, c2) = Param::Amp.sanitize(amp, sr)?;
                self.start_note(voice, freq, amp);
                Ok(u32::from(c1) + u32::from(c2))
            }
            Command::NoteOff { voice } => {
                self.check_voice(voice)?;
                self.notes.forget_voice(voice);
                self.end_note(voice);
                Ok(0)
            }
            Command::NoteOnId { id, freq, amp } => {
                let (freq, c1) = Param::Freq.sanitize(freq, sr)?;
                let (amp, c2) = Param::Amp.sanitize(amp, sr)?;
                let ctls = &self.ctls;
                let voice = self.notes.allocate(id, |v| ctls[v as usize].is_idle()).voice;
                self.start_note(voice, freq, amp);
                Ok(u32::from(c1) + u32::from(c2))
            }
            Command::NoteOffId { id } if id == ANONYMOUS => {
                for voice in 0..self.voices {
                    let s = self.notes.slots[voice as usize];
                    if s.id == ANONYMOUS && s.held == 1 {
                        self.notes.forget_voice(voice);
                        self.end_note(voice);
                    }
                }
                Ok(0)
            }
            Command::NoteOffId { id } => {
                let voice = self.notes.release(id).ok_or(SynthError::UnknownNote(id))?;
                self.end_note(voice);
                Ok(0)
            }
            Command::NoteSet { id, param, value } => {
                let voice = self.notes.voice_of(id).ok_or(SynthError::UnknownNote(id))?;
                if !param.is_voice_param() {
                    return Err(SynthError::NotAVoiceParam(param));
                }
                let (value, clamped) = param.sanitize(value, sr)?;
                self.set_voice(voice, param, value);
                Ok(u32::from(clamped))
            }
            Command::VoiceSet { voice, param, value } => {
                self.check_voice(voice)?;
                if !param.is_voice_param() {
                    return Err(SynthError::NotAVoiceParam(param));
                }
                let (value, clamped) = param.sanitize(value, sr)?;
                self.set_voice(voice, param, value);
                Ok(u32::from(clamped))
            }
            Command::PatchBegin { fade } => {
                let (fade, clamped) = sanitize_fade(fade)?;
                self.change.begin(self.frame, crate::adsr::seconds_to_samples(fade, sr));
                Ok(u32::from(clamped))
            }
            Command::Set { param, value } => {
                let (value, clamped) = param.sanitize(value, sr)?;
                if self.change.is_staging() && self.change.stage(param, value) {
                    // Part of the patch being built: it sounds from the swap.
                } else if param == Param::Master {
                    self.master.ramp_to([value, value], self.ramp);
                } else if let Some(k) = param.bus_index() {
                    self.bus.set(k, value);
                } else if param.is_patch_param() {
                    self.patch.store(param, value);
                    self.rates = ControlRates::new(&self.patch, sr);
                } else {
                    self.defaults.store(param, value);
                    for voice in 0..self.voices {
                        self.set_voice(voice, param, value);
                    }
                }
                Ok(u32::from(clamped))
            }
        }
    }

    /// Renders `left.len()` frames (`right` must be as long; extra frames of
    /// the longer one are left alone) with no commands.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len().min(right.len());
        let (left, right) = (&mut left[..n], &mut right[..n]);
        let mut done = 0;
        while done < n {
            let into_period = (self.frame % FLUSH_PERIOD as u64) as usize;
            if into_period == 0 {
                self.flush_chunks();
            }
            let mut len = (n - done).min(FLUSH_PERIOD - into_period);
            if self.change.is_staging() {
                if self.frame >= self.change.swap_at {
                    self.swap_patch();
                } else {
                    // Stop at the swap: it happens before that frame.
                    len = len.min((self.change.swap_at - self.frame) as usize);
                }
            }
            self.render_sub(&mut left[done..done + len], &mut right[done..done + len]);
            self.frame += len as u64;
            done += len;
        }
    }

    /// Renders `left.len()` frames, applying each command from `source` at
    /// its frame (the block is split there, so timing is sample-accurate).
    pub fn render_with(&mut self, left: &mut [f32], right: &mut [f32], source: &mut impl CommandSource) {
        let n = left.len().min(right.len());
        let end = self.frame + n as u64;
        let mut done = 0usize;
        while let Some(TimedCommand { frame, command }) = source.next_before(end) {
            if frame > self.frame {
                let k = (frame - self.frame) as usize;
                self.render(&mut left[done..done + k], &mut right[done..done + k]);
                done += k;
            } else if frame < self.frame {
                self.stats.late += 1;
            }
            // Refusals are counted in `stats`; rendering goes on.
            let _ = self.apply(&command);
        }
        self.render(&mut left[done..n], &mut right[done..n]);
    }

    /// Renders `left.len()` frames applying `commands` (sorted by frame);
    /// returns how many of them were used.
    pub fn render_commands(
        &mut self,
        left: &mut [f32],
        right: &mut [f32],
        commands: &[TimedCommand],
    ) -> usize {
        let mut source = SliceSource::new(commands);
        self.render_with(left, right, &mut source);
        source.consumed()
    }

    fn flush_chunks(&mut self) {
        for ((chunk, rich), &mask) in self.chunks.iter_mut().zip(&mut self.rich).zip(&self.active) {
            if mask != 0 {
                chunk.flush();
                crate::rich::flush(rich);
            }
        }
    }

    /// The instructions the plain voices render with ([`Simd::detect`]:
    /// AVX2 where the CPU has it, unless `CHRONUS_SIMD=baseline`).
    pub fn simd(&self) -> Simd {
        self.simd
    }

    /// Renders the plain voices with `simd` from now on (the baseline if
    /// this CPU cannot run it). The output is the same bits either way.
    pub fn set_simd(&mut self, simd: Simd) {
        self.simd = simd.or_baseline();
    }

    /// Renders at most one flush period of frames.
    fn render_sub(&mut self, left: &mut [f32], right: &mut [f32]) {
        let simd = self.simd;
        let n = left.len();
        let acc_l = &mut self.acc_l[..n];
        let acc_r = &mut self.acc_r[..n];
        acc_l.fill(f32x8::ZERO);
        acc_r.fill(f32x8::ZERO);
        let patch_rich = self.patch.is_rich();
        let start = self.frame;
        for c in 0..self.chunks.len() {
            if self.active[c] == 0 {
                continue;
            }
            let ctl_range = c * LANES..(c + 1) * LANES;
            let svf_lanes =
                self.ctls[ctl_range.clone()].iter().filter(|k| k.params.filter == SVF_LOWPASS).count();
            let rich = patch_rich || svf_lanes > 0;
            let filters = match svf_lanes {
                0 => BIQUAD_ONLY,
                LANES => SVF_ONLY,
                _ => BOTH,
            };
            let mut off = 0usize;
            while off < n {
                let ctls = &self.ctls[ctl_range.clone()];
                let mut seg = (n - off) as u32;
                let mut ramping = false;
                for ctl in ctls {
                    seg = seg.min(ctl.next_event());
                    ramping |= ctl.is_ramping();
                }
                if rich {
                    // Control steps at absolute frames, whatever the blocks.
                    let at = (start + off as u64) % CONTROL as u64;
                    if at == 0 {
                        let ctls = &self.ctls[ctl_range.clone()];
                        control_chunk(
                            &mut self.rich[c],
                            &self.chunks[c],
                            ctls,
                            self.active[c],
                            &self.patch,
                            &self.rates,
                        );
                    }
                    seg = seg.min(CONTROL as u32 - at as u32);
                }
                let seg = seg as usize;
                let (al, ar) = (&mut acc_l[off..off + seg], &mut acc_r[off..off + seg]);
                let (chunk, rc) = (&mut self.chunks[c], &mut self.rich[c]);
                let (p, t) = (&self.patch, &*self.tables);
                match (rich, ramping) {
                    (false, true) => crate::simd::run_plain::<true>(simd, chunk, al, ar),
                    (false, false) => crate::simd::run_plain::<false>(simd, chunk, al, ar),
                    (true, _) => run_rich_kernel(simd, ramping, filters, chunk, rc, p, t, al, ar),
                }
                let mut mask = 0u8;
                for l in 0..LANES {
                    let mut lane = Lane {
                        chunk: &mut self.chunks[c],
                        l,
                        ctl: &mut self.ctls[c * LANES + l],
                        sample_rate: self.sample_rate,
                        ramp: self.ramp,
                    };
                    let active = lane.consume(seg as u32);
                    if !active && self.active[c] & (1 << l) != 0 {
                        self.rich[c].go_idle(l);
                    }
                    mask |= u8::from(active) << l;
                }
                self.active[c] = mask;
                off += seg;
            }
        }
        let master = &mut self.master;
        let xfade = &mut self.change.xfade;
        for ((l, r), (al, ar)) in left.iter_mut().zip(right.iter_mut()).zip(acc_l.iter().zip(acc_r.iter())) {
            // 1 × master, exactly, when no patch change is under way.
            let g = master.value[0] * xfade.value[0];
            *l = g * sum_lanes(al);
            *r = g * sum_lanes(ar);
            if master.remaining > 0 {
                master.value[0] += master.step[0];
                master.value[1] = master.value[0];
                master.consume(1);
            }
            if xfade.remaining > 0 {
                xfade.value[0] += xfade.step[0];
                xfade.consume(1);
            }
        }
        self.bus.process(left, right);
    }
}

/// The instrument kernel for a chunk's segment, monomorphised per ramping
/// and filter mix. Kept out of line: inlined, its eight copies made the
/// plain kernel's loop around them measurably slower.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn run_rich_kernel(
    simd: Simd,
    ramping: bool,
    filters: u8,
    chunk: &mut VoiceChunk,
    rc: &mut RichChunk,
    p: &Patch,
    t: &WaveTables,
    al: &mut [f32x8],
    ar: &mut [f32x8],
) {
    use crate::simd::run_instrument as run;
    match (ramping, filters) {
        (true, BIQUAD_ONLY) => run::<true, BIQUAD_ONLY>(simd, chunk, rc, p, t, al, ar),
        (true, SVF_ONLY) => run::<true, SVF_ONLY>(simd, chunk, rc, p, t, al, ar),
        (true, _) => run::<true, BOTH>(simd, chunk, rc, p, t, al, ar),
        (false, BIQUAD_ONLY) => run::<false, BIQUAD_ONLY>(simd, chunk, rc, p, t, al, ar),
        (false, SVF_ONLY) => run::<false, SVF_ONLY>(simd, chunk, rc, p, t, al, ar),
        (false, _) => run::<false, BOTH>(simd, chunk, rc, p, t, al, ar),
    }
}

/// What the control step of lane `l` of `chunk` needs.
fn lane_control(chunk: &VoiceChunk, ctl: &VoiceControl, l: usize) -> LaneControl {
    let p = &ctl.params;
    LaneControl { inc: chunk.inc[l], freq: p.freq, cutoff: p.cutoff, q: p.q, filter: p.filter }
}

/// One control step of every sounding voice (bit of `mask`) of a chunk.
fn control_chunk(
    rich: &mut RichChunk,
    chunk: &VoiceChunk,
    ctls: &[VoiceControl],
    mask: u8,
    patch: &Patch,
    rates: &ControlRates,
) {
    for (l, ctl) in ctls.iter().enumerate() {
        if mask & (1 << l) != 0 {
            let lane = lane_control(chunk, ctl, l);
            crate::rich::control_step(rich, l, patch, rates, &lane, true);
        }
    }
}

/// Sums the lanes in a fixed pairwise order (part of determinism).
#[inline(always)]
fn sum_lanes(a: &f32x8) -> f32 {
    let a = a.to_array();
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

/// A patch change's fade, seconds: finite, clamped to `[0, MAX_FADE_SECONDS]`.
pub(crate) fn sanitize_fade(fade: f32) -> Result<(f32, bool), SynthError> {
    if !fade.is_finite() {
        return Err(SynthError::BadFade(fade));
    }
    let f = fade.clamp(0.0, MAX_FADE_SECONDS);
    Ok((f, f != fade))
}
