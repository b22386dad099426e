//! The shared-memory layouts, version [`LAYOUT_VERSION`].
//!
//! Two kinds of region, each a sealed memfd that starts with a
//! [`RegionHeader`]:
//!
//! ```text
//! worker region (one per slot; read-write for the supervisor and its worker)
//!   RegionHeader        written once by the supervisor before spawn
//!   ControlBlock        supervisor → worker requests, worker state, log cursor
//!   Heartbeat           worker progress counters, block checksums
//!   AudioRingHeader     write position (worker) | read position (supervisor)
//!   audio data          audio_frames × 2 × f32 bits, interleaved
//!   SnapshotAreaHeader  a snapshot the worker wrote on request
//!   snapshot data       snapshot_words × u64
//!
//! bus (one per engine; read-write for the supervisor, read-only for workers)
//!   RegionHeader        written once before any worker is spawned
//!   BusControl          render limit, event log write position, excisions
//!   event log           log_slots × EventSlot
//!   checkpoints         checkpoints × (CheckpointHeader + snapshot_words × u64)
//!   excision table      excise_slots × u64 (event numbers never to apply)
//!   DSP configuration   config_bytes of JSON, written once
//! ```
//! Every section starts on a 64-byte boundary. Everything either side may
//! write after spawn is an atomic, so a region can be shared with a peer
//! that misbehaves without undefined behaviour on this side. Workers map the
//! bus read-only, and it is sealed against every write but the supervisor's
//! own mapping (`F_SEAL_FUTURE_WRITE`): no worker can change what another
//! one reads, however it reopens or maps it.

use std::sync::atomic::{AtomicU32, AtomicU64};

use bytemuck::{Pod, Zeroable};

use crate::IpcError;

/// "CHRONUS\x02" in little-endian.
pub const REGION_MAGIC: u64 = u64::from_le_bytes(*b"CHRONUS\x02");
/// Version of these layouts; bump on any change.
pub const LAYOUT_VERSION: u32 = 6;
/// Section alignment.
pub const ALIGN: usize = 64;
/// Longest DSP name a region carries.
pub const DSP_NAME_BYTES: usize = 64;
/// Number of recent block checksums a worker keeps.
pub const CHECKSUMS: usize = 64;
/// 64-bit words of the set of system calls a sandboxed worker was refused
/// (one bit per system call number).
pub const FORBIDDEN_WORDS: usize = chronus_sys::sandbox::FORBIDDEN_WORDS;

/// What kind of region a header starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum RegionKind {
    /// One worker's region.
    Worker = 1,
    /// The engine's bus.
    Bus = 2,
}

/// The first bytes of a region: identity and geometry. Written once before
/// any process that attaches exists; read and checked on attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct RegionHeader {
    /// [`REGION_MAGIC`].
    pub magic: u64,
    /// [`LAYOUT_VERSION`].
    pub version: u32,
    /// `size_of::<RegionHeader>()`.
    pub header_size: u32,
    /// [`RegionKind`] code.
    pub kind: u32,
    /// Padding.
    pub _pad: u32,
    /// The engine run this region belongs to (24 bits; event stamps carry
    /// it, so nothing of another run reads as valid).
    pub epoch: u64,
    /// Worker generation (0 for the bus); a worker started for another
    /// generation refuses the region.
    pub generation: u64,
    /// Size of the whole region in bytes.
    pub total_size: u64,
    /// The geometry everything else is computed from.
    pub geometry: Geometry,
    /// The DSP's name, NUL-padded (the bus's; zero in worker regions).
    pub dsp_name: [u8; DSP_NAME_BYTES],
}

/// What the regions of one engine are sized for; the same in all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Geometry {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Frames per block: workers render exactly this many at a time, on a
    /// fixed grid.
    pub block: u32,
    /// Audio ring capacity in frames (a power of two).
    pub audio_frames: u32,
    /// Event log capacity in slots (a power of two).
    pub log_slots: u32,
    /// Bytes of one DSP snapshot.
    pub snapshot_bytes: u64,
    /// Checkpoint slots in the bus.
    pub checkpoints: u32,
    /// Capacity of the excision table.
    pub excise_slots: u32,
    /// Bytes of the DSP configuration (JSON) in the bus.
    pub config_bytes: u32,
    /// Padding.
    pub _pad: u32,
}

