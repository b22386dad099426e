//! A worker region: a sealed memfd mapped shared, with typed views.
//!
//! Soundness rests on three facts, checked here:
//! * every view handed out is in bounds and aligned (checked per view);
//! * every type viewed after spawn is made only of atomics, for which every
//!   bit pattern is valid and concurrent access from the peer is not a data
//!   race;
//! * the file is sealed against shrinking, so the peer cannot make our
//!   mapping fault.
//!
//! So attaching is safe even to a region a misbehaving peer writes garbage
//! into: garbage is detected by the protocol checks, never undefined
//! behaviour.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};

use memmap2::{MmapOptions, MmapRaw};

use crate::layout::{
    AudioRingHeader, CommandRingHeader, CommandSlot, ControlBlock, Geometry, Heartbeat, LAYOUT_VERSION,
    REGION_MAGIC, RegionHeader,
};
use crate::{IpcError, sys};

/// Types that may be viewed in shared memory: only atomics inside, valid
/// for every bit pattern.
///
/// # Safety
/// Implementors must consist solely of atomic integers (and atomic padding),
/// be `#[repr(C)]`, and be valid when all-zero or holding any bits.
pub(crate) unsafe trait SharedView: Sized {}
// SAFETY: each of these is #[repr(C)] and made only of AtomicU32/AtomicU64
// (padding fields are plain integers never accessed, valid for any bits).
unsafe impl SharedView for ControlBlock {}
// SAFETY: as above.
unsafe impl SharedView for Heartbeat {}
// SAFETY: as above.
unsafe impl SharedView for AudioRingHeader {}
// SAFETY: as above.
unsafe impl SharedView for CommandRingHeader {}
// SAFETY: as above.
unsafe impl SharedView for CommandSlot {}
// SAFETY: an atomic u32 is valid for every bit pattern.
unsafe impl SharedView for AtomicU32 {}
// SAFETY: an atomic u64 is valid for every bit pattern.
unsafe impl SharedView for AtomicU64 {}

/// One mapped worker region.
#[derive(Debug)]
pub struct Region {
    fd: OwnedFd,
    map: MmapRaw,
    header: RegionHeader,
    /// The current generation (changes on [`Region::reset`]).
    generation: AtomicU64,
}

// Region is Send + Sync through its fields (OwnedFd, MmapRaw, plain data):
// all access to the mapping goes through atomics or the private header copy.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Region>();
};

impl Region {
    /// Creates a zeroed region for `geometry` and worker `generation`, and
    /// writes its header.
    ///
    /// # Errors
    /// [`IpcError::BadGeometry`] or [`IpcError::Os`] from memfd/mmap.
    pub fn create(geometry: Geometry, generation: u64) -> Result<Self, IpcError> {
        geometry.validate()?;
        let (offsets, total_size) = geometry.layout();
        let fd = sys::sealed_memfd("chronus-worker", total_size).map_err(IpcError::os("memfd_create"))?;
        let map = MmapOptions::new()
            .len(total_size as usize)
            .populate()
            .map_raw(&fd)
            .map_err(IpcError::os("mmap"))?;
        let header = RegionHeader {
            magic: REGION_MAGIC,
            version: LAYOUT_VERSION,
            header_size: size_of::<RegionHeader>() as u32,
            generation,
            total_size,
            geometry,
            offsets,
        };
        // SAFETY: the mapping is at least total_size ≥ size_of::<RegionHeader>()
        // bytes, page-aligned, and not yet shared with any other process.
        unsafe { map.as_mut_ptr().cast::<RegionHeader>().write(header) };
        Ok(Self { fd, map, header, generation: AtomicU64::new(generation) })
    }

