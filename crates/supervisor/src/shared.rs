//! State shared by the output, supervisor and API threads: the bus, the
//! worker slots and atomic counters. No locks on anything the output thread
//! touches.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64};

use chronus_dsp::Event;
use chronus_ipc::{Bus, WorkerRegion};

/// No worker in the slot (or one spawned but not started yet).
pub(crate) const EMPTY: u8 = 0;
/// A replacement has started rendering: it gets render-limit wake-ups and
/// ring space, but its audio is not played yet.
pub(crate) const JOINING: u8 = 1;
/// A verified replica: its audio may be played.
pub(crate) const LIVE: u8 = 2;
/// Its worker died; the output thread must not touch the slot.
pub(crate) const DEAD: u8 = 3;

/// What every thread shares of one worker slot: its region (reused
/// across worker generations) and the view of it the output thread reads.
/// The view is written in one place: `control::slot::Slot::publish`, from
/// the slot's phase.
#[derive(Debug)]
pub(crate) struct SharedSlot {
    pub region: WorkerRegion,
    state: AtomicU8,
}

impl SharedSlot {
    /// `EMPTY`, `JOINING`, `LIVE` or `DEAD`.
    pub fn state(&self) -> u8 {
        self.state.load(SeqCst)
    }

    /// Only `control::slot::Slot::publish` calls this.
    pub(crate) fn publish_view(&self, state: u8) {
        self.state.store(state, SeqCst);
    }

    /// Renders: gets render-limit wake-ups and ring space.
    pub fn is_attached(&self) -> bool {
        matches!(self.state(), JOINING | LIVE)
    }
}

/// Everything the threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// What every worker reads: the log, the render limit, checkpoints.
    pub bus: Bus,
    pub slots: Vec<SharedSlot>,
    /// Index of the slot whose audio is played first.
    pub active: AtomicU8,
    /// Which slot the output played its frames from, lately (written by
    /// the output thread only): how much of a replica later found wrong
    /// was heard.
    pub plays: crate::play_log::PlayLog,
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
    /// Times the watchdog found a stalled worker starved (runnable, with
    /// next to no CPU time: the machine did not run it) and gave it
    /// patience instead of killing it.
    pub starved_workers: AtomicU64,
    /// Times the audio device ran dry (reported by the device driver).
    pub device_xruns: AtomicU64,
    /// Frames the device played as silence in those xruns (measured).
    pub device_xrun_frames: AtomicU64,
    /// Frames taken from a standby because the active did not have them.
    pub fallback_frames: AtomicU64,
    /// Times the active was outvoted: its checksums disagreed with two
    /// replicas that agreed with each other (two standbys, or the standby
    /// and the referee).
    pub outvoted: AtomicU64,
    /// Frames of a replica found wrong that were played before the vote
    /// (the outvoted active's, a standby's played as a fallback): wrong
    /// audio heard, journaled as `@wrong`.
    pub wrong_frames_played: AtomicU64,
    /// Disputes between two replicas a referee ruled on.
    pub disputes_ruled: AtomicU64,
    /// Disputes no referee could rule on in time (the standby was replaced,
    /// as before referees).
    pub disputes_undecided: AtomicU64,
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
    /// Events left out because a later one at the same frame superseded
    /// them (coalescing).
    pub events_coalesced: AtomicU64,
    /// Events stamped (the next event number).
    pub events_stamped: AtomicU64,
    /// Who sent each event still in the log (an origin id the API was
    /// given, 0: unknown), indexed by event number modulo the log size.
    pub origins: Box<[AtomicU32]>,
    /// Events cut out as poisons.
    pub excised_commands: AtomicU64,
    /// Commands refused because they equal one cut out as a poison.
    pub poison_refusals: AtomicU64,
    /// The contents of the commands cut out, refused from then on.
    pub poisons: PoisonList,
    /// Every live replica is over its render budget right now.
    pub overloaded: AtomicBool,
    /// Times the engine became overloaded.
    pub overloads: AtomicU64,
    /// Blocks rendered while overloaded (as the watchdog saw them).
    pub overloaded_passes: AtomicU64,
    /// The lowest event number a usable checkpoint starts from: the log
    /// keeps everything from it on (u64::MAX: no checkpoint).
    pub checkpoint_floor: AtomicU64,
    /// CLOCK_REALTIME ns at which frame 0 played (0 until the output runs).
    pub start_unix_ns: AtomicU64,
    /// When a frame reaches the device's output, as its driver said last.
    pub device_clock: DeviceClock,
    /// Journal entries, notes or recorded samples lost to full queues (must
    /// stay 0).
    pub io_overruns: AtomicU64,
    /// Asks the output to fade to silence from the next frame it plays.
    pub fade_requested: AtomicBool,
    /// Where the fade ends, once the output has started it (0: not yet).
    pub fade_end: AtomicU64,
    /// The output thread has started producing.
    pub running: AtomicBool,
    /// The output thread is inside `process` (SeqCst, paired with slot state
    /// changes: see [`Shared::output_mark`]).
    pub busy: AtomicBool,
    /// Ask every thread to finish.
    pub stop: AtomicBool,
    /// The output is done: nothing more will be queued.
    pub output_done: AtomicBool,
}