/// Largest snapshot a region carries, in bytes.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

impl Geometry {
    /// 64-bit words of one snapshot.
    pub fn snapshot_words(&self) -> usize {
        (self.snapshot_bytes as usize).div_ceil(8)
    }

    /// Checks the geometry is usable.
    ///
    /// # Errors
    /// [`IpcError::BadGeometry`] naming the problem.
    pub fn validate(&self) -> Result<(), IpcError> {
        let bad = IpcError::BadGeometry;
        if !self.audio_frames.is_power_of_two() || self.audio_frames < 64 || self.audio_frames > 1 << 22 {
            return Err(bad("audio ring capacity must be a power of two in 64..=4M frames"));
        }
        if !self.log_slots.is_power_of_two() || self.log_slots < 16 || self.log_slots > 1 << 22 {
            return Err(bad("event log capacity must be a power of two in 16..=4M slots"));
        }
        if self.block == 0 || self.block > self.audio_frames / 2 {
            return Err(bad("block must be 1..=half the audio ring"));
        }
        if self.sample_rate == 0 {
            return Err(bad("sample rate must be positive"));
        }
        if self.snapshot_bytes > MAX_SNAPSHOT_BYTES {
            return Err(bad("snapshot larger than 1 GiB"));
        }
        if self.checkpoints == 0 || self.checkpoints > 16 || self.excise_slots > 1 << 16 {
            return Err(bad("1..=16 checkpoints and at most 65536 excisions"));
        }
        if self.config_bytes > 1 << 24 {
            return Err(bad("configuration larger than 16 MiB"));
        }
        Ok(())
    }
}

/// Worker lifecycle, in [`ControlBlock::state`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum WorkerState {
    /// Spawned, not yet attached (the kernel's zero).
    New = 0,
    /// Attached, DSP prepared, waiting to be told where to start (a spare).
    Ready = 1,
    /// Rendering.
    Running = 2,
    /// Stopped on request.
    Stopped = 3,
    /// Gave up; see [`ControlBlock::error`].
    Failed = 4,
}

impl WorkerState {
    /// The state with this code.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::New,
            1 => Self::Ready,
            2 => Self::Running,
            3 => Self::Stopped,
            4 => Self::Failed,
            _ => return None,
        })
    }
}

/// How a worker is to start rendering, in [`ControlBlock::start_kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum StartKind {
    /// From a freshly reset DSP at `start_frame`, skipping events before it.
    Fresh = 1,
    /// From checkpoint slot `start_checkpoint` of the bus.
    Checkpoint = 2,
}

/// Why a worker refused a start request, in [`ControlBlock::start_result`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum StartError {
    /// The checkpoint changed while it was read, or its hash is wrong.
    TornCheckpoint = 1,
    /// The DSP refused the snapshot.
    Refused = 2,
    /// The request made no sense (unknown kind, slot out of range).
    BadRequest = 3,
}

/// What a worker's sandbox does with a system call it does not allow
/// (the `sandbox` word of its [`ControlBlock`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SandboxMode {
    /// No sandbox: the worker may make any call (only when an embedder
    /// says so).
    Off = 0,
    /// The call is refused and the worker dies of SIGSYS, the call named in
    /// its region: a fault like a crash.
    #[default]
    Enforce = 1,
    /// The call fails with `EPERM`, is recorded, and the worker goes on
    /// (`chronus check`: every forbidden call a DSP makes, by name).
    Audit = 2,
}

impl SandboxMode {
    /// The mode with this code.
    pub fn from_u32(code: u32) -> Option<Self> {
        [Self::Off, Self::Enforce, Self::Audit].into_iter().find(|m| *m as u32 == code)
    }

    /// `off`, `on` or `audit`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Enforce => "on",
            Self::Audit => "audit",
        }
    }

    /// The mode named `name` ([`SandboxMode::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Off, Self::Enforce, Self::Audit].into_iter().find(|m| m.name() == name)
    }
}

