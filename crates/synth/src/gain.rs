//! Stereo gain with linear ramps, and the constant-power pan law.

use bytemuck::{Pod, Zeroable};

/// Left and right gains for `amp` (linear) at `pan` (-1 left … 1 right),
/// constant power: `amp·cos θ`, `amp·sin θ` with `θ = (pan + 1)·π/4`.
pub fn pan_gains(amp: f32, pan: f32) -> [f32; 2] {
    let theta = (f64::from(pan.clamp(-1.0, 1.0)) + 1.0) * std::f64::consts::FRAC_PI_4;
    let (s, c) = theta.sin_cos();
    // Exact at the ends, so hard left/right leave the other side at 0.
    let (c, s) = match pan {
        p if p <= -1.0 => (1.0, 0.0),
        p if p >= 1.0 => (0.0, 1.0),
        _ => (c as f32, s as f32),
    };
    [amp * c, amp * s]
}

/// A stereo gain moving linearly to a target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct GainRamp {
    /// Current gains.
    pub value: [f32; 2],
    /// Per-sample steps.
    pub step: [f32; 2],
    /// Where the ramp ends.
    pub target: [f32; 2],
    /// Samples left in the ramp (0: steady).
    pub remaining: u32,
}

impl GainRamp {
    /// A steady gain.
    pub fn steady(value: [f32; 2]) -> Self {
        Self { value, step: [0.0; 2], target: value, remaining: 0 }
    }

    /// Ramps to `target` over `len` samples (jumps when `len` is 0).
    pub fn ramp_to(&mut self, target: [f32; 2], len: u32) {
        if len == 0 {
            *self = Self::steady(target);
        } else {
            let n = len as f32;
            self.step = [(target[0] - self.value[0]) / n, (target[1] - self.value[1]) / n];
            self.target = target;
            self.remaining = len;
        }
    }

    /// Accounts for `n` samples of stepping; lands on the target at the end.
    pub fn consume(&mut self, n: u32) {
        if self.remaining > 0 {
            self.remaining = self.remaining.saturating_sub(n);
            if self.remaining == 0 {
                *self = Self::steady(self.target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_law_is_constant_power_and_exact_at_the_ends() {
        assert_eq!(pan_gains(0.5, -1.0), [0.5, 0.0]);
        assert_eq!(pan_gains(0.5, 1.0), [0.0, 0.5]);
        let [l, r] = pan_gains(1.0, 0.3);
        assert!((l * l + r * r - 1.0).abs() < 1e-6);
    }
}
