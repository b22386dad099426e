//! What a DSP's [`Dsp::expand`](crate::Dsp::expand) may read.
//!
//! An address such as `/patch/load s:path` names a file, and the name comes
//! from whoever sent the command: the user typing a score, or any sender on
//! the network. So the DSP never opens files itself; it asks the [`Files`]
//! its caller hands it, and the caller decides what may be read: any file
//! for the local user's own input ([`AnyFile`]: a score, `play --patch`),
//! only patch files under a directory the user named for OSC senders
//! (`chronus_osc::PatchDir`), nothing at all ([`NoFiles`]).

/// The largest file a [`Files`] reads, in bytes. A patch is a few hundred
/// bytes; anything past this is refused unread.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Why a file was not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The caller does not let this path be read: outside the directory it
    /// allows, through a link out of it, not the kind of file it serves, or
    /// over [`MAX_FILE_BYTES`]. Nothing was read.
    #[error("{path}: {why}")]
    Refused {
        /// The path, as given.
        path: String,
        /// Why.
        why: String,
    },
    /// The file could not be read (none there, no permission, not UTF-8).
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The path, as given.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
}

impl FileError {
    /// A [`FileError::Refused`].
    pub fn refused(path: &str, why: impl Into<String>) -> Self {
        Self::Refused { path: path.to_owned(), why: why.into() }
    }

    /// A [`FileError::Read`].
    pub fn read(path: &str, reason: impl std::fmt::Display) -> Self {
        Self::Read { path: path.to_owned(), reason: reason.to_string() }
    }
}

/// The files a DSP's `expand` may read, as its caller decides.
pub trait Files: Send + Sync {
    /// The text of the file at `path` (as the sender wrote it: relative to
    /// wherever this `Files` resolves paths).
    ///
    /// # Errors
    /// [`FileError::Refused`] for a path this `Files` does not serve, or
    /// [`FileError::Read`].
    fn read_text(&self, path: &str) -> Result<String, FileError>;
}

/// Reads nothing: every path is refused.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFiles;

impl Files for NoFiles {
    fn read_text(&self, path: &str) -> Result<String, FileError> {
        Err(FileError::refused(path, "no files may be read here"))
    }
}

/// Any file this process may read (relative paths from its working
/// directory), up to [`MAX_FILE_BYTES`]: for input the local user wrote
/// themselves — a score, a command-line flag, a program's own calls —
/// never for what arrives from a network.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnyFile;

impl Files for AnyFile {
    fn read_text(&self, path: &str) -> Result<String, FileError> {
        use std::io::Read;
        let file = std::fs::File::open(path).map_err(|e| FileError::read(path, e))?;
        let len = file.metadata().map_err(|e| FileError::read(path, e))?.len();
        if len > MAX_FILE_BYTES {
            return Err(FileError::refused(
                path,
                format!("{len} bytes, over the {MAX_FILE_BYTES}-byte limit"),
            ));
        }
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text).map_err(|e| FileError::read(path, e))?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(FileError::refused(path, format!("over the {MAX_FILE_BYTES}-byte limit")));
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_files_refuses_and_any_file_reads_within_the_limit() {
        assert!(matches!(NoFiles.read_text("Cargo.toml"), Err(FileError::Refused { .. })));
        assert!(AnyFile.read_text("Cargo.toml").unwrap().contains("chronus-dsp"));
        assert!(matches!(AnyFile.read_text("/nonexistent"), Err(FileError::Read { .. })));
        let big = std::env::temp_dir().join(format!("chronus-dsp-big-{}", std::process::id()));
        std::fs::write(&big, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        let refused = AnyFile.read_text(big.to_str().unwrap());
        std::fs::remove_file(&big).unwrap();
        assert!(matches!(refused, Err(FileError::Refused { .. })), "{refused:?}");
    }
}
