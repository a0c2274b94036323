//! Where `hlsladdersink` puts its files: the storage seam.
//!
//! Names are relative to the output root with `/` separators
//! (`index.m3u8`, `v0/segment00042.ts`). [`Storage::put`] replaces a file
//! atomically: a reader sees the old or the new content, never a partial
//! one, even after `kill -9` of the writer. [`FsStorage`] (a local
//! directory) is the default and stays the source of truth when other
//! stores are added beside it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file being written: it replaces `name` only when committed, and is
/// discarded when dropped without a commit.
pub trait StagedFile: Write {
    /// Makes the written content visible under the file's name, atomically.
    fn commit(self: Box<Self>) -> io::Result<()>;
}

/// A place files are written to and deleted from.
pub trait Storage: Send {
    /// Creates the directory `dir` (and its parents) if needed, and removes
    /// temporaries a killed writer left in it.
    fn prepare_dir(&self, dir: &str) -> io::Result<()>;
    /// Starts writing `name`; the content is streamed in (a segment goes
    /// out in cache-sized chunks as it is muxed) and replaces any earlier
    /// content atomically at [`StagedFile::commit`].
    fn create(&self, name: &str) -> io::Result<Box<dyn StagedFile>>;
    /// Writes `bytes` as `name`, atomically replacing any earlier content.
    fn put(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut f = self.create(name)?;
        f.write_all(bytes)?;
        f.commit()
    }
    /// Deletes `name`; a name that does not exist is not an error.
    fn delete(&self, name: &str) -> io::Result<()>;
    /// Where `name` lives, for messages (a path or a URL).
    fn location(&self, name: &str) -> String;
}

/// A local directory: each put writes `.NAME.tmp` beside the target and
/// renames it over the target (POSIX `rename` is atomic in one directory).
#[derive(Clone, Debug)]
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    /// A store rooted at `root`, which is created (with its parents) when
    /// missing, as `mkdir -p` would. Errors say which step failed.
    pub fn open(root: &Path) -> Result<Self, OpenError> {
        match fs::metadata(root) {
            Ok(m) if !m.is_dir() => return Err(OpenError::NotADirectory),
            Ok(_) => {}
            Err(_) => fs::create_dir_all(root).map_err(OpenError::Create)?,
        }
        // Writability: create and remove a probe file.
        let probe = root.join(".hlsladdersink-probe.tmp");
        fs::write(&probe, b"")
            .and_then(|_| fs::remove_file(&probe))
            .map_err(OpenError::NotWritable)?;
        remove_stale_temporaries(root);
        Ok(FsStorage {
            root: root.to_path_buf(),
        })
    }

    /// The path of `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

impl Storage for FsStorage {
    fn prepare_dir(&self, dir: &str) -> io::Result<()> {
        let path = self.path(dir);
        fs::create_dir_all(&path)?;
        remove_stale_temporaries(&path);
        Ok(())
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn StagedFile>> {
        let path = self.path(name);
        let tmp = temp_path(&path);
        let file = fs::File::create(&tmp)?;
        Ok(Box::new(FsStaged {
            file: Some(file),
            tmp,
            path,
        }))
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn location(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// A temporary `.NAME.tmp` beside the target, renamed over it on commit
/// and removed if dropped before.
struct FsStaged {
    file: Option<fs::File>,
    tmp: PathBuf,
    path: PathBuf,
}

impl Write for FsStaged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl StagedFile for FsStaged {
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        drop(self.file.take());
        fs::rename(&self.tmp, &self.path)
    }
}

impl Drop for FsStaged {
    fn drop(&mut self) {
        // Not committed (or the rename failed): leave no temporary behind.
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Why [`FsStorage::open`] failed.
#[derive(Debug)]
pub enum OpenError {
    /// The root exists and is not a directory.
    NotADirectory,
    /// The root (or a parent) could not be created.
    Create(io::Error),
    /// A file cannot be created in the root.
    NotWritable(io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NotADirectory => f.write_str("is not a directory"),
            OpenError::Create(e) => write!(f, "cannot be created: {e}"),
            OpenError::NotWritable(e) => write!(f, "is not writable: {e}"),
        }
    }
}

/// The temporary name of a file being written: `.NAME.tmp` beside `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Removes temporaries (`.*.tmp`) a killed process left behind in `dir`.
pub fn remove_stale_temporaries(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_replaces_atomically_and_delete_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(&dir.path().join("a/b")).unwrap();
        s.prepare_dir("v0").unwrap();
        s.put("v0/index.m3u8", b"one").unwrap();
        s.put("v0/index.m3u8", b"two").unwrap();
        let path = dir.path().join("a/b/v0/index.m3u8");
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!temp_path(&path).exists());
        s.delete("v0/index.m3u8").unwrap();
        s.delete("v0/index.m3u8").unwrap();
        assert!(!path.exists());
        assert!(s.put("missing/x", b"x").is_err());
        assert!(!dir.path().join("a/b/missing/.x.tmp").exists());
    }

    #[test]
    fn a_staged_file_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(dir.path()).unwrap();
        s.put("seg.ts", b"old").unwrap();
        let mut f = s.create("seg.ts").unwrap();
        f.write_all(b"new, ").unwrap();
        f.write_all(b"in chunks").unwrap();
        assert_eq!(fs::read(dir.path().join("seg.ts")).unwrap(), b"old");
        f.commit().unwrap();
        assert_eq!(
            fs::read(dir.path().join("seg.ts")).unwrap(),
            b"new, in chunks"
        );
        // Dropped without a commit: nothing changes, no temporary is left.
        let mut f = s.create("seg.ts").unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(
            fs::read(dir.path().join("seg.ts")).unwrap(),
            b"new, in chunks"
        );
        assert!(!dir.path().join(".seg.ts.tmp").exists());
    }

    #[test]
    fn open_refuses_a_file_and_removes_stale_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"x").unwrap();
        let err = FsStorage::open(&file).unwrap_err();
        assert!(matches!(err, OpenError::NotADirectory), "{err:?}");
        let err = FsStorage::open(&file.join("below")).unwrap_err();
        assert!(matches!(err, OpenError::Create(_)), "{err:?}");
        fs::write(dir.path().join(".seg.ts.tmp"), b"partial").unwrap();
        FsStorage::open(dir.path()).unwrap();
        assert!(!dir.path().join(".seg.ts.tmp").exists());
    }
}
