//! Layer 1: the repository. Config, key slots, packs, the index and stored
//! objects (snapshot records) over a [`Backend`]. Knows blobs and packs, not
//! trees or files.

pub mod blob;
mod cache;
pub mod config;
mod groups;
pub use groups::{BlobBytes, GroupHold};
pub mod index;
mod keys;
mod lock;
pub mod pack;
mod packer;
mod rebuild;
mod reencrypt;
mod repack;
mod runs;
mod verify;

pub use cache::cache_root;
pub use config::{InitOptions, RepoConfig, RepoMarker, SharedIdKeys, FORMAT_VERSION};
pub use index::{BlobLocation, Index, IndexTotals};
pub use keys::{RotateReport, SlotInfo};
pub use lock::{LockInfo, LockKind, RepoLock};
pub use packer::{
    group_level, Packer, PackerStats, GROUP_MEMBER_MAX, GROUP_MIN_LEVEL, GROUP_TARGET,
};
pub use rebuild::RebuildReport;
pub use reencrypt::ReencryptReport;
pub use repack::RepackStats;
pub use runs::{blob_runs, LOCAL_RUN_BYTES, RUN_BYTES, RUN_GAP};
pub use verify::{PackCheck, PackProblem};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::{Backend, LocalBackend};
use crate::chunker::Chunker;
use crate::crypto::{KeySlot, Keyring, MasterKeys, Sealer};
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};

const MARKER: &str = "repo.json";
const CONFIG: &str = "config";
const CONFIG_AAD: &[u8] = b"opc-store config v1";

/// An open repository.
pub struct Repository {
    backend: Arc<dyn Backend>,
    /// The newest generation's master keys (the chunk-id and chunker keys
    /// are the same in every generation).
    keys: MasterKeys,
    keyring: Keyring,
    /// The slot the password opened (`None` for unencrypted repositories).
    opened: Option<KeySlot>,
    /// Key-slot names seen at open, kept current by this process's own key
    /// changes: a lock taken after someone else changed them is refused.
    slot_names: std::sync::Mutex<Vec<String>>,
    sealer: Sealer,
    config: RepoConfig,
    chunker: Chunker,
    index: Index,
    tmp_dir: PathBuf,
    cache_dir: PathBuf,
    encrypted: bool,
    /// Recently read pack windows (remote storage only), see `runs`.
    windows: runs::Windows,
    /// Recently opened groups, see `groups`.
    groups: groups::GroupCache,
}

fn read_marker(backend: &dyn Backend, root: &Path) -> Result<RepoMarker> {
    if backend.size(MARKER)?.is_none() {
        return Err(Error::NotARepository(root.to_path_buf()));
    }
    let m: RepoMarker = serde_json::from_slice(&backend.read(MARKER)?)
        .map_err(|e| Error::corrupt(format!("{}/{MARKER}", root.display()), e.to_string()))?;
    if m.format != "opc-store" {
        return Err(Error::NotARepository(root.to_path_buf()));
    }
    if m.version > FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            found: m.version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(m)
}

impl Repository {
    /// Creates a repository in the local folder `path` (new or empty), with
    /// its cache under [`cache_root`].
    pub fn init(path: &Path, password: Option<&[u8]>, opts: &InitOptions) -> Result<Repository> {
        Self::init_in(path, password, opts, &cache_root())
    }

    /// [`Repository::init`] with an explicit cache root.
    pub fn init_in(
        path: &Path,
        password: Option<&[u8]>,
        opts: &InitOptions,
        cache: &Path,
    ) -> Result<Repository> {
        if path.join(MARKER).exists() {
            return Err(Error::AlreadyExists(path.to_path_buf()));
        }
        if path.exists() {
            let mut rd = std::fs::read_dir(path).map_err(|e| Error::io("reading", path, e))?;
            if rd.next().is_some() {
                return Err(Error::NotEmpty(path.to_path_buf()));
            }
        }
        // Checked before anything is created (init_backend checks again).
        Chunker::new(opts.chunking.clone(), 0)?;
        LocalBackend::create_dir(path)?;
        crate::util::set_mode(path, 0o700)?;
        for d in ["data", "keys", "snapshots", "tmp", "locks"] {
            LocalBackend::create_dir(&path.join(d))?;
        }
        Self::init_backend(
            Box::new(LocalBackend::new(path)),
            path,
            password,
            opts,
            cache,
        )
    }

