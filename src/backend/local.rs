//! Local-filesystem backend: temp name, write, fsync, rename, fsync folder.
//! Files are created 0600 and folders 0700.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::Backend;
use crate::error::{Error, Result};

/// Open pack files kept for ranged reads: a restore reads tens of thousands
/// of blobs from a few dozen packs, and an open, a path lookup and a close
/// per blob cost more than the read itself.
const OPEN_FILES: usize = 64;

/// Ranges from this size up are read on a handle opened for them (see
/// `read_range`).
const FRESH_HANDLE_BYTES: u64 = 256 << 10;

/// A repository in a local folder.
pub struct LocalBackend {
    root: PathBuf,
    // Packs are immutable; an entry is dropped when this process replaces
    // or deletes the object, and the whole map when it is full.
    open: Mutex<HashMap<String, Arc<File>>>,
}

impl LocalBackend {
    /// A backend rooted at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend {
            root: root.into(),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn open_files(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<File>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ranged(&self, name: &str) -> Result<Arc<File>> {
        if let Some(f) = self.open_files().get(name) {
            return Ok(f.clone());
        }
        let p = self.path(name);
        let f = Arc::new(File::open(&p).map_err(|e| Error::io("opening", &p, e))?);
        let mut open = self.open_files();
        if open.len() >= OPEN_FILES {
            open.clear();
        }
        open.insert(name.to_string(), f.clone());
        Ok(f)
    }

    /// The repository folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Creates `dir` and missing parents with mode 0700. A folder it
    /// creates is made durable in its parent before this returns, so a
    /// file renamed into it survives power loss with its path.
    pub fn create_dir(dir: &Path) -> Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            if !parent.as_os_str().is_empty() {
                Self::create_dir(parent)?;
            }
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => sync_dir(
                dir.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err(Error::io("creating folder", dir, e)),
        }
    }

    fn tmp_name(target: &Path) -> PathBuf {
        let mut r = [0u8; 6];
        crate::crypto::random_bytes(&mut r);
        let mut name = target.as_os_str().to_owned();
        name.push(format!(".tmp-{}", hex::encode(r)));
        PathBuf::from(name)
    }

    fn finish(&self, tmp: &Path, target: &Path) -> Result<()> {
        fs::rename(tmp, target).map_err(|e| {
            let _ = fs::remove_file(tmp);
            Error::io("renaming into place", target, e)
        })?;
        sync_dir(target.parent().unwrap_or(&self.root))
    }
}

/// fsyncs a folder so a rename in it survives power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing folder", dir, e))
}

