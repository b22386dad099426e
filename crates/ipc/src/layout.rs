//! The shared-memory layout of one worker region, version [`LAYOUT_VERSION`].
//!
//! ```text
//! offset 0      RegionHeader   written once by the supervisor before spawn
//!               ControlBlock   supervisor → worker control, worker state
//!               Heartbeat      worker progress counters (watchdog input)
//!               AudioRingHeader write position (worker) | read position (supervisor)
//!               audio data     capacity × channels f32 bits, interleaved
//!               CommandRingHeader
//!               command slots  capacity × CommandSlot
//!               snapshot       SnapshotHeader + VoiceChunks + VoiceControls
//! ```
//! Every section starts on a 64-byte boundary. Everything either side may
//! write after spawn is an atomic, so the region can be shared with a peer
//! that misbehaves without undefined behaviour on this side.

use std::sync::atomic::{AtomicU32, AtomicU64};

use bytemuck::{Pod, Zeroable};
use chronus_dsp::{LANES, SnapshotHeader, VoiceChunk, VoiceControl};

use crate::IpcError;

/// "CHRONUS\x01" in little-endian.
pub const REGION_MAGIC: u64 = u64::from_le_bytes(*b"CHRONUS\x01");
/// Version of this layout; bump on any change.
pub const LAYOUT_VERSION: u32 = 1;
/// Section alignment.
pub const ALIGN: usize = 64;

/// The first bytes of a region: identity and geometry. Written once before
/// the worker is spawned; read and checked on attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct RegionHeader {
    /// [`REGION_MAGIC`].
    pub magic: u64,
    /// [`LAYOUT_VERSION`].
    pub version: u32,
    /// `size_of::<RegionHeader>()`.
    pub header_size: u32,
    /// Worker generation (epoch); a worker started for another generation
    /// refuses the region.
    pub generation: u64,
    /// Size of the whole region in bytes.
    pub total_size: u64,
    /// The geometry everything else is computed from.
    pub geometry: Geometry,
    /// Section offsets, recomputed and compared on attach.
    pub offsets: Offsets,
}

/// What a region is sized for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Geometry {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Audio channels (2).
    pub channels: u32,
    /// Audio ring capacity in frames (a power of two).
    pub audio_frames: u32,
    /// Command ring capacity in slots (a power of two).
    pub command_slots: u32,
    /// Largest block the worker renders at once, in frames.
    pub max_block: u32,
    /// Voices of the synth (sizes the snapshot area).
    pub voices: u32,
}

/// Byte offsets of the sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Offsets {
    /// [`ControlBlock`].
    pub control: u64,
    /// [`Heartbeat`].
    pub heartbeat: u64,
    /// [`AudioRingHeader`].
    pub audio_header: u64,
    /// Audio samples.
    pub audio_data: u64,
    /// [`CommandRingHeader`].
    pub command_header: u64,
    /// Command slots.
    pub command_slots: u64,
    /// Snapshot area.
    pub snapshot: u64,
    /// Size of the snapshot area.
    pub snapshot_size: u64,
}

/// Worker lifecycle, in [`ControlBlock::state`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum WorkerState {
    /// Spawned, not yet attached (the kernel's zero).
    New = 0,
    /// Attached, memory prepared, waiting to render.
    Ready = 1,
    /// Stopped on request.
    Stopped = 2,
    /// Gave up; see [`ControlBlock::error`].
    Failed = 3,
}

impl WorkerState {
    /// The state with this code.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::New,
            1 => Self::Ready,
            2 => Self::Stopped,
            3 => Self::Failed,
            _ => return None,
        })
    }
}

/// Supervisor → worker control and the worker's reported state.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct ControlBlock {
    /// [`WorkerState`] code, written by the worker.
    pub state: AtomicU32,
    /// The worker's pid, written by the worker on attach.
    pub pid: AtomicU32,
    /// Futex word the worker sleeps on; the supervisor bumps it after moving
    /// `render_limit`, publishing commands or requesting a stop.
    pub wake: AtomicU32,
    /// Set to the stop token of this generation to ask the worker to stop.
    /// A zeroed or stale region can never hold it.
    pub stop: AtomicU32,
    /// The worker may render frames below this. The supervisor publishes it
    /// (Release) after every command for those frames is in the ring.
    pub render_limit: AtomicU64,
    /// Failure code written by the worker before it gives up.
    pub error: AtomicU32,
    /// Non-zero when the supervisor allows fault injection (set before spawn).
    pub faults_enabled: AtomicU32,
    /// A [`crate::FaultKind`] code the worker must inflict on itself (0: none);
    /// honoured only when `faults_enabled`.
    pub fault: AtomicU32,
    /// Non-zero: the worker joins a running engine and must wait for a
    /// snapshot before rendering (set before spawn).
    pub join: AtomicU32,
    /// Set by the supervisor once the snapshot area holds the state to start
    /// from.
    pub restore_ready: AtomicU32,
    /// Incremented by the supervisor to ask for a snapshot.
    pub snapshot_req_id: AtomicU32,
    /// Set by the worker to `snapshot_req_id` once the snapshot is written.
    pub snapshot_done_id: AtomicU32,
    /// The snapshot must be taken at the first block boundary at or after
    /// this frame.
    pub snapshot_req_frame: AtomicU64,
    /// Non-zero while the worker sleeps on `wake` (so wakers can skip the
    /// syscall when it is busy).
    pub sleeping: AtomicU32,
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
    /// Commands applied.
    pub commands_applied: AtomicU64,
    /// Commands refused by the synth or failing slot validation.
    pub commands_rejected: AtomicU64,
    /// Commands that arrived for frames already rendered.
    pub commands_late: AtomicU64,
    /// CLOCK_MONOTONIC ns at which an injected fault was inflicted.
    pub fault_at_ns: AtomicU64,
    /// Voices sounding after the last block.
    pub voices_in_use: AtomicU64,
    /// Grid block number of each checksum slot (`block / max_block`, slot
    /// `block % CHECKSUMS`); written after the hash.
    pub checksum_block: [AtomicU64; CHECKSUMS],
    /// FNV-1a hash of the block's sample bits.
    pub checksum_hash: [AtomicU64; CHECKSUMS],
}

