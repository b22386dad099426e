//! A sealed memfd mapped shared, with typed views: the one module of this
//! crate with `unsafe` (the OS calls are chronus-sys's).
//!
//! Soundness rests on three facts, checked here:
//! * every view handed out is in bounds and aligned (checked per view);
//! * every type viewed after the header is made only of atomics, for which
//!   every bit pattern is valid and concurrent access from the peer is not a
//!   data race;
//! * the file is sealed against shrinking, so the peer cannot make our
//!   mapping fault; a region others only read is also sealed against every
//!   write but its creator's mapping (`F_SEAL_FUTURE_WRITE`).
//!
//! So attaching is safe even to a region a misbehaving peer writes garbage
//! into: garbage is detected by the protocol checks, never undefined
//! behaviour. A read-only mapping (the bus, seen from a worker) is only ever
//! loaded from; a store would fault, never corrupt.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};

use memmap2::{Advice, MmapOptions, MmapRaw};

use crate::IpcError;
use crate::layout::{
    AudioRingHeader, BusControl, ControlBlock, EventSlot, Heartbeat, LAYOUT_VERSION, REGION_MAGIC,
    RegionHeader, RegionKind, SnapshotHeader,
};

/// Types that may be viewed in shared memory: only atomics inside, valid
/// for every bit pattern.
///
/// # Safety
/// Implementors must consist solely of atomic integers (and plain integer
/// padding that is never accessed), be `#[repr(C)]`, and be valid when
/// all-zero or holding any bits.
pub(crate) unsafe trait SharedView: Sized {}
// SAFETY: each of these is #[repr(C)] and made only of AtomicU32/AtomicU64
// (padding fields are plain integers never accessed, valid for any bits).
unsafe impl SharedView for ControlBlock {}
// SAFETY: as above.
unsafe impl SharedView for Heartbeat {}
// SAFETY: as above.
unsafe impl SharedView for AudioRingHeader {}
// SAFETY: as above.
unsafe impl SharedView for SnapshotHeader {}
// SAFETY: as above.
unsafe impl SharedView for BusControl {}
// SAFETY: as above.
unsafe impl SharedView for EventSlot {}
// SAFETY: an atomic u32 is valid for every bit pattern.
unsafe impl SharedView for AtomicU32 {}
// SAFETY: an atomic u64 is valid for every bit pattern.
unsafe impl SharedView for AtomicU64 {}

/// One mapped region and a private copy of its header.
#[derive(Debug)]
pub(crate) struct Mapping {
    fd: OwnedFd,
    map: MmapRaw,
    pub header: RegionHeader,
    writable: bool,
}

// Mapping is Send + Sync through its fields (OwnedFd, MmapRaw, plain data):
// all access to the mapping goes through atomics or the private header copy.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Mapping>();
};

impl Mapping {
    /// Creates a zeroed, sealed region of `header.total_size` bytes and
    /// writes `header` at its start, then `tail` (plain bytes written once,
    /// such as a configuration) at `tail_at`. With `peers_read_only`, the
    /// file is then sealed against every write but through this mapping:
    /// no process given it, however it reopens or maps it, can write it.
    pub fn create(
        name: &str,
        header: RegionHeader,
        tail_at: usize,
        tail: &[u8],
        peers_read_only: bool,
    ) -> Result<Self, IpcError> {
        let len = header.total_size;
        let fd = chronus_sys::memfd::sealed_memfd(name, len, !peers_read_only)
            .map_err(IpcError::os("memfd_create"))?;
        let map =
            MmapOptions::new().len(len as usize).populate().map_raw(&fd).map_err(IpcError::os("mmap"))?;
        assert!(size_of::<RegionHeader>() <= len as usize && tail_at + tail.len() <= len as usize);
        // SAFETY: the mapping is at least `len` bytes (asserted above: the
        // header and the tail fit), page-aligned, and not yet shared with
        // any other process: nothing else reads or writes it now.
        unsafe {
            map.as_mut_ptr().cast::<RegionHeader>().write(header);
            std::ptr::copy_nonoverlapping(tail.as_ptr(), map.as_mut_ptr().add(tail_at), tail.len());
        }
        if peers_read_only {
            chronus_sys::memfd::seal_writes(fd.as_fd()).map_err(IpcError::os("F_SEAL_FUTURE_WRITE"))?;
        }
        Ok(Self { fd, map, header, writable: true })
    }

