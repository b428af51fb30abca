//! Layer 0: where repository files live. A backend stores named immutable
//! objects and knows nothing of crypto or formats.
//!
//! Contract every implementation keeps:
//! - `write_atomic` makes the object visible under its name only once all of
//!   its bytes are durable; a crash leaves either no object or all of it.
//! - Names are `/`-separated relative paths built from `[0-9a-z._-]`.
//! - `list` returns the names of complete objects only.
//! - `delete` of a missing object is not an error.
//! - A missing object read is an `Error::Io` of kind
//!   `NotFound`.

mod local;
mod s3;
mod url;

pub use local::{sync_dir, LocalBackend};
pub use s3::{S3Backend, PART_SIZE};
pub use url::{S3Settings, S3Url, S3_SCHEME};

use std::path::Path;

use crate::error::Result;

/// Storage for repository objects.
pub trait Backend: Send + Sync {
    /// Reads a whole object.
    fn read(&self, name: &str) -> Result<Vec<u8>>;
    /// Reads `len` bytes at `offset`.
    fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// The size of an object, or `None` when it does not exist.
    fn size(&self, name: &str) -> Result<Option<u64>>;
    /// Stores an object durably and atomically (see the module contract).
    fn write_atomic(&self, name: &str, data: &[u8]) -> Result<()>;
    /// Moves a finished local file into the store as `name`, durably; the
    /// local file is gone afterwards, whether this succeeded or not.
    /// Large packs go this way so they are never held in memory.
    fn put_file(&self, name: &str, file: &Path) -> Result<()>;
    /// Names of all objects under `prefix` (a folder such as `data`).
    fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Deletes an object.
    fn delete(&self, name: &str) -> Result<()>;
    /// The repository's own local folder, when it is on a local
    /// filesystem (temporary packs are written there and renamed in);
    /// `None` for remote storage, where they are assembled in the cache.
    fn local_dir(&self) -> Option<&Path>;
}

/// Whether `location` names remote storage (`s3:...`) rather than a folder.
pub fn is_remote(location: &Path) -> bool {
    location.to_str().is_some_and(|s| s.starts_with(S3_SCHEME))
}

/// The backend for a repository location: a local folder, or
/// `s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]` with `s3` for the settings.
/// Connecting to S3 makes one request, so a wrong endpoint, refused
/// credentials or a missing bucket are reported here.
pub fn open(location: &Path, s3: &S3Settings) -> Result<Box<dyn Backend>> {
    match location.to_str().filter(|s| s.starts_with(S3_SCHEME)) {
        Some(url) => Ok(Box::new(S3Backend::connect(&S3Url::parse(url)?, s3)?)),
        None => Ok(Box::new(LocalBackend::new(location))),
    }
}
