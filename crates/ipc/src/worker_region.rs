//! One worker's region: control words, heartbeat, audio ring, snapshot
//! area. Read-write for the supervisor and its worker.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use crate::IpcError;
use crate::layout::{
    AudioRingHeader, CHECKSUMS, ControlBlock, DSP_NAME_BYTES, Geometry, Heartbeat, LAYOUT_VERSION,
    REGION_MAGIC, RegionHeader, RegionKind, SandboxMode, SnapshotHeader, StartError, StartKind,
    WorkerOffsets, WorkerState,
};
use crate::mapping::Mapping;
use crate::protocol::{self, StdFences};

/// The value of `ControlBlock::stop` that asks a worker of `generation` to
/// stop. Never 0, so a zeroed region never reads as a stop request, and
/// different for neighbouring generations, so a stale one does not either.
pub fn stop_token(generation: u64) -> u32 {
    (crate::event_log::mix(generation ^ 0x5354_4f50) as u32) | 1
}

/// A start request, as the worker reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartRequest {
    /// Request id, to acknowledge.
    pub id: u32,
    /// How to start.
    pub kind: Option<StartKind>,
    /// First frame (fresh start).
    pub frame: u64,
    /// First event number (fresh start).
    pub log_seq: u64,
    /// Checkpoint slot (checkpoint start).
    pub checkpoint: u32,
    /// Event numbers from `skip_from` to `skip_to` (exclusive) this worker
    /// alone must not apply (a poison trial; empty: none).
    pub skip_from: u64,
    /// See `skip_from`.
    pub skip_to: u64,
}

impl StartRequest {
    /// Whether it starts a poison trial (some events are skipped).
    pub fn is_trial(&self) -> bool {
        self.skip_from < self.skip_to
    }
}

/// How a poison trial's process ended (see [`WorkerRegion::trial_end`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrialExit {
    /// The start request it ran.
    pub start_id: u32,
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Its worker ended it, as asked (a stop, another start, an end
    /// request): not an outcome of the trial.
    pub on_request: bool,
}

const EXITED: u32 = 1 << 16;
const SIGNALED: u32 = 1 << 17;
const ON_REQUEST: u32 = 1 << 18;

/// Whose forbidden system calls [`WorkerRegion::record_forbidden_calls`]
/// records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorder {
    /// The worker (a replica or a spare).
    Worker,
    /// The fork running its poison trial.
    Trial,
}

/// One mapped worker region.
#[derive(Debug)]
pub struct WorkerRegion {
    map: Mapping,
    offsets: WorkerOffsets,
    /// The current generation (changes on [`WorkerRegion::reset`]).
    generation: AtomicU64,
}

impl WorkerRegion {
    /// Creates a zeroed region for `geometry`, engine run `epoch` and worker
    /// `generation`.
    ///
    /// # Errors
    /// [`IpcError::BadGeometry`] or [`IpcError::Os`] from memfd/mmap.
    pub fn create(geometry: Geometry, epoch: u64, generation: u64) -> Result<Self, IpcError> {
        geometry.validate()?;
        let offsets = geometry.worker_layout();
        let header = RegionHeader {
            magic: REGION_MAGIC,
            version: LAYOUT_VERSION,
            header_size: size_of::<RegionHeader>() as u32,
            kind: RegionKind::Worker as u32,
            _pad: 0,
            epoch,
            generation,
            total_size: offsets.total as u64,
            geometry,
            dsp_name: [0; DSP_NAME_BYTES],
        };
        let map = Mapping::create("chronus-worker", header, 0, &[], false)?;
        Ok(Self { map, offsets, generation: AtomicU64::new(generation) })
    }

    /// Maps a region received from the supervisor and checks it: magic,
    /// layout version, kind, `epoch`, `generation`, geometry, size, seal.
    ///
    /// # Errors
    /// [`IpcError`] naming the first check that failed.
    pub fn attach(fd: OwnedFd, epoch: u64, generation: u64) -> Result<Self, IpcError> {
        let map = Mapping::attach(fd, RegionKind::Worker, epoch, generation, true)?;
        let offsets = map.header.geometry.worker_layout();
        if offsets.total as u64 != map.header.total_size {
            return Err(IpcError::BufCorrupt("region size does not match its geometry"));
        }
        // All of it is the render loop's: the control block, the ring it
        // writes every block, the snapshot it writes at each checkpoint.
        map.prefault(0, offsets.total);
        Ok(Self { map, offsets, generation: AtomicU64::new(generation) })
    }

