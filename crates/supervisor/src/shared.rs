//! State shared by the output, supervisor and API threads: the two worker
//! slots and a few atomic counters. No locks on anything the output thread
//! touches.

use std::sync::atomic::Ordering::Acquire;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64};

use chronus_ipc::Region;

/// No worker in the slot.
pub(crate) const EMPTY: u8 = 0;
/// A replacement is joining: it receives commands and render limits, but
/// its audio is not used yet.
pub(crate) const JOINING: u8 = 1;
/// A verified worker: its audio may be played.
pub(crate) const LIVE: u8 = 2;
/// Its worker died; the output thread must not touch the slot.
pub(crate) const DEAD: u8 = 3;

/// One worker slot: a region reused across worker generations.
#[derive(Debug)]
pub(crate) struct Slot {
    pub region: Region,
    pub state: AtomicU8,
}

impl Slot {
    pub fn state(&self) -> u8 {
        self.state.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_state(&self, state: u8) {
        self.state.store(state, std::sync::atomic::Ordering::SeqCst);
    }

    /// Receives commands and render limits.
    pub fn is_attached(&self) -> bool {
        matches!(self.state(), JOINING | LIVE)
    }
}

/// Everything the threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub slots: [Slot; 2],
    /// Index of the slot whose audio is played first.
    pub active: AtomicU8,
    /// Frames played (the next frame to play).
    pub frame: AtomicU64,
    /// The render limit last published.
    pub limit: AtomicU64,
    /// Output periods completed; the supervisor waits for it to move before
    /// reusing a slot the output thread may still be reading.
    pub cycle: AtomicU64,
    /// Frames played as silence because no worker had them.
    pub underrun_frames: AtomicU64,
    /// Of `underrun_frames`, those in periods the output thread itself
    /// started too late (the machine did not run it).
    pub machine_stall_frames: AtomicU64,
    /// Times the supervisor thread itself was held off long enough that the
    /// watchdog excused the workers' lack of progress.
    pub supervisor_stalls: AtomicU64,
    /// Frames taken from the standby because the active did not have them.
    pub fallback_frames: AtomicU64,
    /// The first underrun, for diagnosis: [frame, slot 0 written up to,
    /// slot 1 written up to, slot states (s0 | s1 << 8), µs the output was
    /// past its deadline (0: on time), µs since the output started].
    pub first_underrun: [AtomicU64; 6],
    /// Non-finite samples from workers replaced by silence.
    pub corrupt_samples: AtomicU64,
    /// Commands dropped because the input queue was full.
    pub commands_dropped: AtomicU64,
    /// Scheduled commands played later than asked (schedule full, or the
    /// time had passed).
    pub commands_late: AtomicU64,
    /// CLOCK_REALTIME ns at which frame 0 played (0 until the output runs).
    pub start_unix_ns: AtomicU64,
    /// Journal entries or recorded samples lost to full queues (must stay 0).
    pub io_overruns: AtomicU64,
    /// The output thread has started producing.
    pub running: AtomicBool,
    /// The output thread is inside `process` (SeqCst, paired with slot state
    /// changes: see [`Shared::output_mark`]).
    pub busy: AtomicBool,
    /// Ask every thread to finish.
    pub stop: AtomicBool,
    /// The output thread has been joined: nothing more will be queued.
    pub output_done: AtomicBool,
}

impl Shared {
    pub fn new(regions: [Region; 2]) -> Self {
        let [a, b] = regions;
        Self {
            slots: [
                Slot { region: a, state: AtomicU8::new(EMPTY) },
                Slot { region: b, state: AtomicU8::new(EMPTY) },
            ],
            active: AtomicU8::new(0),
            frame: AtomicU64::new(0),
            limit: AtomicU64::new(0),
            cycle: AtomicU64::new(0),
            underrun_frames: AtomicU64::new(0),
            machine_stall_frames: AtomicU64::new(0),
            supervisor_stalls: AtomicU64::new(0),
            fallback_frames: AtomicU64::new(0),
            first_underrun: Default::default(),
            corrupt_samples: AtomicU64::new(0),
            commands_dropped: AtomicU64::new(0),
            commands_late: AtomicU64::new(0),
            start_unix_ns: AtomicU64::new(0),
            io_overruns: AtomicU64::new(0),
            running: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            output_done: AtomicBool::new(false),
        }
    }

    /// Call right after changing a slot's state: returns a mark for
    /// [`Shared::output_saw`].
    pub fn output_mark(&self) -> OutputMark {
        let busy = self.busy.load(std::sync::atomic::Ordering::SeqCst);
        OutputMark { cycle: self.cycle.load(Acquire), busy }
    }

    /// Whether every output period that may have read a slot's state from
    /// before `mark` has finished, so the output thread now sees the new
    /// state. The state store and the `busy` load are SeqCst, as are the
    /// output's `busy` store and its state loads: if the output was not busy
    /// at the mark, its next period starts after the store and sees it.
    pub fn output_saw(&self, mark: OutputMark) -> bool {
        !mark.busy || self.cycle.load(Acquire) > mark.cycle || !self.running.load(Acquire)
    }

    pub fn active(&self) -> usize {
        usize::from(self.active.load(Acquire)) & 1
    }
}

/// See [`Shared::output_mark`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutputMark {
    cycle: u64,
    busy: bool,
}
