//! Local-filesystem backend: temp name, write, fsync, rename, fsync folder.
//! Files are created 0600 and folders 0700.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::Backend;
use crate::error::{Error, Result};

/// A repository in a local folder.
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    /// A backend rooted at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { root: root.into() }
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
        let p = self.path(name);
        let mut f = File::open(&p).map_err(|e| Error::io("opening", &p, e))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io("seeking in", &p, e))?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf)
            .map_err(|e| Error::io("reading", &p, e))?;
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
