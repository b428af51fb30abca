//! Reading one file's content into blobs.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use fastcdc::v2020::{FastCDC, Normalization, StreamCDC};

use super::BATCH_BYTES;
use crate::chunker::{ChunkMethod, Chunker};
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};
use crate::repo::Packer;

/// What reading a file produced.
pub(crate) struct FileContent {
    pub ids: Vec<Id>,
    pub bytes: u64,
    /// Set when size or mtime moved while the file was read.
    pub changed: bool,
}

/// Why a file could not be stored: its source (skip it, warn) or the
/// repository (stop the snapshot: nothing after it could be trusted).
pub(crate) enum FileError {
    /// Reading the source failed.
    Source(Error),
    /// Writing to the repository failed.
    Repo(Error),
}

impl From<Error> for FileError {
    fn from(e: Error) -> Self {
        FileError::Source(e)
    }
}

/// Stores the content of the file at `path` and returns its blob ids.
pub(crate) fn store_file(
    path: &Path,
    rel: &[u8],
    chunker: &Chunker,
    seed: u64,
    packer: &Packer<'_>,
    progress: &dyn Fn(u64),
) -> std::result::Result<FileContent, FileError> {
    let io = |e| Error::io("reading", path, e);
    // O_NOFOLLOW: the entry was a regular file when listed; if it was
    // swapped for a symlink since, refuse rather than back up its target.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .map_err(io)?;
    let before = f.metadata().map_err(io)?;
    let (ids, total) = store_stream(&mut f, before.len(), rel, chunker, seed, packer, progress)
        .map_err(|e| match e {
            StreamError::Read(e) => FileError::Source(io(e)),
            StreamError::Store(e) => FileError::Repo(e),
        })?;
    let after = f.metadata().map_err(io)?;
    let changed = after.len() != before.len()
        || after.mtime() != before.mtime()
        || after.mtime_nsec() != before.mtime_nsec()
        || total != before.len();
    Ok(FileContent {
        ids,
        bytes: total,
        changed,
    })
}

/// Where storing a stream failed: reading it, or storing what was read.
pub enum StreamError {
    /// The source could not be read.
    Read(std::io::Error),
    /// The repository refused a blob.
    Store(Error),
}

impl StreamError {
    /// Turns a read failure into a library error with `f`.
    pub fn map_err(self, f: impl FnOnce(std::io::Error) -> Error) -> Error {
        match self {
            StreamError::Read(e) => f(e),
            StreamError::Store(e) => e,
        }
    }
}

/// Chunks and stores everything `reader` yields, `size_hint` bytes
/// expected; `rel` (the path in the snapshot) chooses the chunking rule.
/// Returns the blob ids in order and the byte count.
pub fn store_stream(
    reader: &mut dyn Read,
    size_hint: u64,
    rel: &[u8],
    chunker: &Chunker,
    seed: u64,
    packer: &Packer<'_>,
    progress: &dyn Fn(u64),
) -> std::result::Result<(Vec<Id>, u64), StreamError> {
    let mut head = [0u8; 100];
    let head_len = read_full(reader, &mut head).map_err(StreamError::Read)?;
    let method = chunker.method_for(rel, &head[..head_len]);
    let mut ids = Vec::new();
    let mut total = 0u64;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut batch_bytes = 0usize;
    let flush = |batch: &mut Vec<Vec<u8>>, ids: &mut Vec<Id>| -> Result<()> {
        ids.extend(packer.add_batch(BlobKind::Data, batch)?);
        let n: usize = batch.iter().map(Vec::len).sum();
        progress(n as u64);
        batch.clear();
        Ok(())
    };
    let mut push = |chunk: Vec<u8>, batch: &mut Vec<Vec<u8>>, ids: &mut Vec<Id>| -> Result<()> {
        total += chunk.len() as u64;
        batch_bytes += chunk.len();
        batch.push(chunk);
        if batch_bytes >= BATCH_BYTES {
            flush(batch, ids)?;
            batch_bytes = 0;
        }
        Ok(())
    };
    let store = StreamError::Store;
    // Re-chain the header bytes in front of the rest of the stream.
    let mut reader = (&head[..head_len]).chain(reader);
    match method {
        ChunkMethod::SqlitePages { pages_per_chunk } => {
            let pages = pages_per_chunk.max(1) as usize;
            let page = crate::chunker::sqlite_page_size(&head[..head_len]).unwrap_or(4096) as usize;
            let step = page * pages;
            loop {
                let mut buf = vec![0u8; step];
                let n = read_full(&mut reader, &mut buf).map_err(StreamError::Read)?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                push(buf, &mut batch, &mut ids).map_err(store)?;
                if n < step {
                    break;
                }
            }
        }
        ChunkMethod::Cdc(p) if size_hint <= p.max as u64 => {
            // Small file: one read, cut in memory (no max-size stream buffer).
            let mut data = Vec::with_capacity(size_hint as usize);
            reader.read_to_end(&mut data).map_err(StreamError::Read)?;
            let cdc = FastCDC::with_level_and_seed(
                &data,
                p.min,
                p.avg,
                p.max,
                Normalization::Level1,
                seed,
            );
            for c in cdc {
                push(
                    data[c.offset..c.offset + c.length].to_vec(),
                    &mut batch,
                    &mut ids,
                )
                .map_err(store)?;
            }
        }
        ChunkMethod::Cdc(p) => {
            let cdc = StreamCDC::with_level_and_seed(
                reader,
                p.min,
                p.avg,
                p.max,
                Normalization::Level1,
                seed,
            );
            for c in cdc {
                let c = c.map_err(|e| match e {
                    fastcdc::v2020::Error::IoError(e) => StreamError::Read(e),
                    other => StreamError::Read(std::io::Error::other(other.to_string())),
                })?;
                push(c.data, &mut batch, &mut ids).map_err(store)?;
            }
        }
    }
    flush(&mut batch, &mut ids).map_err(store)?;
    Ok((ids, total))
}

fn read_full(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
