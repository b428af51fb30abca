//! Writes one pack: blobs streamed to a temp file beside the repository,
//! trailer sealed at the end, fsynced, then moved into place. Memory use is
//! one blob at a time, not the pack.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::format::{encode_trailer, GroupSlot, PackEntry, PACK_MAGIC, TRAILER_AAD};
use crate::backend::Backend;
use crate::crypto::Sealer;
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};

/// A finished pack in its local temporary file, not yet in the backend.
pub struct SealedPack {
    /// The pack id (BLAKE3 of its bytes).
    pub id: Id,
    /// Its blobs.
    pub entries: Vec<PackEntry>,
    /// Its size in bytes.
    pub size: u64,
    /// The local temporary file.
    pub path: PathBuf,
    // Still open and not yet fsynced: the fsync runs in `put`, on the
    // upload thread, so the threads filling the next pack never wait on it.
    file: File,
}

impl SealedPack {
    /// Moves the pack into the backend (a rename for a local repository,
    /// an upload for remote storage); the temporary file is gone after.
    pub fn put(&self, backend: &dyn Backend) -> Result<()> {
        // A local pack is renamed into the repository: its bytes must be
        // durable first. An upload reads the file; the copy is what counts.
        let synced = match backend.local_dir() {
            Some(_) => self
                .file
                .sync_all()
                .map_err(|e| Error::io("syncing", &self.path, e)),
            None => Ok(()),
        };
        let r = synced.and_then(|()| backend.put_file(&super::pack_name(&self.id), &self.path));
        if r.is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
        r
    }
}

/// A pack being written.
pub struct PackWriter {
    path: PathBuf,
    out: BufWriter<File>,
    hasher: blake3::Hasher,
    entries: Vec<PackEntry>,
    size: u64,
}

impl PackWriter {
    /// Starts a pack in `tmp_dir`.
    pub fn create(tmp_dir: &Path) -> Result<PackWriter> {
        let mut r = [0u8; 8];
        crate::crypto::random_bytes(&mut r);
        let path = tmp_dir.join(format!("pack-{}.tmp", hex::encode(r)));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("creating", &path, e))?;
        let mut w = PackWriter {
            path,
            out: BufWriter::with_capacity(1 << 20, f),
            hasher: blake3::Hasher::new(),
            entries: Vec::new(),
            size: 0,
        };
        w.write(PACK_MAGIC)?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.out
            .write_all(b)
            .map_err(|e| Error::io("writing", &self.path, e))?;
        self.hasher.update(b);
        self.size += b.len() as u64;
        Ok(())
    }

    /// Appends a sealed blob.
    pub fn add(&mut self, kind: BlobKind, id: Id, sealed: &[u8], raw_length: u32) -> Result<()> {
        self.append(kind, &[(id, raw_length)], sealed, false)
    }

    /// Appends a sealed group (`docs/FORMAT.md` §5.5) holding `members`
    /// (id, plaintext length), in the order of their bytes in the group.
    pub fn add_group(
        &mut self,
        kind: BlobKind,
        members: &[(Id, u32)],
        sealed: &[u8],
    ) -> Result<()> {
        self.append(kind, members, sealed, true)
    }

    fn append(
        &mut self,
        kind: BlobKind,
        members: &[(Id, u32)],
        sealed: &[u8],
        grouped: bool,
    ) -> Result<()> {
        let offset = self.size;
        self.write(sealed)?;
        let total = members.iter().map(|m| m.1).sum();
        let mut inner = 0;
        for &(id, raw_length) in members {
            self.entries.push(PackEntry {
                kind,
                id,
                offset,
                length: sealed.len() as u32,
                raw_length,
                group: grouped.then_some(GroupSlot { inner, total }),
            });
            inner += raw_length;
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of blobs so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Seals the trailer, makes the pack durable and moves it into the
    /// backend. Returns the pack id, its entries and its size.
    pub fn finish(
        self,
        sealer: &Sealer,
        backend: &dyn Backend,
    ) -> Result<(Id, Vec<PackEntry>, u64)> {
        let sealed = self.seal(sealer)?;
        sealed.put(backend)?;
        Ok((sealed.id, sealed.entries, sealed.size))
    }

    /// Writes the sealed trailer; the pack is then ready for
    /// [`SealedPack::put`], which makes it durable and stores it.
    pub fn seal(self, sealer: &Sealer) -> Result<SealedPack> {
        let path = self.path.clone();
        let r = self.seal_inner(sealer);
        if r.is_err() {
            // A pack that could not be made durable (disk full, I/O error)
            // is nobody's: do not leave its space taken until a prune.
            let _ = std::fs::remove_file(&path);
        }
        r
    }

    fn seal_inner(mut self, sealer: &Sealer) -> Result<SealedPack> {
        let trailer = sealer.seal(TRAILER_AAD, &encode_trailer(&self.entries));
        self.write(&trailer)?;
        self.write(&(trailer.len() as u32).to_le_bytes())?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io("writing", &self.path, e.into_error()))?;
        let id = Id(*self.hasher.finalize().as_bytes());
        Ok(SealedPack {
            id,
            entries: self.entries,
            size: self.size,
            path: self.path,
            file,
        })
    }

    /// Discards an unfinished pack.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