    /// Creates a repository on any backend (e.g. S3), which must hold no
    /// objects yet; `display` names it in messages.
    pub fn init_backend(
        backend: Box<dyn Backend>,
        display: &Path,
        password: Option<&[u8]>,
        opts: &InitOptions,
        cache: &Path,
    ) -> Result<Repository> {
        if backend.size(MARKER)?.is_some() {
            return Err(Error::AlreadyExists(display.to_path_buf()));
        }
        if backend.local_dir().is_none() && !backend.list("")?.is_empty() {
            return Err(Error::NotEmpty(display.to_path_buf()));
        }
        let mut keys = MasterKeys::generate();
        if let Some(k) = &opts.id_keys {
            keys.chunk_id = k.chunk_id;
            keys.chunker = k.chunker;
        }
        let slot = if opts.encrypted {
            let pw = password
                .ok_or_else(|| Error::Invalid("an encrypted repository needs a password".into()))?;
            KeySlot::create(&keys, pw, opts.kdf)?
        } else {
            KeySlot::plain(&keys)
        };
        if !(1..=FORMAT_VERSION).contains(&opts.format_version) {
            return Err(Error::Invalid(format!(
                "format version {} is not one this build writes: 1 to {FORMAT_VERSION}",
                opts.format_version
            )));
        }
        if opts.format_version < 2 && !opts.chunking.is_format1() {
            return Err(Error::Invalid(
                "fixed-size chunking rules need format version 2; use content-defined rules for a version 1 repository".into(),
            ));
        }
        // Chunker::new validates the policy before anything is written.
        Chunker::new(opts.chunking.clone(), keys.gear_seed())?;
        let id = Id::random().to_hex()[..32].to_string();
        let config = RepoConfig {
            version: opts.format_version,
            id: id.clone(),
            chunking: opts.chunking.clone(),
            compression_level: opts.compression_level,
            pack_target_size: opts.pack_target_size,
        };
        let sealer = if opts.encrypted {
            Sealer::encrypted(&keys.encryption)
        } else {
            Sealer::Plain
        };
        backend.write_atomic(&format!("keys/{}", slot.id), &json(&slot))?;
        let cfg = serde_json::to_vec(&config).expect("config serializes");
        backend.write_atomic(CONFIG, &sealer.seal(CONFIG_AAD, &cfg))?;
        let marker = RepoMarker {
            format: "opc-store".into(),
            version: opts.format_version,
            id,
            encryption: if opts.encrypted {
                "xchacha20poly1305"
            } else {
                "none"
            }
            .into(),
        };
        // The marker goes last: a folder is a repository only once its keys
        // and config are durable.
        backend.write_atomic(MARKER, &json(&marker))?;
        // Keys are at hand: no second Argon2 derivation.
        let opened = opts.encrypted.then_some(slot);
        Self::open_unlocked(
            backend,
            display,
            (Keyring::from_master(&keys), opened),
            opts.encrypted,
            cache,
        )
    }

    /// Whether the repository at `path` is encrypted (needs a password),
    /// read from its plaintext marker.
    pub fn is_encrypted_at(path: &Path) -> Result<bool> {
        Self::is_encrypted_on(&LocalBackend::new(path), path)
    }

    /// Whether the repository on `backend` is encrypted; `display` names
    /// it in errors.
    pub fn is_encrypted_on(backend: &dyn Backend, display: &Path) -> Result<bool> {
        let m = read_marker(backend, display)?;
        Ok(m.encryption != "none")
    }

    /// Opens the repository in the local folder `path`, with its cache
    /// under [`cache_root`].
    pub fn open(path: &Path, password: Option<&[u8]>) -> Result<Repository> {
        Self::open_backend(
            Box::new(LocalBackend::new(path)),
            path,
            password,
            &cache_root(),
        )
    }

    /// Opens a repository on any backend; `display` names it in errors.
    pub fn open_backend(
        backend: Box<dyn Backend>,
        display: &Path,
        password: Option<&[u8]>,
        cache: &Path,
    ) -> Result<Repository> {
        let marker = read_marker(backend.as_ref(), display)?;
        // Checked before any key work: a downgraded repository must not be
        // opened without the password it used to need.
        cache::prepare(cache, &marker)?;
        let encrypted = marker.encryption != "none";
        let unlocked = keys::unlock(backend.as_ref(), encrypted, password)?;
        Self::open_unlocked(backend, display, unlocked, encrypted, cache)
    }

