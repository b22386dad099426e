//! Snapshots in shared memory: a worker writes its DSP's state into its
//! region's snapshot area on request; the supervisor copies it into a
//! checkpoint slot of the bus; a worker starting from a checkpoint copies
//! it out. Every copy is a seqlock-guarded, hashed word copy, so a torn or
//! corrupt snapshot is detected, never restored.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use crate::layout::{SnapshotHeader, StartError};
use crate::protocol::{StdFences, seqlock_read, seqlock_write};
use crate::{Bus, IpcError, WorkerRegion};

/// FNV-1a over 64-bit words, starting from [`HASH_SEED`].
pub fn hash_words(hash: u64, words: impl IntoIterator<Item = u64>) -> u64 {
    words.into_iter().fold(hash, |h, w| (h ^ w).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Start value of [`hash_words`] (and of block checksums).
pub const HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over the bits of interleaved samples, continuing from `hash`
/// (start from [`HASH_SEED`]).
pub fn checksum_samples(hash: u64, left: &[f32], right: &[f32]) -> u64 {
    left.iter().zip(right).fold(hash, |h, (l, r)| {
        let h = (h ^ u64::from(l.to_bits())).wrapping_mul(0x0000_0100_0000_01b3);
        (h ^ u64::from(r.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The 64-bit little-endian word `i` of `bytes`, zero-padded.
fn word(bytes: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    let from = (i * 8).min(bytes.len());
    let to = (i * 8 + 8).min(bytes.len());
    w[..to - from].copy_from_slice(&bytes[from..to]);
    u64::from_le_bytes(w)
}

/// Where and what a snapshot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The frame it was taken at (the DSP's state before rendering it).
    pub frame: u64,
    /// The first event number not applied at that frame.
    pub log_seq: u64,
    /// Bytes of data.
    pub len: u64,
    /// [`hash_words`] of the data words.
    pub hash: u64,
}

/// The header's description, stored last inside a seqlock write.
fn store_info(header: &SnapshotHeader, info: SnapshotInfo) {
    header.frame.store(info.frame, Relaxed);
    header.log_seq.store(info.log_seq, Relaxed);
    header.len.store(info.len, Relaxed);
    header.hash.store(info.hash, Relaxed);
    header.valid.store(1, Relaxed);
}

/// The header's description, if valid; only meaningful inside a seqlock
/// read, which discards it if a write ran meanwhile.
fn load_info(header: &SnapshotHeader) -> Option<SnapshotInfo> {
    (header.valid.load(Relaxed) != 0).then(|| SnapshotInfo {
        frame: header.frame.load(Relaxed),
        log_seq: header.log_seq.load(Relaxed),
        len: header.len.load(Relaxed),
        hash: header.hash.load(Relaxed),
    })
}

fn write(
    header: &SnapshotHeader,
    data: &[AtomicU64],
    info: SnapshotInfo,
    mut words: impl FnMut(usize) -> u64,
) {
    seqlock_write::<StdFences, _, _>(&header.seq, || {
        header.valid.store(0, Relaxed);
        for (i, d) in data.iter().enumerate() {
            d.store(words(i), Relaxed);
        }
        store_info(header, info);
    });
}

/// What a snapshot header describes, read whole (`None` if invalid or
/// being written).
fn info_of(header: &SnapshotHeader) -> Option<SnapshotInfo> {
    seqlock_read::<StdFences, _, _>(&header.seq, || load_info(header)).flatten()
}

/// Reads `data` into `out` (via `each(i, word)`) under the header's
/// seqlock and checks the hash: `None` if anything changed or does not
/// match. `each` may see a torn copy before that verdict.
fn read(
    header: &SnapshotHeader,
    data: &[AtomicU64],
    mut each: impl FnMut(usize, u64),
) -> Option<SnapshotInfo> {
    seqlock_read::<StdFences, _, _>(&header.seq, || {
        let info = load_info(header)?;
        let words = (info.len as usize).div_ceil(8);
        let data = data.get(..words)?;
        let mut hash = HASH_SEED;
        for (i, d) in data.iter().enumerate() {
            let w = d.load(Relaxed);
            hash = hash_words(hash, [w]);
            each(i, w);
        }
        (hash == info.hash).then_some(info)
    })
    .flatten()
}

impl WorkerRegion {
    /// Worker: writes `bytes` (its DSP's snapshot, taken at `frame` with
    /// `log_seq` the first event not yet applied) into the snapshot area.
    /// Never allocates.
    ///
    /// # Errors
    /// [`IpcError::BufTooSmall`] if the area cannot hold it.
    pub fn write_snapshot(&self, frame: u64, log_seq: u64, bytes: &[u8]) -> Result<SnapshotInfo, IpcError> {
        let data = self.snapshot_data();
        let words = bytes.len().div_ceil(8);
        if words > data.len() {
            return Err(IpcError::BufTooSmall { needed: bytes.len() as u64, actual: data.len() as u64 * 8 });
        }
        let hash = hash_words(HASH_SEED, (0..words).map(|i| word(bytes, i)));
        let info = SnapshotInfo { frame, log_seq, len: bytes.len() as u64, hash };
        write(self.snapshot_header(), &data[..words], info, |i| word(bytes, i));
        Ok(info)
    }

    /// Supervisor: what the snapshot area holds, if anything valid.
    pub fn snapshot_info(&self) -> Option<SnapshotInfo> {
        info_of(self.snapshot_header())
    }
}

impl Bus {
    /// Supervisor: copies the snapshot in `from`'s area into checkpoint slot
    /// `slot`, checking it on the way (seqlock and hash); returns what it
    /// holds now. The slot is invalid while it is written, so a worker that
    /// reads it meanwhile sees a torn checkpoint, never a mix.
    ///
    /// # Errors
    /// [`IpcError::BufCorrupt`] if the worker's snapshot is torn, corrupt or
    /// too large, or the slot does not exist.
    pub fn store_checkpoint(&self, slot: usize, from: &WorkerRegion) -> Result<SnapshotInfo, IpcError> {
        let (header, data) = self.checkpoint(slot).ok_or(IpcError::BufCorrupt("no such checkpoint slot"))?;
        let (src_header, src) = (from.snapshot_header(), from.snapshot_data());
        let claimed = info_of(src_header).ok_or(IpcError::BufCorrupt("no snapshot in the worker's area"))?;
        let words = (claimed.len as usize).div_ceil(8);
        if words > data.len() || words > src.len() {
            return Err(IpcError::BufCorrupt("snapshot larger than a checkpoint"));
        }
        // Copy first (into the slot, marked invalid), then check what was
        // copied; publish only if it holds.
        seqlock_write::<StdFences, _, _>(&header.seq, || {
            header.valid.store(0, Relaxed);
            let copied = read(src_header, src, |i, w| {
                if let Some(d) = data.get(i) {
                    d.store(w, Relaxed);
                }
            });
            match copied {
                Some(info) if info == claimed => {
                    store_info(header, info);
                    Ok(info)
                }
                _ => Err(IpcError::BufCorrupt("the worker's snapshot changed or does not match its hash")),
            }
        })
    }

    /// Supervisor: drops checkpoint slot `slot` (no worker may start from it
    /// any more).
    pub fn invalidate_checkpoint(&self, slot: usize) {
        if let Some((header, _)) = self.checkpoint(slot) {
            seqlock_write::<StdFences, _, _>(&header.seq, || header.valid.store(0, Relaxed));
        }
    }

    /// What checkpoint slot `slot` holds, if anything valid.
    pub fn checkpoint_info(&self, slot: usize) -> Option<SnapshotInfo> {
        self.checkpoint(slot).and_then(|(h, _)| info_of(h))
    }

    /// Worker: copies checkpoint slot `slot` into `out` (exactly the
    /// snapshot's length) and checks it. Never allocates.
    ///
    /// # Errors
    /// [`StartError::BadRequest`] for a slot that does not exist or a length
    /// that differs from `out`'s; [`StartError::TornCheckpoint`] if it
    /// changed while read or does not match its hash.
    pub fn read_checkpoint(&self, slot: usize, out: &mut [u8]) -> Result<SnapshotInfo, StartError> {
        let (header, data) = self.checkpoint(slot).ok_or(StartError::BadRequest)?;
        let claimed = info_of(header).ok_or(StartError::TornCheckpoint)?;
        if claimed.len != out.len() as u64 {
            return Err(StartError::BadRequest);
        }
        let info = read(header, data, |i, w| {
            let bytes = w.to_le_bytes();
            let from = (i * 8).min(out.len());
            let to = (i * 8 + 8).min(out.len());
            out[from..to].copy_from_slice(&bytes[..to - from]);
        });
        info.ok_or(StartError::TornCheckpoint)
    }
}
