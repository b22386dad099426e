//! Health: how safe the engine is right now.
//!
//! * `CRITICAL`: no worker producing audio.
//! * `OVERLOADED`: every replica over its render budget (the workload).
//! * `DEGRADED`: playing, but without a verified standby; or within the
//!   underrun window of an underrun; or while restarts back off, are
//!   quarantined, or the DSP was found not to be deterministic.
//! * `HEALTHY`: an active and a verified standby, and none of the above.

use super::Nanos;
use serde::Serialize;

/// How safe the engine is right now: `Healthy` with an active and a verified
/// standby and no underrun in the last [`UNDERRUN_WINDOW`];
/// `Degraded` without a verified standby, after a recent underrun, or while
/// restarts back off or are quarantined; `Overloaded` while every replica
/// renders over its real-time budget (the workload, not a fault); `Critical`
/// with no worker producing audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Health {
    /// An active worker and a verified standby.
    Healthy,
    /// Playing, but without a verified standby.
    Degraded,
    /// Every replica renders over its real-time budget: the workload is too
    /// heavy for the machine. Nobody is killed; commands superseded within
    /// a period are coalesced; audio may break up until the load goes.
    Overloaded,
    /// No worker producing audio.
    Critical,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::Healthy => "HEALTHY",
            Health::Degraded => "DEGRADED",
            Health::Overloaded => "OVERLOADED",
            Health::Critical => "CRITICAL",
        })
    }
}

/// How long an underrun keeps the health `Degraded`.
pub const UNDERRUN_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// What health is computed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthFacts {
    /// Live (verified) workers.
    pub live: usize,
    /// Frames were played as silence within the underrun window.
    pub recent_underrun: bool,
    /// A restart waits out its backoff.
    pub backing_off: bool,
    /// A slot was quarantined.
    pub quarantined: bool,
    /// The DSP was found not to be deterministic.
    pub nondeterministic: bool,
    /// Every replica is over its render budget.
    pub overloaded: bool,
}

/// The health for `f`.
pub fn health(f: &HealthFacts) -> Health {
    match f.live {
        0 => Health::Critical,
        _ if f.overloaded => Health::Overloaded,
        1 => Health::Degraded,
        _ if f.recent_underrun || f.backing_off || f.quarantined || f.nondeterministic => Health::Degraded,
        _ => Health::Healthy,
    }
}

/// Remembers when the underrun count last grew.
#[derive(Clone, Copy, Debug, Default)]
pub struct UnderrunWindow {
    count: u64,
    changed: Option<Nanos>,
}

impl UnderrunWindow {
    /// Notes the underrun count at `now`; returns whether an underrun
    /// happened within `window` of `now`.
    pub fn update(&mut self, count: u64, now: Nanos, window: Nanos) -> bool {
        if count != self.count {
            self.count = count;
            self.changed = Some(now);
        }
        self.changed.is_some_and(|t| now.saturating_sub(t) < window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ms;

    #[test]
    fn health_follows_the_rules() {
        let ok = HealthFacts { live: 2, ..HealthFacts::default() };
        assert_eq!(health(&ok), Health::Healthy);
        assert_eq!(health(&HealthFacts { live: 0, ..ok }), Health::Critical);
        assert_eq!(health(&HealthFacts { live: 1, ..ok }), Health::Degraded);
        assert_eq!(health(&HealthFacts { live: 3, ..ok }), Health::Healthy);
        for f in [
            HealthFacts { recent_underrun: true, ..ok },
            HealthFacts { backing_off: true, ..ok },
            HealthFacts { quarantined: true, ..ok },
            HealthFacts { nondeterministic: true, ..ok },
        ] {
            assert_eq!(health(&f), Health::Degraded, "{f:?}");
        }
    }

    #[test]
    fn an_underrun_counts_for_the_window_then_not() {
        let mut w = UnderrunWindow::default();
        let window = ms(10_000);
        assert!(!w.update(0, 0, window));
        assert!(w.update(5, ms(1), window));
        assert!(w.update(5, ms(9_000), window));
        assert!(!w.update(5, ms(10_002), window));
        assert!(w.update(6, ms(10_003), window));
    }
}
