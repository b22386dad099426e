//! A patch change in progress: the new patch staged while the voices fade
//! out, swapped in at the bottom of the fade, faded back in.
//!
//! `/patch/begin f:fade_s` starts it: a staged copy of every patch setting
//! starts from the defaults (the plain voice), and the `/set` commands that
//! follow — until the swap — write into it instead of the live settings. The
//! voices' sum fades to silence over `fade_s`; at that frame the staged
//! settings replace the live ones (a complete replacement: what the patch
//! does not name is back at its default) and the voices fade back in over
//! `fade_s`. The master bus keeps playing throughout (a reverb tail carries
//! over; its settings glide to the new ones). With `fade_s = 0` the swap
//! happens before the frame's first sample, after every command of that
//! frame. Plain data, in the snapshot: a failover in the middle of a change
//! continues it bit for bit.

use bytemuck::{Pod, Zeroable};

use crate::gain::GainRamp;
use crate::param::{Param, VoiceParams};
use crate::rich::Patch;

/// The longest fade, seconds.
pub const MAX_FADE_SECONDS: f32 = 1.0;

/// The voice settings a patch sets (all but `freq` and `amp`, which belong
/// to notes).
pub const PATCH_VOICE_PARAMS: [Param; 8] = [
    Param::Cutoff,
    Param::Q,
    Param::Attack,
    Param::Decay,
    Param::Sustain,
    Param::Release,
    Param::Pan,
    Param::Filter,
];

/// The state of a patch change.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct PatchChange {
    /// The frame the staged patch replaces the live one (while staging).
    pub swap_at: u64,
    /// The voices' gain through the change (1 when none is under way).
    pub xfade: GainRamp,
    /// Samples of the fade back in.
    pub fade_len: u32,
    /// 1 while a patch is staged (from `/patch/begin` to the swap).
    pub staging: u32,
    /// The staged instrument settings.
    pub patch: Patch,
    /// The staged voice defaults.
    pub defaults: VoiceParams,
    /// The staged master-bus targets (as `MasterBus::set` numbers them).
    pub bus: [f32; 6],
}

impl PatchChange {
    /// No change under way.
    pub fn idle() -> Self {
        Self {
            swap_at: 0,
            xfade: GainRamp::steady([1.0, 1.0]),
            fade_len: 0,
            staging: 0,
            patch: Patch::default(),
            defaults: VoiceParams::default(),
            bus: crate::master::default_targets(),
        }
    }

    /// Whether a staged patch waits for its swap.
    pub fn is_staging(&self) -> bool {
        self.staging != 0
    }

    /// Starts a change at `frame`: stages the defaults and fades out over
    /// `fade` samples (a change already under way starts over from where its
    /// fade is).
    pub fn begin(&mut self, frame: u64, fade: u32) {
        self.staging = 1;
        self.swap_at = frame + u64::from(fade);
        self.fade_len = fade;
        self.patch = Patch::default();
        self.defaults = VoiceParams::default();
        self.bus = crate::master::default_targets();
        self.xfade.ramp_to([0.0, 0.0], fade);
    }

    /// Writes `value` (sanitised) for `param` into the staged patch; false
    /// for a parameter that is not part of a patch (`freq`, `amp`,
    /// `master`: they stay live).
    pub fn stage(&mut self, param: Param, value: f32) -> bool {
        if let Some(k) = param.bus_index() {
            self.bus[k] = value;
        } else if param.is_patch_param() {
            self.patch.store(param, value);
        } else if PATCH_VOICE_PARAMS.contains(&param) {
            self.defaults.store(param, value);
        } else {
            return false;
        }
        true
    }

    /// Whether a snapshot's change could have come from a synth at
    /// `sample_rate`: finite gains, a fade no longer than the longest, a
    /// staged patch of valid settings.
    pub fn valid(&self, sample_rate: u32) -> bool {
        let x = &self.xfade;
        let finite = [x.value, x.step, x.target].iter().flatten().all(|v| v.is_finite());
        let longest = crate::adsr::seconds_to_samples(MAX_FADE_SECONDS, sample_rate);
        // The six master-bus parameters, in `MasterBus::set`'s order.
        let bus = Param::ALL[Param::DelayTime as usize..=Param::ReverbMix as usize]
            .iter()
            .zip(self.bus)
            .all(|(p, v)| p.sanitize(v, sample_rate) == Ok((v, false)));
        finite
            && self.staging <= 1
            && self.fade_len <= longest
            && x.remaining <= longest
            && bus
            && self.patch.valid(sample_rate)
            && self.defaults.sanitized(sample_rate).is_ok()
    }

    /// Ends the staging at the swap and starts the fade back in.
    pub fn finish(&mut self) {
        self.staging = 0;
        self.xfade.ramp_to([1.0, 1.0], self.fade_len);
    }
}