impl Shared {
    /// The engine's counters, each read once (Acquire): the one place
    /// they are gathered, for the status and the report.
    pub fn counters(&self) -> crate::status::Counters {
        let get = |c: &AtomicU64| c.load(Acquire);
        crate::status::Counters {
            frames_played: get(&self.frame),
            underrun_frames: get(&self.underrun_frames),
            machine_stall_frames: get(&self.machine_stall_frames),
            supervisor_stalls: get(&self.supervisor_stalls),
            starved_workers: get(&self.starved_workers),
            fallback_frames: get(&self.fallback_frames),
            outvoted: get(&self.outvoted),
            wrong_frames_played: get(&self.wrong_frames_played),
            disputes_ruled: get(&self.disputes_ruled),
            disputes_undecided: get(&self.disputes_undecided),
            device_xruns: get(&self.device_xruns),
            device_xrun_frames: get(&self.device_xrun_frames),
            corrupt_samples: get(&self.corrupt_samples),
            io_overruns: get(&self.io_overruns),
            commands_dropped: get(&self.commands_dropped),
            commands_late: get(&self.commands_late),
            events_coalesced: get(&self.events_coalesced),
            events_stamped: get(&self.events_stamped),
            excised_commands: get(&self.excised_commands),
            poison_refusals: get(&self.poison_refusals),
            overloads: get(&self.overloads),
        }
    }

    pub fn new(bus: Bus, regions: Vec<WorkerRegion>) -> Self {
        let log_slots = bus.geometry().log_slots as usize;
        Self {
            origins: (0..log_slots).map(|_| AtomicU32::new(0)).collect(),
            excised_commands: AtomicU64::new(0),
            poison_refusals: AtomicU64::new(0),
            poisons: PoisonList::default(),
            overloaded: AtomicBool::new(false),
            overloads: AtomicU64::new(0),
            overloaded_passes: AtomicU64::new(0),
            bus,
            slots: regions
                .into_iter()
                .map(|region| SharedSlot { region, state: AtomicU8::new(EMPTY) })
                .collect(),
            active: AtomicU8::new(0),
            plays: crate::play_log::PlayLog::default(),
            frame: AtomicU64::new(0),
            limit: AtomicU64::new(0),
            cycle: AtomicU64::new(0),
            underrun_frames: AtomicU64::new(0),
            machine_stall_frames: AtomicU64::new(0),
            supervisor_stalls: AtomicU64::new(0),
            starved_workers: AtomicU64::new(0),
            fallback_frames: AtomicU64::new(0),
            outvoted: AtomicU64::new(0),
            wrong_frames_played: AtomicU64::new(0),
            disputes_ruled: AtomicU64::new(0),
            disputes_undecided: AtomicU64::new(0),
            device_xruns: AtomicU64::new(0),
            device_xrun_frames: AtomicU64::new(0),
            first_underrun: Default::default(),
            corrupt_samples: AtomicU64::new(0),
            commands_dropped: AtomicU64::new(0),
            commands_late: AtomicU64::new(0),
            events_coalesced: AtomicU64::new(0),
            events_stamped: AtomicU64::new(0),
            checkpoint_floor: AtomicU64::new(u64::MAX),
            start_unix_ns: AtomicU64::new(0),
            device_clock: DeviceClock::default(),
            io_overruns: AtomicU64::new(0),
            fade_requested: AtomicBool::new(false),
            fade_end: AtomicU64::new(0),
            running: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            output_done: AtomicBool::new(false),
        }
    }