/// Supervisor → worker control, and the worker's reported state.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct ControlBlock {
    /// [`WorkerState`] code, written by the worker.
    pub state: AtomicU32,
    /// The worker's pid, written by the worker on attach.
    pub pid: AtomicU32,
    /// Futex word the worker sleeps on; bumped by whoever wakes it.
    pub wake: AtomicU32,
    /// Non-zero while the worker sleeps on `wake` (so wakers can skip the
    /// syscall when it is busy).
    pub sleeping: AtomicU32,
    /// Set to the stop token of this generation to ask the worker to stop.
    /// A zeroed or stale region can never hold it.
    pub stop: AtomicU32,
    /// Failure code written by the worker before it gives up.
    pub error: AtomicU32,
    /// Non-zero when the supervisor allows fault injection (set before spawn).
    pub faults_enabled: AtomicU32,
    /// A [`crate::FaultKind`] code the worker must inflict on itself (0: none);
    /// honoured only when `faults_enabled`.
    pub fault: AtomicU32,
    /// Incremented by the supervisor to ask the worker to start; the other
    /// `start_*` words say how (written before the increment).
    pub start_req: AtomicU32,
    /// [`StartKind`] code.
    pub start_kind: AtomicU32,
    /// Checkpoint slot for [`StartKind::Checkpoint`].
    pub start_checkpoint: AtomicU32,
    /// Set by the worker to `start_req` once it has started (or refused).
    pub start_done: AtomicU32,
    /// 0, or the [`StartError`] code of the last refused start.
    pub start_result: AtomicU32,
    /// Incremented by the supervisor to ask for a snapshot.
    pub snapshot_req: AtomicU32,
    /// Set by the worker to `snapshot_req` once the snapshot area holds it.
    pub snapshot_done: AtomicU32,
    /// The pid of the process running a poison trial for this worker (a
    /// fork of it; 0: none), written by the worker.
    pub trial_pid: AtomicU32,
    /// Incremented by the supervisor to end the running trial.
    pub trial_end_req: AtomicU32,
    /// The start request id of the last trial whose process is gone (0:
    /// none yet), written by the worker after `trial_exit`.
    pub trial_ended: AtomicU32,
    /// How that process ended (see `WorkerRegion::trial_end`).
    pub trial_exit: AtomicU32,
    /// The worker's sandbox once it is in force (0: none; see
    /// `WorkerRegion::sandbox`), written by the worker.
    pub sandbox: AtomicU32,
    /// First frame for [`StartKind::Fresh`].
    pub start_frame: AtomicU64,
    /// First event number to read for [`StartKind::Fresh`].
    pub start_log_seq: AtomicU64,
    /// The snapshot must be taken at the first block boundary at or after
    /// this frame.
    pub snapshot_frame: AtomicU64,
    /// Next event number the worker will read from the log (written by the
    /// worker after each block; the log writer never overwrites what a live
    /// worker has not read).
    pub log_read_seq: AtomicU64,
    /// Event numbers from this one …
    pub start_skip_from: AtomicU64,
    /// … to this one (exclusive) this worker alone must not apply: a trial
    /// that tells which of several suspects is a poison (empty: none).
    pub start_skip_to: AtomicU64,
    /// The first system call the worker's sandbox refused it, plus one (0:
    /// none), written by the worker's SIGSYS handler: the worker's word
    /// (its death by SIGSYS is the kernel's).
    pub forbidden_call: AtomicU32,
    /// The same for the fork running its poison trial.
    pub trial_forbidden_call: AtomicU32,
    /// The worker's death word: its thread id with the futex waiters bit,
    /// written by the worker and registered as its robust futex list's
    /// one entry; the kernel sets the owner-died bit and wakes the
    /// supervisor as the worker exits, before it unmaps the worker's
    /// memory (see `WorkerRegion::death`). 0: not armed.
    pub death: AtomicU32,
    /// Keeps `forbidden_calls` 8-byte aligned without implicit padding.
    pub _reserved: AtomicU32,
    /// Every system call refused, one bit per number (an auditing sandbox
    /// refuses and goes on: `chronus check`).
    pub forbidden_calls: [AtomicU64; FORBIDDEN_WORDS],
}