    /// Maps a region received from the supervisor and checks its header:
    /// magic, layout version, `generation`, sizes and offsets, and the seal.
    ///
    /// # Errors
    /// [`IpcError::BadMagic`], [`IpcError::VersionMismatch`],
    /// [`IpcError::GenerationMismatch`], [`IpcError::BufTooSmall`],
    /// [`IpcError::BufCorrupt`] or [`IpcError::Os`].
    pub fn attach(fd: OwnedFd, generation: u64) -> Result<Self, IpcError> {
        let len = sys::file_len(fd.as_fd()).map_err(IpcError::os("fstat"))?;
        if len < size_of::<RegionHeader>() as u64 {
            return Err(IpcError::BufTooSmall { needed: size_of::<RegionHeader>() as u64, actual: len });
        }
        if !sys::is_shrink_sealed(fd.as_fd()).map_err(IpcError::os("F_GET_SEALS"))? {
            return Err(IpcError::BufCorrupt("the memory file is not sealed against shrinking"));
        }
        let map =
            MmapOptions::new().len(len as usize).populate().map_raw(&fd).map_err(IpcError::os("mmap"))?;
        // SAFETY: the mapping holds at least one RegionHeader (checked above),
        // is page-aligned, and RegionHeader is Pod (any bits valid). The
        // header was written before this process was spawned and is never
        // written again.
        let header = unsafe { map.as_ptr().cast::<RegionHeader>().read_volatile() };
        if header.magic != REGION_MAGIC {
            return Err(IpcError::BadMagic(header.magic));
        }
        if header.version != LAYOUT_VERSION || header.header_size != size_of::<RegionHeader>() as u32 {
            return Err(IpcError::VersionMismatch { found: header.version, expected: LAYOUT_VERSION });
        }
        if header.generation != generation {
            return Err(IpcError::GenerationMismatch { found: header.generation, expected: generation });
        }
        header.geometry.validate()?;
        let (offsets, total) = header.geometry.layout();
        if offsets != header.offsets || total != header.total_size {
            return Err(IpcError::BufCorrupt("section offsets do not match the geometry"));
        }
        if len < total {
            return Err(IpcError::BufTooSmall { needed: total, actual: len });
        }
        Ok(Self { fd, map, header, generation: AtomicU64::new(generation) })
    }

    /// The geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.header.geometry
    }

    /// The worker generation this region belongs to.
    pub fn generation(&self) -> u64 {
        self.generation.load(Acquire)
    }

    /// Makes the region new for worker `generation`: every section zeroed,
    /// the header's generation replaced. For reusing a region after its
    /// worker died and was reaped; a worker still attached would see its
    /// state vanish (and its stop and command stamps stop matching).
    pub fn reset(&self, generation: u64) {
        let start = self.header.offsets.control;
        let words = (self.header.total_size - start) as usize / 8;
        for w in self.slice::<AtomicU64>(start, words) {
            w.store(0, Relaxed);
        }
        const AT: usize = std::mem::offset_of!(RegionHeader, generation);
        const _: () = assert!(AT.is_multiple_of(8));
        self.slice::<AtomicU64>(AT as u64, 1)[0].store(generation, Release);
        self.generation.store(generation, Release);
    }

    /// The memfd, to hand to a child process.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn slice<T: SharedView>(&self, offset: u64, count: usize) -> &[T] {
        let bytes = count.checked_mul(size_of::<T>()).expect("section size fits usize");
        let end = (offset as usize).checked_add(bytes).expect("section end fits usize");
        assert!(end <= self.map.len(), "section outside the mapping");
        // SAFETY: in bounds (asserted); the mapping is page-aligned and
        // `offset` is a multiple of 64 (layout), so aligned for T (align ≤ 64);
        // T: SharedView is valid for any bits and only accessed atomically;
        // the mapping lives as long as `self`.
        unsafe {
            let ptr = self.map.as_ptr().add(offset as usize).cast::<T>();
            debug_assert!(ptr.is_aligned());
            std::slice::from_raw_parts(ptr, count)
        }
    }

    /// The control block.
    pub fn control(&self) -> &ControlBlock {
        &self.slice(self.header.offsets.control, 1)[0]
    }

    /// The heartbeat counters.
    pub fn heartbeat(&self) -> &Heartbeat {
        &self.slice(self.header.offsets.heartbeat, 1)[0]
    }

    pub(crate) fn audio_header(&self) -> &AudioRingHeader {
        &self.slice(self.header.offsets.audio_header, 1)[0]
    }

    pub(crate) fn audio_data(&self) -> &[AtomicU32] {
        let g = &self.header.geometry;
        self.slice(self.header.offsets.audio_data, (g.audio_frames * g.channels) as usize)
    }

    pub(crate) fn command_header(&self) -> &CommandRingHeader {
        &self.slice(self.header.offsets.command_header, 1)[0]
    }

    pub(crate) fn command_slots(&self) -> &[CommandSlot] {
        self.slice(self.header.offsets.command_slots, self.header.geometry.command_slots as usize)
    }

    /// The snapshot area, as 32-bit words.
    pub fn snapshot_words(&self) -> &[AtomicU32] {
        let o = &self.header.offsets;
        self.slice(o.snapshot, o.snapshot_size as usize / 4)
    }
}
