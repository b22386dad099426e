//! Restarts: backoff when replacements keep failing, quarantine when they
//! never succeed.
//!
//! A replacement that dies or fails before it joins counts as a failure; a
//! successful join clears the count. The first retry is at once, then after
//! `base`, doubling up to `max` (1, 2, 4, 8 s by default); after
//! `quarantine_after` failures in a row the slot is given up on (the engine
//! plays on the survivors).

use super::Nanos;

/// How restarts back off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// First wait, for the second retry in a row.
    pub base: Nanos,
    /// Longest wait.
    pub max: Nanos,
    /// Failures in a row after which the slot is quarantined.
    pub quarantine_after: u32,
}

/// When to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Now.
    Now,
    /// At this time.
    At(Nanos),
    /// Never: quarantined.
    Quarantine,
}

/// Failures in a row of one slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restarts {
    failures: u32,
}

impl Restarts {
    /// A replacement failed before it joined.
    pub fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// A replacement joined.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When the next attempt may start, at `now`.
    pub fn next(&self, policy: &RestartPolicy, now: Nanos) -> Retry {
        match self.failures {
            f if f >= policy.quarantine_after => Retry::Quarantine,
            0 | 1 => Retry::Now,
            f => Retry::At(now + policy.base.saturating_mul(1 << (f - 2).min(16)).min(policy.max)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ms;

    const POLICY: RestartPolicy = RestartPolicy { base: ms(1_000), max: ms(8_000), quarantine_after: 6 };

    #[test]
    fn retries_back_off_doubling_then_quarantine() {
        let mut r = Restarts::default();
        let mut waits = Vec::new();
        for _ in 0..7 {
            waits.push(r.next(&POLICY, 100));
            r.failed();
        }
        assert_eq!(
            waits,
            [
                Retry::Now,
                Retry::Now,
                Retry::At(100 + ms(1_000)),
                Retry::At(100 + ms(2_000)),
                Retry::At(100 + ms(4_000)),
                Retry::At(100 + ms(8_000)),
                Retry::Quarantine,
            ]
        );
        r.succeeded();
        assert_eq!(r.next(&POLICY, 0), Retry::Now);
    }
}