impl Backend for LocalBackend {
    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let p = self.path(name);
        fs::read(&p).map_err(|e| Error::io("reading", p, e))
    }

    fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        // A large range is read on a handle of its own, at its own file
        // position, into the buffer's unused room: `read_exact_at` on the
        // shared handle needs the buffer zeroed first, and zeroing (and
        // faulting in) megabytes per read showed in a restore's profile,
        // where an open costs microseconds.
        let large = len >= FRESH_HANDLE_BYTES;
        let f = match large {
            true => {
                let p = self.path(name);
                Arc::new(File::open(&p).map_err(|e| Error::io("opening", &p, e))?)
            }
            false => self.ranged(name)?,
        };
        // A range past the end is refused before its buffer is allocated and
        // zeroed: a damaged index row could ask for gigabytes.
        let size = f
            .metadata()
            .map_err(|e| Error::io("reading metadata of", self.path(name), e))?
            .len();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::io(
                "reading",
                self.path(name),
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("bytes {offset}..+{len} are past its end ({size} bytes)"),
                ),
            ));
        }
        let mut buf = crate::util::large_buffer(len as usize);
        let read = if large {
            let mut f = &*f;
            f.seek(SeekFrom::Start(offset))
                .and_then(|_| f.take(len).read_to_end(&mut buf))
                .and_then(|n| match n as u64 == len {
                    true => Ok(()),
                    false => Err(std::io::ErrorKind::UnexpectedEof.into()),
                })
        } else {
            buf.resize(len as usize, 0);
            f.read_exact_at(&mut buf, offset)
        };
        read.map_err(|e| Error::io("reading", self.path(name), e))?;
        Ok(buf)
    }

    fn size(&self, name: &str) -> Result<Option<u64>> {
        let p = self.path(name);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading metadata of", p, e)),
        }
    }

    fn write_atomic(&self, name: &str, data: &[u8]) -> Result<()> {
        self.open_files().remove(name);
        let target = self.path(name);
        if let Some(parent) = target.parent() {
            Self::create_dir(parent)?;
        }
        let tmp = Self::tmp_name(&target);
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io("writing", &tmp, e));
        }
        self.finish(&tmp, &target)
    }

    fn put_file(&self, name: &str, file: &Path) -> Result<()> {
        self.open_files().remove(name);
        let target = self.path(name);
        if let Some(parent) = target.parent() {
            Self::create_dir(parent)?;
        }
        // The file was written and fsynced by the caller inside the
        // repository (see `repo::pack::writer`), so a rename is enough.
        self.finish(file, &target)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let base = self.path(prefix);
        if !base.exists() {
            return Ok(out);
        }
        let mut stack = vec![(base, prefix.to_string())];
        while let Some((dir, rel)) = stack.pop() {
            let rd = fs::read_dir(&dir).map_err(|e| Error::io("listing", &dir, e))?;
            for ent in rd {
                let ent = ent.map_err(|e| Error::io("listing", &dir, e))?;
                let name = ent.file_name().to_string_lossy().into_owned();
                let ft = ent.file_type().map_err(|e| Error::io("listing", &dir, e))?;
                let child = format!("{rel}/{name}");
                if ft.is_dir() {
                    stack.push((ent.path(), child));
                } else if !name.contains(".tmp-") {
                    out.push(child);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.open_files().remove(name);
        let p = self.path(name);
        match fs::remove_file(&p) {
            Ok(()) => sync_dir(p.parent().unwrap_or(&self.root)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("deleting", p, e)),
        }
    }

    fn local_dir(&self) -> Option<&Path> {
        Some(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranged_reads_see_replacements_deletions_and_more_files_than_kept_open() {
        let d = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(d.path());
        b.write_atomic("data/aa/one", b"first version").unwrap();
        assert_eq!(b.read_range("data/aa/one", 6, 7).unwrap(), b"version");
        b.write_atomic("data/aa/one", b"second copy!!").unwrap();
        assert_eq!(b.read_range("data/aa/one", 0, 6).unwrap(), b"second");
        b.delete("data/aa/one").unwrap();
        let e = b.read_range("data/aa/one", 0, 1).unwrap_err();
        assert!(e.to_string().contains("one"), "{e}");
        for i in 0..OPEN_FILES * 2 + 3 {
            b.write_atomic(&format!("data/bb/{i}"), format!("object {i}").as_bytes())
                .unwrap();
        }
        for i in (0..OPEN_FILES * 2 + 3).rev() {
            let want = format!("object {i}");
            assert_eq!(
                b.read_range(&format!("data/bb/{i}"), 0, want.len() as u64)
                    .unwrap(),
                want.as_bytes()
            );
        }
        assert!(b.open_files().len() <= OPEN_FILES);
        let short = b.read_range("data/bb/1", 0, 100).unwrap_err();
        assert!(short.to_string().contains("reading"), "{short}");
        // A range a damaged index could name, refused before allocating it
        // (4 GiB zeroed would take this test's memory), as the short read
        // it would be: an UnexpectedEof, which callers report as truncation.
        for (offset, len) in [(0, u64::from(u32::MAX)), (u64::MAX, 2), (8, 1)] {
            match b.read_range("data/bb/1", offset, len).unwrap_err() {
                Error::Io { cause, .. } => {
                    assert_eq!(cause.kind(), std::io::ErrorKind::UnexpectedEof, "{cause}")
                }
                other => panic!("{other}"),
            }
        }
        assert_eq!(b.read_range("data/bb/1", 7, 1).unwrap(), b"1");
    }

    #[test]
    fn large_ranges_read_on_their_own_handle_match_the_file_exactly() {
        let d = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(d.path());
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        b.write_atomic("data/cc/pack", &data).unwrap();
        let small = FRESH_HANDLE_BYTES - 1;
        for (offset, len) in [
            (0, data.len() as u64),
            (12_345, FRESH_HANDLE_BYTES),
            (1 << 20, small),
            (data.len() as u64 - FRESH_HANDLE_BYTES, FRESH_HANDLE_BYTES),
        ] {
            let got = b.read_range("data/cc/pack", offset, len).unwrap();
            assert!(
                got[..] == data[offset as usize..(offset + len) as usize],
                "{offset}+{len}"
            );
        }
        let past = b
            .read_range("data/cc/pack", 1, data.len() as u64)
            .unwrap_err();
        match past {
            Error::Io { cause, .. } => {
                assert_eq!(cause.kind(), std::io::ErrorKind::UnexpectedEof, "{cause}")
            }
            other => panic!("{other}"),
        }
        b.delete("data/cc/pack").unwrap();
        let gone = b
            .read_range("data/cc/pack", 0, FRESH_HANDLE_BYTES)
            .unwrap_err();
        assert!(gone.to_string().contains("pack"), "{gone}");
    }
}