/// Number of recent block checksums a worker keeps.
pub const CHECKSUMS: usize = 64;

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

/// Positions of the command ring, each on its own cache line.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct CommandRingHeader {
    /// Slots published (supervisor).
    pub write_seq: AtomicU64,
    _pad0: [u64; 7],
    /// Slots consumed (worker).
    pub read_seq: AtomicU64,
    _pad1: [u64; 7],
}

/// One command on the wire: fixed size, no pointers, no strings. The `stamp`
/// is written last (Release) and ties the slot to one sequence number of one
/// generation, so a zeroed, stale or half-written slot never reads as a
/// command.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct CommandSlot {
    /// [`crate::command_ring::stamp`] of (generation, sequence); written last.
    pub stamp: AtomicU64,
    /// Frame the command applies at.
    pub frame: AtomicU64,
    /// Command kind (low 8 bits) and parameter id (bits 8..24).
    pub op: AtomicU32,
    /// Voice id.
    pub voice: AtomicU32,
    /// First value, `f32` bits.
    pub a: AtomicU32,
    /// Second value, `f32` bits.
    pub b: AtomicU32,
    /// Checksum over the stamp and payload.
    pub check: AtomicU32,
    _pad: [u32; 7],
}

fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Bytes of the snapshot area for `voices` voices.
pub fn snapshot_size(voices: u32) -> usize {
    let chunks = (voices as usize).div_ceil(LANES);
    align_up(size_of::<SnapshotHeader>())
        + chunks * size_of::<VoiceChunk>()
        + chunks * LANES * size_of::<VoiceControl>()
}

impl Geometry {
    /// Checks the geometry is usable.
    ///
    /// # Errors
    /// [`IpcError::BadGeometry`] naming the problem.
    pub fn validate(&self) -> Result<(), IpcError> {
        let bad = IpcError::BadGeometry;
        if self.channels != 2 {
            return Err(bad("channels must be 2"));
        }
        if !self.audio_frames.is_power_of_two() || self.audio_frames < 64 || self.audio_frames > 1 << 22 {
            return Err(bad("audio ring capacity must be a power of two in 64..=4M frames"));
        }
        if !self.command_slots.is_power_of_two() || self.command_slots < 16 || self.command_slots > 1 << 20 {
            return Err(bad("command ring capacity must be a power of two in 16..=1M slots"));
        }
        if self.max_block == 0 || self.max_block > self.audio_frames {
            return Err(bad("max block must be 1..=audio ring capacity"));
        }
        if self.voices == 0 || self.voices > chronus_dsp::MAX_VOICES {
            return Err(bad("voices must be 1..=4096"));
        }
        if self.sample_rate == 0 {
            return Err(bad("sample rate must be positive"));
        }
        Ok(())
    }

    /// Section offsets and the total size for this geometry.
    pub fn layout(&self) -> (Offsets, u64) {
        let mut at = align_up(size_of::<RegionHeader>());
        let mut place = |size: usize| {
            let o = at;
            at = align_up(at + size);
            o as u64
        };
        let control = place(size_of::<ControlBlock>());
        let heartbeat = place(size_of::<Heartbeat>());
        let audio_header = place(size_of::<AudioRingHeader>());
        let audio_data = place(self.audio_frames as usize * self.channels as usize * 4);
        let command_header = place(size_of::<CommandRingHeader>());
        let command_slots = place(self.command_slots as usize * size_of::<CommandSlot>());
        let snap = snapshot_size(self.voices);
        let snapshot = place(snap);
        let offsets = Offsets {
            control,
            heartbeat,
            audio_header,
            audio_data,
            command_header,
            command_slots,
            snapshot,
            snapshot_size: snap as u64,
        };
        (offsets, at as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_aligned_and_do_not_overlap() {
        let g = Geometry {
            sample_rate: 48_000,
            channels: 2,
            audio_frames: 4_096,
            command_slots: 1_024,
            max_block: 256,
            voices: 64,
        };
        g.validate().unwrap();
        let (o, total) = g.layout();
        let starts = [
            o.control,
            o.heartbeat,
            o.audio_header,
            o.audio_data,
            o.command_header,
            o.command_slots,
            o.snapshot,
        ];
        assert!(starts.windows(2).all(|w| w[0] < w[1]));
        assert!(starts.iter().all(|s| s % ALIGN as u64 == 0));
        assert!(o.audio_data + 4_096 * 2 * 4 <= o.command_header);
        assert!(o.snapshot + o.snapshot_size <= total);
        assert_eq!(size_of::<CommandSlot>(), 64);
    }

    #[test]
    fn bad_geometry_is_refused() {
        let good = Geometry {
            sample_rate: 48_000,
            channels: 2,
            audio_frames: 1_024,
            command_slots: 64,
            max_block: 256,
            voices: 8,
        };
        for bad in [
            Geometry { audio_frames: 1_000, ..good },
            Geometry { command_slots: 0, ..good },
            Geometry { max_block: 4_096, ..good },
            Geometry { voices: 0, ..good },
            Geometry { channels: 1, ..good },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
