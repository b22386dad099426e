//! Supervisor ↔ worker control: render permission, stop requests, wake-ups.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
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
        // SeqCst: paired with the worker's SeqCst `sleeping` store and limit
        // load in `worker_sleep` (store-then-load on both sides), so either
        // the worker sees the new limit or we see it sleeping and wake it.
        self.control().render_limit.fetch_max(frame, SeqCst);
        self.wake_worker();
    }

    /// The render limit (SeqCst, see [`Region::publish_render_limit`]).
    pub fn render_limit(&self) -> u64 {
        self.control().render_limit.load(SeqCst)
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
    /// `ready()` must read what wakers publish with SeqCst loads (as
    /// [`Region::render_limit`] does), to pair with their SeqCst stores.
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

/// Snapshot, join and fault words.
impl Region {
    /// Supervisor: asks for a snapshot at the first block boundary at or after
    /// `frame`; returns the request id to wait for.
    pub fn request_snapshot(&self, frame: u64) -> u32 {
        let c = self.control();
        c.snapshot_req_frame.store(frame, Release);
        let id = c.snapshot_req_id.fetch_add(1, SeqCst).wrapping_add(1);
        self.wake_worker();
        id
    }

    /// Supervisor: whether snapshot request `id` is done.
    pub fn snapshot_done(&self, id: u32) -> bool {
        self.control().snapshot_done_id.load(Acquire) == id
    }

    /// Worker: the pending snapshot request (id, frame), if any.
    pub fn pending_snapshot(&self) -> Option<(u32, u64)> {
        let c = self.control();
        let id = c.snapshot_req_id.load(Acquire);
        (id != c.snapshot_done_id.load(Relaxed)).then(|| (id, c.snapshot_req_frame.load(Acquire)))
    }

    /// Worker: marks snapshot request `id` done (after writing the area).
    pub fn snapshot_written(&self, id: u32) {
        self.control().snapshot_done_id.store(id, Release);
    }

    /// Supervisor, before spawning: the worker must join from a snapshot.
    pub fn set_join(&self, join: bool) {
        self.control().join.store(u32::from(join), Release);
    }

    /// Whether the worker must join from a snapshot.
    pub fn is_join(&self) -> bool {
        self.control().join.load(Acquire) != 0
    }

    /// Supervisor: the snapshot area holds the state to start from; the
    /// audio ring starts at `frame`.
    pub fn publish_restore(&self, frame: u64) {
        let h = self.audio_header();
        h.write_frame.store(frame, Release);
        h.read_frame.store(frame, Release);
        self.control().restore_ready.store(1, SeqCst);
        self.wake_worker();
    }

    /// Worker: whether the snapshot to start from is in place.
    pub fn restore_ready(&self) -> bool {
        self.control().restore_ready.load(Acquire) != 0
    }

    /// Supervisor, before spawning: allow fault injection.
    pub fn enable_faults(&self, on: bool) {
        self.control().faults_enabled.store(u32::from(on), Release);
    }

    /// Supervisor: asks the worker to inflict `kind` on itself. Returns false
    /// when fault injection is not enabled for this region.
    pub fn inject_fault(&self, kind: crate::FaultKind) -> bool {
        let c = self.control();
        if c.faults_enabled.load(Acquire) == 0 {
            return false;
        }
        c.fault.store(kind as u32, SeqCst);
        self.wake_worker();
        true
    }

    /// Worker: the fault it was asked to inflict, if injection is enabled.
    pub fn requested_fault(&self) -> Option<crate::FaultKind> {
        let c = self.control();
        if c.faults_enabled.load(Relaxed) == 0 {
            return None;
        }
        crate::FaultKind::from_u32(c.fault.load(Acquire))
    }

    /// Worker: publishes the checksum of grid block `block`.
    pub fn publish_checksum(&self, block: u64, hash: u64) {
        let hb = self.heartbeat();
        let i = (block % crate::layout::CHECKSUMS as u64) as usize;
        hb.checksum_hash[i].store(hash, Relaxed);
        hb.checksum_block[i].store(block, Release);
    }

    /// Supervisor: the checksum of grid block `block`, if still held.
    pub fn checksum(&self, block: u64) -> Option<u64> {
        let hb = self.heartbeat();
        let i = (block % crate::layout::CHECKSUMS as u64) as usize;
        if hb.checksum_block[i].load(Acquire) != block {
            return None;
        }
        let hash = hb.checksum_hash[i].load(Acquire);
        // A newer block may have replaced it while reading.
        (hb.checksum_block[i].load(Acquire) == block).then_some(hash)
    }
}

/// FNV-1a over the bits of interleaved samples, continuing from `hash`
/// (start from [`CHECKSUM_SEED`]).
pub fn checksum_samples(hash: u64, left: &[f32], right: &[f32]) -> u64 {
    left.iter().zip(right).fold(hash, |h, (l, r)| {
        let h = (h ^ u64::from(l.to_bits())).wrapping_mul(0x0000_0100_0000_01b3);
        (h ^ u64::from(r.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Start value of a block checksum.
pub const CHECKSUM_SEED: u64 = 0xcbf2_9ce4_8422_2325;