    /// The geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.map.header.geometry
    }

    /// The engine run.
    pub fn epoch(&self) -> u64 {
        self.map.header.epoch
    }

    /// The worker generation this region belongs to.
    pub fn generation(&self) -> u64 {
        self.generation.load(Acquire)
    }

    /// The memfd, to hand to a child process.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.map.fd()
    }

    /// Makes the region new for worker `generation`: every section zeroed,
    /// the header's generation replaced. For reusing a region after its
    /// worker died and was reaped; a worker still attached would see its
    /// state vanish (and its stop token stop matching).
    pub fn reset(&self, generation: u64) {
        let start = self.offsets.control;
        let words = (self.offsets.total - start) / 8;
        for w in self.map.slice::<AtomicU64>(start, words) {
            w.store(0, Relaxed);
        }
        const AT: usize = std::mem::offset_of!(RegionHeader, generation);
        const _: () = assert!(AT.is_multiple_of(8));
        self.map.at::<AtomicU64>(AT).store(generation, Release);
        self.generation.store(generation, Release);
    }

    /// The control block.
    pub fn control(&self) -> &ControlBlock {
        self.map.at(self.offsets.control)
    }

    /// The heartbeat counters.
    pub fn heartbeat(&self) -> &Heartbeat {
        self.map.at(self.offsets.heartbeat)
    }

    pub(crate) fn audio_header(&self) -> &AudioRingHeader {
        self.map.at(self.offsets.audio_header)
    }

    pub(crate) fn audio_data(&self) -> &[AtomicU32] {
        self.map.slice(self.offsets.audio_data, self.geometry().audio_frames as usize * 2)
    }

    pub(crate) fn snapshot_header(&self) -> &SnapshotHeader {
        self.map.at(self.offsets.snapshot_header)
    }

    pub(crate) fn snapshot_data(&self) -> &[AtomicU64] {
        self.map.slice(self.offsets.snapshot_data, self.geometry().snapshot_words())
    }
}

/// Stopping, waking, state.
impl WorkerRegion {
    /// Asks the worker to stop (it finishes its block and exits 0).
    pub fn request_stop(&self) {
        self.control().stop.store(stop_token(self.generation()), Release);
        self.control().wake.fetch_add(1, Release);
        chronus_sys::futex::futex_wake(&self.control().wake, 1);
    }

    /// Whether a stop was requested for this region's generation.
    pub fn stop_requested(&self) -> bool {
        self.control().stop.load(Acquire) == stop_token(self.generation())
    }

    /// Wakes the worker if it sleeps; a no-op (no syscall) otherwise. Call
    /// it after publishing what the worker waits for.
    pub fn wake_worker(&self) {
        let c = self.control();
        protocol::wake_if_sleeping::<StdFences, _>(&c.wake, &c.sleeping, || {
            chronus_sys::futex::futex_wake(&c.wake, 1);
        });
    }

