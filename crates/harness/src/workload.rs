//! A musical workload for benchmarks and tests: a score played into an
//! engine in real time, looped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chronus_dsp::TimedEvent;

use chronus_supervisor::Engine;

/// Sends `events` (a score, sorted by frame) to `engine` at their times,
/// looping every `loop_frames` frames, until `stop` is set. Returns the
/// number of commands sent.
pub fn play_looped(engine: &Engine, events: &[TimedEvent], loop_frames: u64, stop: &AtomicBool) -> u64 {
    let sample_rate = f64::from(engine.config().sample_rate);
    let start = Instant::now();
    let mut sent = 0u64;
    if events.is_empty() {
        return 0;
    }
    while !stop.load(Ordering::Relaxed) {
        let now = (start.elapsed().as_secs_f64() * sample_rate) as u64;
        loop {
            let i = sent as usize;
            let lap = (i / events.len()) as u64;
            let c = &events[i % events.len()];
            if lap * loop_frames + c.frame > now {
                break;
            }
            // A full queue means the output is stalled; dropping is counted.
            let _ = engine.send(c.event);
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    sent
}