    /// Maps a region received from the supervisor, read-write or read-only,
    /// and checks its header: magic, layout version, kind, epoch and
    /// generation, size, and the seals (a region mapped read-only must be
    /// sealed against writes: otherwise a peer could change what this
    /// process reads). The caller checks the geometry.
    pub fn attach(
        fd: OwnedFd,
        kind: RegionKind,
        epoch: u64,
        generation: u64,
        writable: bool,
    ) -> Result<Self, IpcError> {
        let len = chronus_sys::memfd::file_len(fd.as_fd()).map_err(IpcError::os("fstat"))?;
        if len < size_of::<RegionHeader>() as u64 {
            return Err(IpcError::BufTooSmall { needed: size_of::<RegionHeader>() as u64, actual: len });
        }
        let seals = chronus_sys::memfd::seals(fd.as_fd()).map_err(IpcError::os("F_GET_SEALS"))?;
        if !seals.shrink {
            return Err(IpcError::BufCorrupt("the memory file is not sealed against shrinking"));
        }
        if !writable && !seals.writes {
            return Err(IpcError::BufCorrupt("a read-only region that is not sealed against writes"));
        }
        // Not populated: each page a process maps is a page the kernel
        // unmaps when it dies, before its pidfd reports the death. The
        // caller prefaults the sections it uses ([`Mapping::prefault`]).
        let opts = {
            let mut o = MmapOptions::new();
            o.len(len as usize);
            o
        };
        let map = if writable { opts.map_raw(&fd) } else { opts.map_raw_read_only(&fd) }
            .map_err(IpcError::os("mmap"))?;
        // SAFETY: the mapping holds at least one RegionHeader (checked above),
        // is page-aligned, and RegionHeader is Pod (any bits valid). The
        // header was written before this process was spawned and is never
        // written again; a volatile read copies whatever is there.
        let header = unsafe { map.as_ptr().cast::<RegionHeader>().read_volatile() };
        if header.magic != REGION_MAGIC {
            return Err(IpcError::BadMagic(header.magic));
        }
        if header.version != LAYOUT_VERSION || header.header_size != size_of::<RegionHeader>() as u32 {
            return Err(IpcError::VersionMismatch { found: header.version, expected: LAYOUT_VERSION });
        }
        if header.kind != kind as u32 {
            return Err(IpcError::BufCorrupt("a region of another kind"));
        }
        if header.epoch != epoch {
            return Err(IpcError::BufCorrupt("a region of another engine run"));
        }
        if header.generation != generation {
            return Err(IpcError::GenerationMismatch { found: header.generation, expected: generation });
        }
        header.geometry.validate()?;
        if len < header.total_size {
            return Err(IpcError::BufTooSmall { needed: header.total_size, actual: len });
        }
        Ok(Self { fd, map, header, writable })
    }

    /// Maps the pages of bytes `offset..offset + len` now (writable where
    /// this process may write), so that touching them later takes no page
    /// fault: `MADV_POPULATE_READ`/`_WRITE`, or on a kernel without them
    /// (before 5.14) a read of each page.
    pub fn prefault(&self, offset: usize, len: usize) {
        let end = offset.checked_add(len).expect("range fits usize").min(self.map.len());
        let Some(len) = end.checked_sub(offset).filter(|&l| l > 0) else { return };
        let advice = if self.writable { Advice::PopulateWrite } else { Advice::PopulateRead };
        if self.map.advise_range(advice, offset, len).is_ok() {
            return;
        }
        const PAGE: usize = 4096;
        let first = offset / PAGE * PAGE;
        for page in (first..end).step_by(PAGE) {
            let _ = self.at::<AtomicU64>(page).load(Relaxed);
        }
    }

    /// The memfd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether this process may write the region.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// `count` `T`s at byte `offset`.
    pub fn slice<T: SharedView>(&self, offset: usize, count: usize) -> &[T] {
        let bytes = count.checked_mul(size_of::<T>()).expect("section size fits usize");
        let end = offset.checked_add(bytes).expect("section end fits usize");
        assert!(end <= self.map.len(), "section outside the mapping");
        // The mapping is page-aligned and every section offset a multiple
        // of 64 (layout): checked here, in every build, for every view.
        assert!(offset.is_multiple_of(align_of::<T>()), "section misaligned for its type");
        // SAFETY: in bounds and aligned for T (both asserted just above; the
        // mapping's base is page-aligned); T: SharedView is valid for any
        // bits and only accessed atomically; the mapping lives as long as
        // `self`.
        unsafe {
            let ptr = self.map.as_ptr().add(offset).cast::<T>();
            std::slice::from_raw_parts(ptr, count)
        }
    }

    /// One `T` at byte `offset`.
    pub fn at<T: SharedView>(&self, offset: usize) -> &T {
        &self.slice(offset, 1)[0]
    }

    /// Copies `len` plain bytes at `offset` (written once before this
    /// process attached, such as a configuration).
    pub fn read_bytes(&self, offset: usize, len: usize) -> Vec<u8> {
        let end = offset.checked_add(len).expect("range fits usize");
        assert!(end <= self.map.len(), "bytes outside the mapping");
        let mut out = vec![0u8; len];
        // SAFETY: in bounds (asserted); the bytes are plain data written once
        // before this process attached and never written again; copying
        // them byte by byte with volatile reads is sound for any bits.
        unsafe {
            let src = self.map.as_ptr().add(offset);
            for (i, b) in out.iter_mut().enumerate() {
                *b = src.add(i).read_volatile();
            }
        }
        out
    }
}
