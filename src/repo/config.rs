//! The repository's plaintext marker (`repo.json`) and its sealed config
//! (`config`). Format: `docs/FORMAT.md` §3.

use serde::{Deserialize, Serialize};

use crate::chunker::ChunkingPolicy;

/// The format version this build writes and the highest it reads.
/// Version 2 adds frames compressed over their byte lanes (`docs/FORMAT.md`
/// §5.1); a version 1 repository is read and written as version 1.
pub const FORMAT_VERSION: u32 = 3;

/// `repo.json`: readable without a password, so that a wrong folder, a
/// newer version or the encryption mode can be reported before any key work.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepoMarker {
    /// Always `opc-store`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// Random repository id (hex).
    pub id: String,
    /// `xchacha20poly1305` or `none`.
    pub encryption: String,
}

/// The sealed repository config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// Format version (repeated under authentication).
    pub version: u32,
    /// Repository id (hex), equal to the marker's.
    pub id: String,
    /// How files are cut into chunks.
    pub chunking: ChunkingPolicy,
    /// zstd level for blobs (0 disables compression).
    pub compression_level: i32,
    /// A pack is closed once it reaches this many bytes.
    pub pack_target_size: u64,
}

/// Options for a new repository.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// False for `--encryption none`.
    pub encrypted: bool,
    /// Argon2id cost.
    pub kdf: crate::crypto::KdfParams,
    /// Chunking policy to record.
    pub chunking: ChunkingPolicy,
    /// zstd level.
    pub compression_level: i32,
    /// Pack target size in bytes.
    pub pack_target_size: u64,
    /// Format version to write, 1 to [`FORMAT_VERSION`]: a repository
    /// that builds before version 2 must still read is created at 1.
    pub format_version: u32,
    /// Blob-id and chunker secrets taken from another repository
    /// (`init --copy-chunker-params-from`), so both cut and name blobs
    /// alike and `copy` between them skips re-cutting; `None`: new ones.
    pub id_keys: Option<SharedIdKeys>,
}

/// The blob-id key and chunker secret of a repository, to create another
/// one whose blob ids equal its (see [`InitOptions::id_keys`]). Zeroed on
/// drop, never printed.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct SharedIdKeys {
    pub(crate) chunk_id: [u8; 32],
    pub(crate) chunker: [u8; 32],
}

impl std::fmt::Debug for SharedIdKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedIdKeys(..)")
    }
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            encrypted: true,
            kdf: Default::default(),
            chunking: Default::default(),
            // Level 1: a first backup is CPU-bound and zstd is most of it.
            // On the benchmark data level 3 made the repository 0.4% smaller
            // (809 vs 812 MB) for 13% more CPU: small blobs already used
            // level 1, and large ones are mostly incompressible.
            compression_level: 1,
            // 32 MiB: few enough files for a 1 TB repo (~30k), small enough
            // that prune repacks little and S3 uploads retry cheaply.
            pack_target_size: 32 * 1024 * 1024,
            format_version: FORMAT_VERSION,
            id_keys: None,
        }
    }
}
