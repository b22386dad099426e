//! The machine's own noise, measured in the same run: a probe thread at the
//! output thread's priority wakes every millisecond and records how late it
//! was. A virtual machine whose host takes a CPU away shows here as it does
//! to the engine's output thread, so a soak can tell "the machine stalled"
//! (evidence: the probe was late at that moment too) from "Chronus lost
//! frames" (the probe was on time).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Priority of the probe under SCHED_FIFO: the output thread's.
const PRIORITY: i32 = 70;
/// How often it wakes.
const PERIOD: Duration = Duration::from_millis(1);
/// Lateness from which a wake-up is remembered with its time, ms.
pub const NOTABLE_MS: f64 = 2.0;
/// Notable wake-ups remembered with their times (the rest are counted in
/// the histogram and in [`Noise::window_max_ms`]).
const NOTABLE_KEPT: usize = 4_096;
/// The span of time each entry of [`Noise::window_max_ms`] covers, s.
pub const WINDOW_S: f64 = 0.1;
/// Upper bounds of the histogram's buckets, ms (the last is open).
const BUCKETS_MS: [f64; 8] = [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0];

/// What the probe measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Noise {
    /// Whether it ran at real-time priority (SCHED_FIFO).
    pub realtime: bool,
    /// Wake-ups measured.
    pub wakeups: u64,
    /// Wake-ups per lateness bucket: `< 0.1 ms`, `< 0.5`, `< 1`, `< 2`,
    /// `< 5`, `< 10`, `< 20`, `< 50`, `≥ 50 ms`.
    pub histogram: [u64; 9],
    /// The latest it was, ms.
    pub max_ms: f64,
    /// Wake-ups at least [`NOTABLE_MS`] late: (seconds since the start,
    /// ms late), the first [`NOTABLE_KEPT`].
    pub notable: Vec<(f64, f64)>,
    /// The latest wake-up in each [`WINDOW_S`] of the run (ms; entry `k`
    /// covers `[k·WINDOW_S, (k+1)·WINDOW_S)` seconds since the start): the
    /// evidence a stall is judged by, kept for the whole run however noisy
    /// (the list of notable wake-ups fills up in a noisy stretch).
    pub window_max_ms: Vec<f32>,
}

impl Noise {
    /// Labels of the histogram's buckets.
    pub fn labels() -> [String; 9] {
        std::array::from_fn(|i| match i {
            0 => format!("< {} ms", BUCKETS_MS[0]),
            8 => format!("≥ {} ms", BUCKETS_MS[7]),
            _ => format!("{}–{} ms", BUCKETS_MS[i - 1], BUCKETS_MS[i]),
        })
    }

    /// Whether the probe was at least `ms` late within `window` seconds of
    /// `t` (seconds since the start), to the resolution of [`WINDOW_S`].
    pub fn late_near(&self, t: f64, window: f64, ms: f64) -> bool {
        let from = ((t - window).max(0.0) / WINDOW_S).floor() as usize;
        let to = ((t + window).max(0.0) / WINDOW_S).floor() as usize;
        self.window_max_ms.iter().take(to.saturating_add(1)).skip(from).any(|&late| f64::from(late) >= ms)
    }

    /// Records a wake-up `late_ms` late at `at` seconds since the start.
    fn record(&mut self, at: f64, late_ms: f64) {
        let bucket = BUCKETS_MS.iter().position(|&b| late_ms < b).unwrap_or(8);
        self.histogram[bucket] += 1;
        self.wakeups += 1;
        self.max_ms = self.max_ms.max(late_ms);
        if late_ms >= NOTABLE_MS && self.notable.len() < NOTABLE_KEPT {
            self.notable.push((at, late_ms));
        }
        let k = (at / WINDOW_S) as usize;
        if self.window_max_ms.len() <= k {
            self.window_max_ms.resize(k + 1, 0.0);
        }
        self.window_max_ms[k] = self.window_max_ms[k].max(late_ms as f32);
    }

    /// Wake-ups at least `ms` late.
    pub fn late_count(&self, ms: f64) -> u64 {
        let from = BUCKETS_MS.iter().position(|&b| b >= ms).map_or(8, |i| i + 1);
        self.histogram[from..].iter().sum()
    }
}

/// A running probe.
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Noise>>,
}

impl Probe {
    /// Starts probing for about `length` (its record is sized for that, and
    /// grows past it); times are seconds since `start`.
    pub fn start(start: Instant, length: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("soak-noise-probe".into()).spawn(move || {
            let mut noise = Noise {
                realtime: chronus::sys::sched::set_thread_fifo(PRIORITY).is_ok(),
                notable: Vec::with_capacity(NOTABLE_KEPT),
                window_max_ms: Vec::with_capacity((length.as_secs_f64() / WINDOW_S) as usize + 64),
                ..Noise::default()
            };
            let mut deadline = Instant::now() + PERIOD;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                let now = Instant::now();
                let late_ms = now.saturating_duration_since(deadline).as_secs_f64() * 1_000.0;
                noise.record(now.duration_since(start).as_secs_f64(), late_ms);
                // The next wake-up on the grid; after a long stall, from now.
                deadline += PERIOD;
                if deadline < now {
                    deadline = now + PERIOD;
                }
            }
            noise
        })?;
        Ok(Self { stop, thread: Some(thread) })
    }

    /// Stops it and returns what it measured.
    pub fn finish(mut self) -> Noise {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_is_bucketed_and_looked_up_by_time() {
        let mut noise = Noise::default();
        for (at, late) in [(1.0, 0.01), (2.0, 0.02), (3.0, 0.03), (4.0, 0.04), (5.0, 0.05)] {
            noise.record(at, late);
        }
        for (at, late) in [(10.0, 3.0), (11.0, 4.0), (12.0, 6.0), (13.0, 30.0), (20.0, 60.0)] {
            noise.record(at, late);
        }
        assert_eq!(noise.histogram, [5, 0, 0, 0, 2, 1, 0, 1, 1]);
        assert_eq!(noise.late_count(2.0), 5);
        assert_eq!(noise.late_count(10.0), 2);
        assert!(noise.late_near(20.2, 0.25, 16.0));
        assert!(!noise.late_near(10.1, 0.25, 16.0), "3 ms is not a 16 ms stall");
        assert!(!noise.late_near(15.0, 0.25, 2.0));
        assert!(noise.late_near(0.0, 0.5, 0.0), "a window before the first late wake-up is still looked at");
    }

    #[test]
    fn a_noisy_run_keeps_its_evidence_to_the_end() {
        // More late wake-ups than the notable list keeps: a stall at the end
        // of the run is still evidenced (it was not before: the list filled
        // up in the noisy stretch, and later stalls looked unexplained).
        let mut noise = Noise::default();
        for k in 0..20_000 {
            noise.record(f64::from(k) * 0.001, 5.0);
        }
        assert_eq!(noise.notable.len(), NOTABLE_KEPT);
        assert!(noise.late_near(19.9, 0.5, 4.0));
        assert!(!noise.late_near(30.0, 0.5, 4.0), "nothing was measured there");
        assert_eq!(Noise::labels()[0], "< 0.1 ms");
        assert_eq!(Noise::labels()[8], "≥ 50 ms");
    }
}
