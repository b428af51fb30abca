//! Helpers shared by the store tests.

use std::path::{Path, PathBuf};

use opc_store::crypto::KdfParams;
use opc_store::repo::InitOptions;
use opc_store::Repository;

pub const PW: &[u8] = b"correct horse battery staple";

/// Argon2 at its cheapest: the tests exercise the repository, not the KDF.
pub fn cheap_opts() -> InitOptions {
    InitOptions {
        kdf: KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..Default::default()
    }
}

/// A temp dir plus the path of a not-yet-existing repository inside it, so
/// that `init` sees a new folder.
pub fn repo_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("repo");
    (tmp, path)
}

pub fn init(path: &Path, opts: &InitOptions) -> Repository {
    let pw = opts.encrypted.then_some(PW);
    init_with(path, pw, opts).expect("init")
}

/// The ids of every pack the index of `repo` lists.
pub fn pack_ids(repo: &Repository) -> Vec<opc_store::id::Id> {
    let packs = repo.index().packs().expect("packs");
    packs.into_iter().map(|p| p.0).collect()
}

pub fn open(path: &Path) -> Repository {
    open_with(path, Some(PW)).expect("open")
}

/// The cache folder (holding the index) used for the repository at `path`:
/// a sibling inside the same temp dir, so tests never touch ~/.cache.
pub fn cache_root(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".cache");
    PathBuf::from(s)
}

/// The folder holding the SQLite index of the repository at `path`.
pub fn index_dir(path: &Path) -> PathBuf {
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.join("repo.json")).unwrap()).unwrap();
    cache_root(path).join(marker["id"].as_str().unwrap())
}

pub fn init_with(
    path: &Path,
    pw: Option<&[u8]>,
    opts: &InitOptions,
) -> opc_store::Result<Repository> {
    Repository::init_in(path, pw, opts, &cache_root(path))
}

pub fn open_with(path: &Path, pw: Option<&[u8]>) -> opc_store::Result<Repository> {
    let backend = Box::new(opc_store::backend::LocalBackend::new(path));
    Repository::open_backend(backend, path, pw, &cache_root(path))
}

/// Deterministic incompressible bytes (SplitMix64), so a failing case can be
/// replayed from its seed.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text-like bytes that zstd shrinks a lot but that are not one repeated byte.
pub fn compressible_bytes(seed: u64, len: usize) -> Vec<u8> {
    let words: [&[u8]; 8] = [
        b"backup ", b"chunk ", b"pack ", b"index ", b"seal ", b"tree ", b"blob ", b"\n",
    ];
    let picks = random_bytes(seed, len / 4 + 1);
    let mut out = Vec::with_capacity(len + 8);
    for p in picks {
        if out.len() >= len {
            break;
        }
        out.extend_from_slice(words[(p & 7) as usize]);
    }
    out.resize(len, b'.');
    out
}

/// Every file and folder under `root` (excluding `root`), depth first.
pub fn walk(root: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for ent in std::fs::read_dir(&dir).expect("read_dir") {
            let ent = ent.expect("dir entry");
            let md = std::fs::symlink_metadata(ent.path()).expect("metadata");
            if md.is_dir() {
                stack.push(ent.path());
            }
            out.push((ent.path(), md));
        }
    }
    out
}

/// Whether `needle` occurs anywhere in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Takes a snapshot of kind "data" holding the folder `src` as its one
/// part (no sanitizing, no hooks); returns the snapshot's id in hex.
pub fn snapshot_folder(repo: &Repository, src: &Path) -> String {
    let req = opc_store::ops::SnapshotRequest {
        kind: "data".into(),
        parts: vec![opc_store::ops::PartSource {
            name: "data".into(),
            paths: vec![src.to_path_buf()],
            excludes: vec![],
            sqlite: Default::default(),
            hooks: Default::default(),
            sanitize: None,
        }],
        tags: vec![],
        retention_days: None,
        time: None,
        environment: "test".into(),
        hooks: Default::default(),
    };
    opc_store::ops::snapshot(repo, &req, &opc_store::pipeline::NoProgress)
        .unwrap()
        .id
        .to_hex()
}
