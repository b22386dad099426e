//! Supervisor ↔ worker control: render permission, stop requests, wake-ups.

use std::sync::atomic::Ordering::{Acquire, Release, SeqCst};
use std::time::Duration;

use crate::layout::WorkerState;
use crate::{Region, sys};

/// The value of `ControlBlock::stop` that asks a worker of `generation` to
/// stop. Never 0, so a zeroed region never reads as a stop request, and
/// different for neighbouring generations, so a stale one does not either.
pub fn stop_token(generation: u64) -> u32 {
    (crate::command_ring::mix(generation ^ 0x5354_4f50) as u32) | 1
}

impl Region {
    /// Lets the worker render frames below `frame`. Call only after every
    /// command for those frames has been pushed.
    pub fn publish_render_limit(&self, frame: u64) {
        self.control().render_limit.fetch_max(frame, Release);
        self.wake_worker();
    }

    /// Asks the worker to stop (it finishes its block and exits 0).
    pub fn request_stop(&self) {
        self.control().stop.store(stop_token(self.generation()), Release);
        self.control().wake.fetch_add(1, Release);
        sys::futex_wake(&self.control().wake, 1);
    }

    /// Whether a stop was requested for this region's generation.
    pub fn stop_requested(&self) -> bool {
        self.control().stop.load(Acquire) == stop_token(self.generation())
    }

    /// Wakes the worker if it sleeps; a no-op (no syscall) otherwise.
    pub fn wake_worker(&self) {
        let c = self.control();
        if c.sleeping.load(SeqCst) != 0 {
            c.wake.fetch_add(1, SeqCst);
            sys::futex_wake(&c.wake, 1);
        }
    }

    /// Worker side: sleeps until woken or `timeout`, unless `ready()` turns
    /// true after announcing the sleep (so a wake-up cannot be lost).
    pub fn worker_sleep(&self, timeout: Duration, ready: impl Fn() -> bool) {
        let c = self.control();
        let seen = c.wake.load(SeqCst);
        c.sleeping.store(1, SeqCst);
        if !ready() {
            sys::futex_wait(&c.wake, seen, timeout);
        }
        c.sleeping.store(0, SeqCst);
    }

    /// The worker's reported state (`None` for garbage).
    pub fn worker_state(&self) -> Option<WorkerState> {
        WorkerState::from_u32(self.control().state.load(Acquire))
    }

    /// Worker side: reports its state.
    pub fn set_worker_state(&self, state: WorkerState) {
        self.control().state.store(state as u32, Release);
    }

    /// Supervisor side: waits until the worker leaves [`WorkerState::New`]
    /// or `timeout` passes; returns the state seen last.
    pub fn wait_worker_ready(&self, timeout: Duration) -> Option<WorkerState> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let state = self.worker_state();
            if state != Some(WorkerState::New) || std::time::Instant::now() >= deadline {
                return state;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}
