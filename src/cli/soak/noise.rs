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
/// Notable wake-ups remembered (the rest are counted in the histogram).
const NOTABLE_KEPT: usize = 4_096;
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
    /// `t` (seconds since the start).
    pub fn late_near(&self, t: f64, window: f64, ms: f64) -> bool {
        self.notable.iter().any(|&(at, late)| (at - t).abs() <= window && late >= ms)
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
    /// Starts probing; times are seconds since `start`.
    pub fn start(start: Instant) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("soak-noise-probe".into()).spawn(move || {
            let mut noise = Noise {
                realtime: chronus::sys::sched::set_thread_fifo(PRIORITY).is_ok(),
                notable: Vec::with_capacity(NOTABLE_KEPT),
                ..Noise::default()
            };
            let mut deadline = Instant::now() + PERIOD;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                let now = Instant::now();
                let late_ms = now.saturating_duration_since(deadline).as_secs_f64() * 1_000.0;
                let bucket = BUCKETS_MS.iter().position(|&b| late_ms < b).unwrap_or(8);
                noise.histogram[bucket] += 1;
                noise.wakeups += 1;
                noise.max_ms = noise.max_ms.max(late_ms);
                if late_ms >= NOTABLE_MS && noise.notable.len() < NOTABLE_KEPT {
                    noise.notable.push((now.duration_since(start).as_secs_f64(), late_ms));
                }
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
        let noise = Noise {
            histogram: [5, 0, 0, 0, 2, 1, 0, 0, 1],
            notable: vec![(10.0, 3.0), (20.0, 60.0)],
            ..Noise::default()
        };
        assert_eq!(noise.late_count(2.0), 4);
        assert_eq!(noise.late_count(10.0), 1);
        assert!(noise.late_near(20.2, 0.25, 16.0));
        assert!(!noise.late_near(10.1, 0.25, 16.0), "3 ms is not a 16 ms stall");
        assert!(!noise.late_near(15.0, 0.25, 2.0));
        assert_eq!(Noise::labels()[0], "< 0.1 ms");
        assert_eq!(Noise::labels()[8], "≥ 50 ms");
    }
}