/// Worker progress, read by the watchdog.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Heartbeat {
    /// Blocks rendered.
    pub blocks: AtomicU64,
    /// CLOCK_MONOTONIC ns of the last rendered block.
    pub last_progress_ns: AtomicU64,
    /// Render time of the last block, ns.
    pub render_ns_last: AtomicU64,
    /// Longest render time seen, ns.
    pub render_ns_max: AtomicU64,
    /// Events applied.
    pub events_applied: AtomicU64,
    /// Events refused by the DSP or failing slot validation.
    pub events_rejected: AtomicU64,
    /// Events that arrived for frames already rendered.
    pub events_late: AtomicU64,
    /// CLOCK_MONOTONIC ns at which an injected fault was inflicted.
    pub fault_at_ns: AtomicU64,
    /// What the DSP reports sounding after the last block.
    pub active: AtomicU64,
    /// Frame of the block being rendered, plus one (0: none). A worker
    /// that dies or hangs inside a block leaves it here.
    pub rendering: AtomicU64,
    /// Event numbers applied in that block: from this one …
    pub block_events_from: AtomicU64,
    /// … to this one (exclusive). A worker that dies or hangs inside a
    /// block leaves here the events it had been given, the suspects.
    pub block_events_to: AtomicU64,
    /// Grid block number of each checksum slot (`frame / block`, slot
    /// `block % CHECKSUMS`); written after the hash.
    pub checksum_block: [AtomicU64; CHECKSUMS],
    /// FNV-1a hash of the block's sample bits.
    pub checksum_hash: [AtomicU64; CHECKSUMS],
}

/// Positions of the audio ring, each on its own cache line.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct AudioRingHeader {
    /// Frames below this are written (worker, Release).
    pub write_frame: AtomicU64,
    /// Futex word readers wait on; the writer bumps it when a reader waits.
    pub data_seq: AtomicU32,
    /// Non-zero while a reader waits on `data_seq`.
    pub reader_waiting: AtomicU32,
    _pad0: [u64; 6],
    /// Frames below this are consumed (supervisor, Release).
    pub read_frame: AtomicU64,
    _pad1: [u64; 7],
}

/// The header of a snapshot (in a worker's snapshot area, or a checkpoint
/// of the bus).
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct SnapshotHeader {
    /// Seqlock: odd while the data is being written.
    pub seq: AtomicU64,
    /// The frame the snapshot was taken at (a block boundary): the DSP's
    /// state before rendering it.
    pub frame: AtomicU64,
    /// The first event number not yet applied at that frame.
    pub log_seq: AtomicU64,
    /// Bytes of snapshot data.
    pub len: AtomicU64,
    /// [`crate::hash_words`] of the data words.
    pub hash: AtomicU64,
    /// Non-zero once it holds a usable snapshot.
    pub valid: AtomicU32,
    _pad: [u32; 5],
}

/// The engine-wide control words of the bus.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct BusControl {
    /// Workers may render frames below this. The output thread publishes it
    /// (Release) after every event for those frames is in the log.
    pub render_limit: AtomicU64,
    _pad0: [u64; 7],
    /// Events published to the log (the next event number).
    pub write_seq: AtomicU64,
    /// Entries of the excision table in use.
    pub excised: AtomicU32,
    /// Non-zero: workers honour `/test/poison` (set before any spawn).
    pub faults_enabled: AtomicU32,
    _pad1: [u64; 6],
}

/// One event in the log: fixed size, no pointers, no strings. The `stamp`
/// is written last (Release) and ties the slot to one event number of one
/// engine run, so a zeroed, stale or half-written slot never reads as an
/// event.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct EventSlot {
    /// [`crate::event_log::stamp`] of (epoch, event number); written last.
    pub stamp: AtomicU64,
    /// Frame the event applies at.
    pub frame: AtomicU64,
    /// Address index (low 16 bits) and argument count (high 16 bits).
    pub head: AtomicU32,
    /// Arguments.
    pub args: [AtomicU32; chronus_dsp::MAX_ARGS],
    /// Checksum over the stamp and payload.
    pub check: AtomicU32,
    _pad: [u32; 4],
}

