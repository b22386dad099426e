//! What an OSC sender may make the DSP read: patch files under one
//! directory the user named ([`PatchDir`]), or only the presets built into
//! the program ([`Bundled`]). Every sender gets the same answer, allowed
//! or not by `--allow`: the path in a packet is never trusted.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use chronus_dsp::{FileError, Files, MAX_FILE_BYTES};
use chronus_sys::file::{BeneathError, Dir, open_beneath};

/// The file names served: patch files only.
const EXTENSION: &str = ".toml";

/// Patch files (`*.toml`, at most [`MAX_FILE_BYTES`]) under one directory,
/// opened once: a path from a packet is resolved beneath it by the kernel
/// (`openat2` with `RESOLVE_BENEATH`), so an absolute path, `..` out of it,
/// or a symbolic link that leads out of it is refused, whatever was done to
/// the tree since; `/proc` magic links are refused too.
#[derive(Debug)]
pub struct PatchDir {
    dir: Dir,
    path: PathBuf,
}

impl PatchDir {
    /// Opens `path`, which must be a directory.
    ///
    /// # Errors
    /// The OS error of opening it (`ENOTDIR` for another kind of file).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self { dir: Dir::open(path)?, path: path.to_owned() })
    }

    /// The directory, as named.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Files for PatchDir {
    fn read_text(&self, path: &str) -> Result<String, FileError> {
        use std::io::Read;
        if !path.ends_with(EXTENSION) {
            return Err(FileError::refused(path, format!("only patch files ({EXTENSION}) are read")));
        }
        let file = open_beneath(&self.dir, path).map_err(|e| match e {
            BeneathError::Outside => {
                FileError::refused(path, format!("outside the patch directory {}", self.path.display()))
            }
            BeneathError::Io(e) => FileError::read(path, e),
        })?;
        let meta = file.metadata().map_err(|e| FileError::read(path, e))?;
        if !meta.is_file() {
            return Err(FileError::refused(path, "not a regular file"));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(FileError::refused(
                path,
                format!("{} bytes, over the {MAX_FILE_BYTES}-byte limit", meta.len()),
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

/// Files built into the program, by name: what `/patch/load` serves when
/// the user named no directory (the built-in synth's presets, as
/// `bass.toml`, `lead.toml`, …). Nothing on disk is read.
#[derive(Clone, Copy, Debug)]
pub struct Bundled(pub &'static [(&'static str, &'static str)]);

impl Files for Bundled {
    fn read_text(&self, path: &str) -> Result<String, FileError> {
        self.0.iter().find(|(name, _)| *name == path).map(|(_, text)| (*text).to_owned()).ok_or_else(|| {
            let names: Vec<&str> = self.0.iter().map(|(n, _)| *n).collect();
            FileError::refused(
                path,
                format!(
                    "no --patch-dir was given, so only the bundled patches are served ({})",
                    names.join(", ")
                ),
            )
        })
    }
}

/// A [`Files`] that counts the reads it refused (not the files that were
/// merely missing or unreadable).
pub(crate) struct Counted<'a> {
    pub files: &'a dyn Files,
    pub refused: &'a AtomicU64,
}

impl Files for Counted<'_> {
    fn read_text(&self, path: &str) -> Result<String, FileError> {
        let read = self.files.read_text(path);
        if matches!(read, Err(FileError::Refused { .. })) {
            self.refused.fetch_add(1, Relaxed);
        }
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tree(PathBuf);

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tree() -> Tree {
        let root = std::env::temp_dir().join(format!("chronus-osc-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("patches/sub")).unwrap();
        std::fs::write(root.join("patches/pad.toml"), "cutoff = 900\n").unwrap();
        std::fs::write(root.join("patches/sub/deep.toml"), "q = 2\n").unwrap();
        std::fs::write(root.join("secret.toml"), "q = 3\n").unwrap();
        std::fs::write(root.join("patches/big.toml"), vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        std::fs::write(root.join("patches/notes.txt"), "hello").unwrap();
        std::os::unix::fs::symlink("../secret.toml", root.join("patches/out.toml")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("patches/abs.toml")).unwrap();
        std::os::unix::fs::symlink("sub/deep.toml", root.join("patches/in.toml")).unwrap();
        std::fs::create_dir(root.join("patches/dir.toml")).unwrap();
        Tree(root)
    }

    #[test]
    fn a_patch_dir_serves_patch_files_beneath_it_and_nothing_else() {
        let t = tree();
        let dir = PatchDir::open(&t.0.join("patches")).unwrap();
        assert_eq!(dir.read_text("pad.toml").unwrap(), "cutoff = 900\n");
        assert_eq!(dir.read_text("sub/deep.toml").unwrap(), "q = 2\n");
        assert_eq!(dir.read_text("in.toml").unwrap(), "q = 2\n", "a link that stays inside");
        let outside = |path: &str| match dir.read_text(path) {
            Err(FileError::Refused { why, .. }) => assert!(why.contains("outside"), "{path}: {why}"),
            other => panic!("{path}: {other:?}"),
        };
        outside("../secret.toml");
        outside("sub/../../secret.toml");
        outside(t.0.join("secret.toml").to_str().unwrap());
        outside("out.toml");
        outside("abs.toml");
        for (path, says) in [
            ("../../etc/passwd", "only patch files"),
            ("notes.txt", "only patch files"),
            ("big.toml", "limit"),
            ("dir.toml", "not a regular file"),
        ] {
            match dir.read_text(path) {
                Err(FileError::Refused { why, .. }) => assert!(why.contains(says), "{path}: {why}"),
                other => panic!("{path}: {other:?}"),
            }
        }
        assert!(matches!(dir.read_text("missing.toml"), Err(FileError::Read { .. })));
    }

    #[test]
    fn bundled_files_are_served_by_name_only() {
        let b = Bundled(&[("bass.toml", "wave = 1\n")]);
        assert_eq!(b.read_text("bass.toml").unwrap(), "wave = 1\n");
        let err = b.read_text("/etc/passwd").unwrap_err().to_string();
        assert!(err.contains("only the bundled patches are served (bass.toml)"), "{err}");
        let refused = AtomicU64::new(0);
        let counted = Counted { files: &b, refused: &refused };
        assert!(counted.read_text("x.toml").is_err() && counted.read_text("bass.toml").is_ok());
        assert_eq!(refused.load(Relaxed), 1);
        let none = PatchDir::open(&std::env::temp_dir()).unwrap();
        let counted = Counted { files: &none, refused: &refused };
        assert!(matches!(counted.read_text("chronus-no-such.toml"), Err(FileError::Read { .. })));
        assert_eq!(refused.load(Relaxed), 1, "a missing file is not a refusal");
    }
}
