//! The write path (chunk -> keyed hash -> dedup check -> compress -> seal ->
//! pack) and the read path shared by restore and verification.
//!
//! Threads and memory: directory entries are processed in parallel on the
//! rayon pool (one thread per core). A file is read sequentially into one
//! window of [`WINDOW_BATCH`] plus a maximum chunk; the chunks cut
//! in it are hashed, compressed and sealed in parallel as slices of the
//! window, then appended to the shared packer. Memory is bounded by a small
//! multiple of (threads x window): each file in flight holds its window and
//! the sealed copies being appended; a worker waiting on a window's sealing
//! may start another file. Packs stream to disk. Nothing grows with data
//! size.
//! Files are read with `read(2)`, not mmap: a live database truncated while
//! mapped would raise SIGBUS and kill the backup.

mod archive;
mod file;
mod preview;
mod restore;
mod sanitize;

mod scan;
mod sparse;

pub use archive::{ArchiveResult, Archiver};
pub use preview::{preview, Preview};
pub use restore::{RestoreOptions, RestoreStats, Restorer};

pub use file::{store_stream, StreamError, WINDOW_BATCH};
pub use restore::{clear_entry, set_mtime};
pub use scan::scan_totals;
pub use sparse::{write_sparse, write_sparse_parts};

/// Plaintext bytes `copy` groups into one batch of blobs to store.
pub const BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Receives progress from long operations. Implementations must be cheap
/// and thread-safe; the library never prints.
pub trait Progress: Sync {
    /// Work discovered (before or while it is done).
    fn add_total(&self, _files: u64, _bytes: u64) {}
    /// Work done.
    fn advance(&self, _files: u64, _bytes: u64) {}
    /// A non-fatal problem (also collected in the operation's report).
    fn warn(&self, _msg: &str) {}
    /// Whether totals are wanted (a pre-scan costs a metadata walk).
    fn wants_totals(&self) -> bool {
        false
    }
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {}

/// The entry name of each configured path in a part's root tree: its base
/// name, with -2, -3, ... added when two paths share one. Snapshots and
/// previews name entries alike through this.
pub(crate) fn entry_names(paths: &[std::path::PathBuf]) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let mut names: Vec<Vec<u8>> = Vec::with_capacity(paths.len());
    for path in paths {
        let base = path
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_else(|| b"root".to_vec());
        let mut name = base.clone();
        let mut k = 1;
        while names.contains(&name) {
            k += 1;
            name = [base.as_slice(), format!("-{k}").as_bytes()].concat();
        }
        names.push(name);
    }
    names
}