    fn open_unlocked(
        backend: Box<dyn Backend>,
        display: &Path,
        (keyring, opened): (Keyring, Option<KeySlot>),
        encrypted: bool,
        cache: &Path,
    ) -> Result<Repository> {
        let marker = read_marker(backend.as_ref(), display)?;
        let cache_dir = cache::prepare(cache, &marker)?;
        let slot_names = std::sync::Mutex::new(backend.list("keys")?);
        let keys = keyring.master();
        let sealer = if encrypted {
            keyring.sealer()
        } else {
            Sealer::Plain
        };
        let sealed = backend.read(CONFIG)?;
        let plain = sealer
            .open(CONFIG_AAD, &sealed)
            .ok_or_else(|| Error::Authentication {
                what: "repository config".into(),
            })?;
        let config: RepoConfig = serde_json::from_slice(&plain)
            .map_err(|e| Error::corrupt("repository config", e.to_string()))?;
        if config.version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: config.version,
                supported: FORMAT_VERSION,
            });
        }
        if config.id != marker.id {
            return Err(Error::corrupt(
                "repository config",
                "id differs from repo.json",
            ));
        }
        let chunker = Chunker::new(config.chunking.clone(), keys.gear_seed())?;
        // Packs are assembled beside the repository when it is a local
        // folder (then renamed in), else in this host's cache and uploaded.
        let tmp_dir = match backend.local_dir() {
            Some(local) => local.join("tmp"),
            None => cache_dir.join("tmp"),
        };
        LocalBackend::create_dir(&tmp_dir)?;
        let index_path = cache_dir.join("index.sqlite");
        let (index, fresh) = match Index::open(&index_path) {
            Ok(x) => x,
            Err(Error::Index { .. }) => (Self::reset_index(&index_path)?, true),
            Err(e) => return Err(e),
        };
        let mut repo = Repository {
            backend: Arc::from(backend),
            keys,
            keyring,
            opened,
            slot_names,
            sealer,
            config,
            chunker,
            index,
            tmp_dir,
            cache_dir,
            encrypted,
            windows: runs::Windows::default(),
            groups: groups::GroupCache::default(),
        };
        // A missing or outdated index is rebuilt; an existing one is brought
        // up to date with packs and snapshots written elsewhere. Failing
        // that, the index is derived data: drop it and rebuild.
        let refreshed = if fresh {
            repo.rebuild_index().map(|_| ())
        } else {
            repo.sync_packs()
                .and_then(|_| repo.sync_snapshot_cache().map(|_| ()))
        };
        match refreshed {
            Ok(()) => {}
            Err(Error::Index { .. }) => {
                repo.index = Self::reset_index(&index_path)?;
                repo.rebuild_index()?;
            }
            Err(e) => return Err(e),
        }
        Ok(repo)
    }

    /// Deletes an unusable index and opens a fresh, empty one.
    fn reset_index(path: &Path) -> Result<Index> {
        tracing::warn!(
            "index {} is unusable; rebuilding it from the packs",
            path.display()
        );
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        Ok(Index::open(path)?.0)
    }

    /// The local cache folder of this repository (holds the index).
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The config.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The compiled chunking policy.
    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }

    /// The index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Whether objects are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// The sealer for objects.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The keyed id of `data`.
    pub fn blob_id(&self, data: &[u8]) -> Id {
        self.keys.blob_id(data)
    }

    /// The FastCDC gear seed derived from the chunker key.
    pub fn chunker_seed(&self) -> u64 {
        self.keys.gear_seed()
    }

    /// The blob-id key and chunker secret, for `init
    /// --copy-chunker-params-from` (see [`InitOptions::id_keys`]).
    pub fn shared_id_keys(&self) -> SharedIdKeys {
        SharedIdKeys {
            chunk_id: self.keys.chunk_id,
            chunker: self.keys.chunker,
        }
    }

    /// Whether `other` names and cuts blobs exactly as this repository
    /// does (same id key, chunker secret and chunking policy), so a blob id
    /// means the same content in both.
    pub fn same_ids_as(&self, other: &Repository) -> bool {
        self.keys.chunk_id == other.keys.chunk_id
            && self.keys.chunker == other.keys.chunker
            && self.config.chunking == other.config.chunking
    }

    /// The backend, shared (for uploads that run beside the caller).
    pub(crate) fn backend_shared(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }

    /// Folder for temporary files: on the repository's filesystem for a
    /// local repository, in the cache folder for remote storage.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp_dir
    }

    /// A writer that packs new blobs; call [`Packer::flush`] before relying
    /// on them.
    pub fn packer(&self) -> Packer<'_> {
        Packer::new(self)
    }

    /// Reads, authenticates and decompresses a blob.
    pub fn read_blob(&self, id: &Id) -> Result<Vec<u8>> {
        let loc = self
            .index
            .lookup(id)?
            .ok_or_else(|| Error::MissingBlob(id.to_hex()))?;
        self.read_blob_at(id, &loc)
    }

    /// Reads a blob from a known location.
    pub fn read_blob_at(&self, id: &Id, loc: &BlobLocation) -> Result<Vec<u8>> {
        Ok(self.blob_bytes_at(id, loc, None)?.into_vec())
    }

    /// [`Repository::read_blob_at`] without copying a member out of its
    /// opened group; a member's group is looked for in `hold` first.
    pub(crate) fn blob_bytes_at(
        &self,
        id: &Id,
        loc: &BlobLocation,
        hold: Option<&GroupHold>,
    ) -> Result<BlobBytes> {
        if loc.group.is_some() {
            return self.member_bytes(id, loc, hold);
        }
        let sealed = self.read_pack_range(id, loc, loc.offset, loc.length as u64)?;
        blob::open_owned(
            &self.sealer,
            |d| self.keys.blob_id(d),
            loc.kind,
            id,
            sealed,
            loc.raw_length as usize,
            &|| format!("blob {} in pack {}", id.short(), loc.pack),
        )
        .map(BlobBytes::Owned)
    }

    /// Hands the content of the blob at `loc` to `sink`, a piece at a time
    /// as it is opened ([`blob::open_streamed`]: an error after pieces were
    /// handed over means they must be discarded). For a blob stored alone;
    /// a group's member, opened with its group, comes in one piece. Callers
    /// take this way for blobs that [`BlobLocation::streams`].
    pub fn stream_blob(
        &self,
        id: &Id,
        loc: &BlobLocation,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        if loc.group.is_some() {
            return sink(&self.blob_bytes_at(id, loc, None)?);
        }
        let sealed = self.read_pack_range(id, loc, loc.offset, loc.length as u64)?;
        blob::open_streamed(
            &self.sealer,
            self.keys.blob_hasher(),
            loc.kind,
            id,
            sealed,
            loc.raw_length as usize,
            &|| format!("blob {} in pack {}", id.short(), loc.pack),
            sink,
        )
    }

    /// Stores a sealed object (snapshot record, ...) under `dir/<id>`;
    /// returns the sealed bytes as stored.
    pub fn write_object(&self, dir: &str, id: &Id, plain: &[u8]) -> Result<Vec<u8>> {
        let sealed = self.sealer.seal(&object_aad(dir, id), plain);
        self.backend
            .write_atomic(&format!("{dir}/{}", id.to_hex()), &sealed)?;
        Ok(sealed)
    }

    /// Reads a sealed object stored by [`Repository::write_object`].
    pub fn read_object(&self, dir: &str, id: &Id) -> Result<Vec<u8>> {
        let sealed = self.backend.read(&format!("{dir}/{}", id.to_hex()))?;
        self.open_object(dir, id, &sealed)
    }

    /// Opens the sealed bytes of object `dir/<id>`.
    pub fn open_object(&self, dir: &str, id: &Id, sealed: &[u8]) -> Result<Vec<u8>> {
        self.sealer
            .open(&object_aad(dir, id), sealed)
            .ok_or_else(|| Error::Authentication {
                what: format!("{dir}/{}", id.to_hex()),
            })
    }

    /// Ids of the objects stored under `dir`.
    pub fn list_objects(&self, dir: &str) -> Result<Vec<Id>> {
        Ok(self
            .backend
            .list(dir)?
            .iter()
            .filter_map(|n| Id::from_hex(n.rsplit('/').next()?))
            .collect())
    }

    /// Key-slot ids.
    pub fn key_slots(&self) -> Result<Vec<String>> {
        Ok(self
            .backend
            .list("keys")?
            .into_iter()
            .map(|n| n.trim_start_matches("keys/").to_string())
            .collect())
    }

    /// Convenience: whether `kind` blob `id` is stored.
    pub fn has_blob(&self, id: &Id) -> Result<bool> {
        self.index.contains(id)
    }

    #[doc(hidden)]
    /// The blob kind of a stored blob (for tests and check).
    pub fn blob_kind(&self, id: &Id) -> Result<Option<BlobKind>> {
        Ok(self.index.lookup(id)?.map(|l| l.kind))
    }
}

fn object_aad(dir: &str, id: &Id) -> Vec<u8> {
    let mut a = b"opc-store object v1 ".to_vec();
    a.extend_from_slice(dir.as_bytes());
    a.push(b'/');
    a.extend_from_slice(&id.0);
    a
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).expect("serializes");
    b.push(b'\n');
    b
}