pub(crate) fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Byte offsets of a worker region's sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerOffsets {
    /// [`ControlBlock`].
    pub control: usize,
    /// [`Heartbeat`].
    pub heartbeat: usize,
    /// [`AudioRingHeader`].
    pub audio_header: usize,
    /// Audio samples.
    pub audio_data: usize,
    /// [`SnapshotHeader`] of the snapshot area.
    pub snapshot_header: usize,
    /// Snapshot words.
    pub snapshot_data: usize,
    /// Total size.
    pub total: usize,
}

/// Byte offsets of the bus's sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusOffsets {
    /// [`BusControl`].
    pub control: usize,
    /// Event slots.
    pub log: usize,
    /// First checkpoint (header, then data); checkpoints are `checkpoint_stride` apart.
    pub checkpoints: usize,
    /// Bytes from one checkpoint to the next.
    pub checkpoint_stride: usize,
    /// Excision table.
    pub excisions: usize,
    /// Configuration bytes.
    pub config: usize,
    /// Total size.
    pub total: usize,
}

struct Placer(usize);

impl Placer {
    fn new() -> Self {
        Self(align_up(size_of::<RegionHeader>()))
    }
    fn place(&mut self, size: usize) -> usize {
        let at = self.0;
        self.0 = align_up(at + size);
        at
    }
}

impl Geometry {
    /// The layout of a worker region.
    pub fn worker_layout(&self) -> WorkerOffsets {
        let mut p = Placer::new();
        let control = p.place(size_of::<ControlBlock>());
        let heartbeat = p.place(size_of::<Heartbeat>());
        let audio_header = p.place(size_of::<AudioRingHeader>());
        let audio_data = p.place(self.audio_frames as usize * 2 * 4);
        let snapshot_header = p.place(size_of::<SnapshotHeader>());
        let snapshot_data = p.place(self.snapshot_words() * 8);
        WorkerOffsets {
            control,
            heartbeat,
            audio_header,
            audio_data,
            snapshot_header,
            snapshot_data,
            total: p.0,
        }
    }

    /// The layout of the bus.
    pub fn bus_layout(&self) -> BusOffsets {
        let mut p = Placer::new();
        let control = p.place(size_of::<BusControl>());
        let log = p.place(self.log_slots as usize * size_of::<EventSlot>());
        let checkpoint_stride = align_up(size_of::<SnapshotHeader>()) + align_up(self.snapshot_words() * 8);
        let checkpoints = p.place(checkpoint_stride * self.checkpoints as usize);
        let excisions = p.place(self.excise_slots as usize * 8);
        let config = p.place(self.config_bytes as usize);
        BusOffsets { control, log, checkpoints, checkpoint_stride, excisions, config, total: p.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry() -> Geometry {
        Geometry {
            sample_rate: 48_000,
            block: 256,
            audio_frames: 4_096,
            log_slots: 1_024,
            snapshot_bytes: 12_345,
            checkpoints: 2,
            excise_slots: 64,
            config_bytes: 17,
            _pad: 0,
        }
    }

    #[test]
    fn sections_are_aligned_and_do_not_overlap() {
        let g = geometry();
        g.validate().unwrap();
        let w = g.worker_layout();
        let starts =
            [w.control, w.heartbeat, w.audio_header, w.audio_data, w.snapshot_header, w.snapshot_data];
        assert!(starts.windows(2).all(|s| s[0] < s[1]));
        assert!(starts.iter().all(|s| s % ALIGN == 0));
        assert!(w.audio_data + 4_096 * 8 <= w.snapshot_header);
        assert!(w.snapshot_data + 12_345 <= w.total);
        let b = g.bus_layout();
        let starts = [b.control, b.log, b.checkpoints, b.excisions, b.config];
        assert!(starts.windows(2).all(|s| s[0] < s[1]));
        assert!(starts.iter().all(|s| s % ALIGN == 0));
        assert!(b.checkpoints + 2 * b.checkpoint_stride <= b.excisions);
        assert!(b.config + 17 <= b.total);
        assert_eq!(size_of::<EventSlot>(), 64);
    }

    #[test]
    fn bad_geometry_is_refused() {
        let good = geometry();
        for bad in [
            Geometry { audio_frames: 1_000, ..good },
            Geometry { log_slots: 0, ..good },
            Geometry { block: 4_096, ..good },
            Geometry { checkpoints: 0, ..good },
            Geometry { snapshot_bytes: 1 << 40, ..good },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
