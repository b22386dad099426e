//! Files: opening beneath a directory, and the lease's lock.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag, OpenHow, ResolveFlag, open, openat2};
use nix::sys::stat::Mode;

/// A directory held open (`O_PATH`): paths are resolved beneath it.
#[derive(Debug)]
pub struct Dir(OwnedFd);

impl Dir {
    /// Opens `path`, which must be a directory.
    ///
    /// # Errors
    /// The OS error (`ENOTDIR` for another kind of file).
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self(open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?))
    }
}

/// Why [`open_beneath`] opened nothing.
#[derive(Debug)]
pub enum BeneathError {
    /// The path leaves the directory: absolute, `..` out of it, a symbolic
    /// link that leads out of it, or a `/proc` magic link.
    Outside,
    /// Another reason (no such file, no permission).
    Io(io::Error),
}

/// Opens `path` read-only, resolved by the kernel beneath `dir` (`openat2`
/// with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`), without blocking on a
/// FIFO and without becoming a controlling terminal.
///
/// # Errors
/// [`BeneathError::Outside`] or [`BeneathError::Io`].
pub fn open_beneath(dir: &Dir, path: &str) -> Result<File, BeneathError> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(&dir.0, path, how) {
        Ok(fd) => Ok(File::from(fd)),
        Err(Errno::EXDEV | Errno::ELOOP) => Err(BeneathError::Outside),
        Err(e) => Err(BeneathError::Io(e.into())),
    }
}

/// A file held under an exclusive `flock`; the kernel releases it when the
/// holder dies, however it dies.
#[derive(Debug)]
pub struct LockedFile(Flock<File>);

impl std::ops::Deref for LockedFile {
    type Target = File;
    fn deref(&self) -> &File {
        &self.0
    }
}

impl std::ops::DerefMut for LockedFile {
    fn deref_mut(&mut self) -> &mut File {
        &mut self.0
    }
}

/// Takes an exclusive `flock` on `file` without waiting: `Err(file)` back
/// when another holds it.
///
/// # Errors
/// The file back, and the OS error (`EWOULDBLOCK`: held).
pub fn try_lock_exclusive(file: File) -> Result<LockedFile, (File, io::Error)> {
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map(LockedFile).map_err(|(f, e)| (f, e.into()))
}
