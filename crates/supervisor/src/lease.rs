//! The singleton lease: one supervisor per instance name.
//!
//! An exclusive `flock` on `$XDG_RUNTIME_DIR/chronus/NAME.lock` (or
//! `/tmp/chronus-UID/NAME.lock`). The kernel releases it when the holder
//! dies, however it dies, so a lease can never wedge; the file holds the
//! holder's pid for the refusal message.

use std::fs::OpenOptions;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

/// Why the lease was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// Another live supervisor holds it.
    #[error("another chronus supervisor (pid {pid}) holds instance {name}")]
    Held {
        /// The instance name.
        name: String,
        /// The holder's pid (0 if unreadable).
        pid: u32,
    },
    /// The name is not usable in a file name.
    #[error("instance name '{0}' must be 1-64 letters, digits, '-' or '_'")]
    BadName(String),
    /// The lock file could not be created.
    #[error("lease file {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A held lease; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lease {
    _lock: chronus_sys::file::LockedFile,
    path: PathBuf,
}

fn lease_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("chronus"),
        None => std::env::temp_dir().join(format!("chronus-{}", chronus_sys::process::user_id())),
    }
}

impl Lease {
    /// Takes the lease of instance `name`, or says who holds it.
    ///
    /// # Errors
    /// [`LeaseError::Held`] when another supervisor has it;
    /// [`LeaseError::BadName`]; [`LeaseError::Io`].
    pub fn acquire(name: &str) -> Result<Self, LeaseError> {
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
            return Err(LeaseError::BadName(name.to_owned()));
        }
        let dir = lease_dir();
        let path = dir.join(format!("{name}.lock"));
        let io = |source| LeaseError::Io { path: path.display().to_string(), source };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match chronus_sys::file::try_lock_exclusive(file) {
            Ok(mut lock) => {
                let _ = lock.set_len(0);
                let _ = lock.rewind();
                let _ = write!(lock, "{}", std::process::id());
                let _ = lock.flush();
                Ok(Self { _lock: lock, path })
            }
            Err((mut file, _)) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                Err(LeaseError::Held { name: name.to_owned(), pid: text.trim().parse().unwrap_or(0) })
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lease_on_the_same_name_is_refused_with_the_holder_pid() {
        let name = format!("test-{}", std::process::id());
        let first = Lease::acquire(&name).unwrap();
        match Lease::acquire(&name) {
            Err(LeaseError::Held { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        drop(first);
        let again = Lease::acquire(&name).unwrap();
        let _ = std::fs::remove_file(again.path());
        assert!(matches!(Lease::acquire("../etc"), Err(LeaseError::BadName(_))));
    }
}
