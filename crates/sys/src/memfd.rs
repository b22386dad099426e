//! Sealed memory files: the regions and the bus.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

/// Creates an anonymous, close-on-exec, sealable memory file of `len` bytes
/// (zero-filled by the kernel), sealed against shrinking and growing so the
/// peer can never make a mapping fault. With `final_seals`, no seal can be
/// added later either; without, the caller adds [`seal_writes`] once its own
/// writable mapping exists.
///
/// # Errors
/// The OS error of `memfd_create`, `ftruncate` or `F_ADD_SEALS`.
pub fn sealed_memfd(name: &str, len: u64, final_seals: bool) -> io::Result<OwnedFd> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    nix::unistd::ftruncate(&fd, len)?;
    let mut seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW;
    if final_seals {
        seals |= SealFlag::F_SEAL_SEAL;
    }
    fcntl(&fd, FcntlArg::F_ADD_SEALS(seals))?;
    Ok(fd)
}

/// Seals the file behind `fd` against every write from now on:
/// `F_SEAL_FUTURE_WRITE` (no new writable mapping, by any fd or process,
/// reopened through `/proc` or not; no `write(2)`, no hole punched; a
/// read-only shared mapping can never be made writable), then `F_SEAL_SEAL`.
/// Writable mappings made before keep working: the writer's.
///
/// # Errors
/// The OS error of `F_ADD_SEALS`.
pub fn seal_writes(fd: BorrowedFd<'_>) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_FUTURE_WRITE | SealFlag::F_SEAL_SEAL))?;
    Ok(())
}

/// What a memory file is sealed against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seals {
    /// Shrinking (so a mapping of it can never fault).
    pub shrink: bool,
    /// Every new write ([`seal_writes`]).
    pub writes: bool,
}

/// The seals of the file behind `fd`.
///
/// # Errors
/// The OS error of `F_GET_SEALS`.
pub fn seals(fd: BorrowedFd<'_>) -> io::Result<Seals> {
    let seals = SealFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GET_SEALS)?);
    Ok(Seals {
        shrink: seals.contains(SealFlag::F_SEAL_SHRINK),
        writes: seals.contains(SealFlag::F_SEAL_FUTURE_WRITE),
    })
}

fn reopen(fd: BorrowedFd<'_>, flags: nix::fcntl::OFlag) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(nix::fcntl::open(path.as_str(), flags | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?)
}

/// A new, read-only open file description of the file behind `fd` (through
/// `/proc/self/fd`): what a worker inherits. (Read-only is not enough by
/// itself: a read-only fd can be reopened read-write the same way. A file
/// others must only read is also sealed: [`seal_writes`].)
///
/// # Errors
/// The OS error of opening it.
pub fn reopen_read_only(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    reopen(fd, nix::fcntl::OFlag::O_RDONLY)
}

/// A new read-write open file description of `fd`'s file, as any process
/// holding one could make (tests: what a hostile worker could try).
///
/// # Errors
/// The OS error of opening it.
pub fn reopen_read_write(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    reopen(fd, nix::fcntl::OFlag::O_RDWR)
}

/// Size in bytes of the file behind `fd`.
///
/// # Errors
/// The OS error of `fstat`.
pub fn file_len(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok(st.st_size as u64)
}