    /// Call right after changing a slot's state: returns a mark for
    /// [`Shared::output_saw`].
    pub fn output_mark(&self) -> OutputMark {
        let busy = self.busy.load(SeqCst);
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

    /// Who sent event number `seq` (while it is in the log).
    pub fn origin(&self, seq: u64) -> u32 {
        self.origins[(seq % self.origins.len() as u64) as usize].load(Relaxed)
    }

    /// The slot played first.
    pub fn active(&self) -> usize {
        usize::from(self.active.load(Acquire)).min(self.slots.len().saturating_sub(1))
    }

    /// The lowest event number a live worker has not read yet, or a usable
    /// checkpoint starts from: the log must keep everything from it on.
    pub fn oldest_needed(&self, write_seq: u64) -> u64 {
        let live = self.slots.iter().filter(|s| s.state() == LIVE).map(|s| s.region.log_read_seq());
        live.chain([self.checkpoint_floor.load(Acquire)]).map(|s| s.min(write_seq)).min().unwrap_or(write_seq)
    }
}

/// See [`Shared::output_mark`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutputMark {
    cycle: u64,
    busy: bool,
}

/// The commands cut out as poisons, by content: a fixed table, written by
/// the supervisor thread, read by any thread (lock-free).
#[derive(Debug)]
pub(crate) struct PoisonList {
    keys: [AtomicU64; POISONS],
    len: AtomicU32,
}

/// Poisons remembered (the oldest are forgotten past that).
const POISONS: usize = 256;

impl Default for PoisonList {
    fn default() -> Self {
        Self { keys: std::array::from_fn(|_| AtomicU64::new(0)), len: AtomicU32::new(0) }
    }
}

impl PoisonList {
    /// Remembers `event` (one writer: the supervisor thread).
    pub fn add(&self, event: &Event) {
        let n = self.len.load(Relaxed);
        self.keys[n as usize % POISONS].store(poison_key(event), Release);
        self.len.store(n + 1, Release);
    }

    /// Whether `event` equals a command cut out as a poison.
    pub fn contains(&self, event: &Event) -> bool {
        let n = (self.len.load(Acquire) as usize).min(POISONS);
        let key = poison_key(event);
        self.keys[..n].iter().any(|k| k.load(Acquire) == key)
    }
}

/// A command's content as a key: address and arguments (FNV-1a).
fn poison_key(e: &Event) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut mix = |x: u64| {
        h ^= x;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    mix(u64::from(e.address));
    mix(u64::from(e.argc));
    for a in &e.args[..usize::from(e.argc).min(e.args.len())] {
        mix(u64::from(*a));
    }
    h | 1
}

/// A frame and the CLOCK_MONOTONIC time it reaches the device's output,
/// written by the output thread, read by any (a seqlock: no tearing, no
/// lock).
#[derive(Debug, Default)]
pub(crate) struct DeviceClock {
    seq: AtomicU64,
    frame: AtomicU64,
    ns: AtomicU64,
}

impl DeviceClock {
    /// Output thread: `frame` reaches the output at `ns`.
    pub fn store(&self, frame: u64, ns: u64) {
        let s = self.seq.load(Relaxed);
        self.seq.store(s + 1, Release);
        std::sync::atomic::fence(SeqCst);
        self.frame.store(frame, Relaxed);
        self.ns.store(ns, Relaxed);
        self.seq.store(s + 2, Release);
    }

    /// The last (frame, ns) stored, if any.
    pub fn load(&self) -> Option<(u64, u64)> {
        loop {
            let s = self.seq.load(Acquire);
            if s == 0 {
                return None;
            }
            if s % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let (frame, ns) = (self.frame.load(Relaxed), self.ns.load(Relaxed));
            std::sync::atomic::fence(SeqCst);
            if self.seq.load(Relaxed) == s {
                return Some((frame, ns));
            }
        }
    }
}
