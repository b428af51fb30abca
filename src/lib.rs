//! opc-store: a content-addressed, deduplicating, encrypted backup store for
//! One-Place-Chat.
//!
//! Layers, each using only those below it (see `docs/ARCHITECTURE.md`):
//!
//! ```text
//! cli (binary only) -> demo, profile -> ops -> pipeline -> snapshot -> repo -> backend
//!                                        \-> source (what is read)
//! leaves used by all: error, id, crypto, chunker, compress, util
//! ```
//!
//! - [`backend`]: named immutable objects on a filesystem (later S3).
//! - [`repo`]: keys, config, packs, the SQLite index.
//! - [`snapshot`]: trees (directory listings) and snapshot records.
//! - [`source`]: walking and reading files with their metadata.
//! - [`pipeline`]: the write path (chunk, hash, compress, seal, pack) and read path.
//! - [`ops`]: what users ask for: snapshot, restore, ls, diff, stats, repair.
//! - [`notify`]: Slack, e-mail and webhook notifications about runs (plain
//!   settings; `profile` builds them from the configuration).
//! - [`profile`]: the only place that knows One-Place-Chat's components.

#![warn(missing_docs)]

pub mod backend;
pub mod chunker;
pub mod compress;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod id;
pub mod lanes;
pub mod notify;
pub mod ops;
pub mod pipeline;
pub mod profile;
pub mod repo;
pub mod snapshot;
pub mod source;
pub mod util;

pub use error::{Error, ErrorKind, Result};
pub use id::{BlobKind, Id};
pub use repo::Repository;

/// This host's name, for snapshot records and key slots.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}