    /// Worker side: sleeps until woken or `timeout`, unless `ready()` turns
    /// true after announcing the sleep, so a wake-up cannot be lost
    /// ([`protocol::sleep_unless`], model-checked in `tests/protocols.rs`).
    pub fn worker_sleep(&self, timeout: Duration, ready: impl FnOnce() -> bool) {
        let c = self.control();
        protocol::sleep_unless::<StdFences, _>(&c.wake, &c.sleeping, ready, |seen| {
            chronus_sys::futex::futex_wait(&c.wake, seen, timeout);
        });
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

/// Starting, snapshots, faults, checksums, the log cursor.
impl WorkerRegion {
    /// Supervisor: asks a ready worker to start rendering at frame `frame`,
    /// from a reset DSP reading events from `log_seq` on
    /// ([`StartKind::Fresh`]), or from checkpoint slot `checkpoint` of the
    /// bus ([`StartKind::Checkpoint`], whose frame `frame` must be). The
    /// audio ring starts at `frame`. Returns the request id.
    pub fn request_start(&self, kind: StartKind, frame: u64, log_seq: u64, checkpoint: u32) -> u32 {
        self.request_trial_start(kind, frame, log_seq, checkpoint, 0..0)
    }

    /// Supervisor: as [`WorkerRegion::request_start`], and the worker must
    /// not apply the events numbered `skip` (a trial run that tells which
    /// of several suspects is a poison).
    pub fn request_trial_start(
        &self,
        kind: StartKind,
        frame: u64,
        log_seq: u64,
        checkpoint: u32,
        skip: std::ops::Range<u64>,
    ) -> u32 {
        let h = self.audio_header();
        h.write_frame.store(frame, Release);
        h.read_frame.store(frame, Release);
        let c = self.control();
        c.start_kind.store(kind as u32, Relaxed);
        c.start_frame.store(frame, Relaxed);
        c.start_log_seq.store(log_seq, Relaxed);
        c.start_checkpoint.store(checkpoint, Relaxed);
        c.start_skip_from.store(skip.start, Relaxed);
        c.start_skip_to.store(skip.end, Relaxed);
        let id = c.start_req.fetch_add(1, SeqCst).wrapping_add(1);
        self.wake_worker();
        id
    }

    /// Worker: the pending start request, if any.
    pub fn pending_start(&self) -> Option<StartRequest> {
        let c = self.control();
        let id = c.start_req.load(SeqCst);
        (id != c.start_done.load(Relaxed)).then(|| StartRequest {
            id,
            kind: match c.start_kind.load(Relaxed) {
                1 => Some(StartKind::Fresh),
                2 => Some(StartKind::Checkpoint),
                _ => None,
            },
            frame: c.start_frame.load(Relaxed),
            log_seq: c.start_log_seq.load(Relaxed),
            checkpoint: c.start_checkpoint.load(Relaxed),
            skip_from: c.start_skip_from.load(Relaxed),
            skip_to: c.start_skip_to.load(Relaxed),
        })
    }

    /// Worker: start request `id` is done (started, or refused with `error`).
    pub fn start_finished(&self, id: u32, error: Option<StartError>) {
        let c = self.control();
        c.start_result.store(error.map_or(0, |e| e as u32), Relaxed);
        c.start_done.store(id, Release);
    }

    /// Supervisor: the outcome of start request `id`, once the worker has
    /// acted on it (`Err` with the worker's reason code when it refused).
    pub fn start_outcome(&self, id: u32) -> Option<Result<(), u32>> {
        let c = self.control();
        (c.start_done.load(Acquire) == id).then(|| match c.start_result.load(Relaxed) {
            0 => Ok(()),
            code => Err(code),
        })
    }

    /// Supervisor: asks for a snapshot at the first block boundary at or
    /// after `frame`; returns the request id to wait for.
    pub fn request_snapshot(&self, frame: u64) -> u32 {
        let c = self.control();
        c.snapshot_frame.store(frame, Release);
        let id = c.snapshot_req.fetch_add(1, SeqCst).wrapping_add(1);
        self.wake_worker();
        id
    }

    /// Supervisor: whether snapshot request `id` is done.
    pub fn snapshot_done(&self, id: u32) -> bool {
        self.control().snapshot_done.load(Acquire) == id
    }

    /// Worker: the pending snapshot request (id, frame), if any.
    pub fn pending_snapshot(&self) -> Option<(u32, u64)> {
        let c = self.control();
        let id = c.snapshot_req.load(SeqCst);
        (id != c.snapshot_done.load(Relaxed)).then(|| (id, c.snapshot_frame.load(Acquire)))
    }

    /// Worker: marks snapshot request `id` done (after writing the area).
    pub fn snapshot_written(&self, id: u32) {
        self.control().snapshot_done.store(id, Release);
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
        let i = (block % CHECKSUMS as u64) as usize;
        hb.checksum_hash[i].store(hash, Relaxed);
        hb.checksum_block[i].store(block, Release);
    }

    /// Worker: the process running its poison trial is `pid` (0: none).
    pub fn set_trial_pid(&self, pid: u32) {
        self.control().trial_pid.store(pid, Release);
    }

    /// Worker: how many times the supervisor asked to end a trial (compare
    /// with the count when the trial began).
    pub fn trial_end_requests(&self) -> u32 {
        self.control().trial_end_req.load(Acquire)
    }

    /// Worker: the trial process of start request `start_id` is gone (and
    /// reaped): it exited with `code`, or `signal` ended it; `on_request`
    /// if the worker ended it as asked.
    pub fn trial_ended(&self, start_id: u32, code: Option<i32>, signal: Option<i32>, on_request: bool) {
        let c = self.control();
        let exit = match (code, signal) {
            (_, Some(s)) => SIGNALED | (s as u32 & 0xff) << 8,
            (Some(code), None) => EXITED | (code as u32 & 0xff),
            (None, None) => 0,
        } | if on_request { ON_REQUEST } else { 0 };
        c.trial_exit.store(exit, Relaxed);
        c.trial_pid.store(0, Relaxed);
        c.trial_ended.store(start_id, Release);
    }

    /// Supervisor: asks the worker to end its running poison trial.
    pub fn request_trial_end(&self) {
        self.control().trial_end_req.fetch_add(1, SeqCst);
        self.wake_worker();
    }

    /// Supervisor: the last poison trial whose process is gone, if any.
    pub fn trial_end(&self) -> Option<TrialExit> {
        let c = self.control();
        let start_id = c.trial_ended.load(Acquire);
        let exit = c.trial_exit.load(Relaxed);
        (start_id != 0).then(|| TrialExit {
            start_id,
            code: (exit & EXITED != 0).then_some((exit & 0xff) as i32),
            signal: (exit & SIGNALED != 0).then_some(((exit >> 8) & 0xff) as i32),
            on_request: exit & ON_REQUEST != 0,
        })
    }

    /// Worker: installs the SIGSYS handler its sandbox reports through
    /// (refused calls kill the process with SIGSYS, or with `audit` fail
    /// with `EPERM`), recording them in this region for `who`. The region
    /// must live as long as the process (a worker's does: `'static`). Call
    /// before the sandbox's filter is in force; a trial's fork calls it
    /// again to record as itself.
    ///
    /// # Errors
    /// The OS error of `sigaction`.
    pub fn record_forbidden_calls(&'static self, who: Recorder, audit: bool) -> std::io::Result<()> {
        let c = self.control();
        let first = match who {
            Recorder::Worker => &c.forbidden_call,
            Recorder::Trial => &c.trial_forbidden_call,
        };
        chronus_sys::sandbox::report_forbidden_calls(first, &c.forbidden_calls, audit)
    }

    /// Worker: its sandbox is in force, in `mode` (before it serves any
    /// start request).
    pub fn set_sandbox(&self, mode: SandboxMode) {
        self.control().sandbox.store(mode as u32, Release);
    }

    /// The worker's sandbox, as it reported it (`Off` until it is in
    /// force; a worker's word).
    pub fn sandbox(&self) -> SandboxMode {
        SandboxMode::from_u32(self.control().sandbox.load(Acquire)).unwrap_or_default()
    }

    /// The first system call the worker's sandbox refused it (its number),
    /// or its trial's fork's, as their SIGSYS handler recorded it: the
    /// process's word (its death by SIGSYS is the kernel's).
    pub fn forbidden_call(&self, who: Recorder) -> Option<u32> {
        let c = self.control();
        let first = match who {
            Recorder::Worker => &c.forbidden_call,
            Recorder::Trial => &c.trial_forbidden_call,
        };
        first.load(Acquire).checked_sub(1)
    }

    /// Every system call number the sandbox refused this region's
    /// processes, ascending.
    pub fn forbidden_calls(&self) -> Vec<u32> {
        let words = &self.control().forbidden_calls;
        (0..words.len() as u32 * 64)
            .filter(|&nr| words[(nr / 64) as usize].load(Acquire) & (1 << (nr % 64)) != 0)
            .collect()
    }

    /// Worker: forgets every checksum published (a worker told to start
    /// again renders the same blocks anew). Call before the start is
    /// reported done ([`WorkerRegion::start_finished`]).
    pub fn clear_checksums(&self) {
        for block in &self.heartbeat().checksum_block {
            block.store(u64::MAX, Relaxed);
        }
    }

    /// Supervisor: the checksum of grid block `block`, if still held.
    pub fn checksum(&self, block: u64) -> Option<u64> {
        let hb = self.heartbeat();
        let i = (block % CHECKSUMS as u64) as usize;
        if hb.checksum_block[i].load(Acquire) != block {
            return None;
        }
        let hash = hb.checksum_hash[i].load(Acquire);
        // A newer block may have replaced it while reading.
        (hb.checksum_block[i].load(Acquire) == block).then_some(hash)
    }

    /// Worker: publishes the next event number it will read.
    pub fn set_log_read_seq(&self, seq: u64) {
        self.control().log_read_seq.store(seq, Release);
    }

    /// The next event number the worker will read.
    pub fn log_read_seq(&self) -> u64 {
        self.control().log_read_seq.load(Acquire)
    }
}
