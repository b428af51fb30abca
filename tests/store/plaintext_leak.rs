//! No stored content reaches the repository folder in the clear. The
//! unencrypted control proves the scan would see a leak.

use std::path::Path;

use opc_store::repo::InitOptions;
use opc_store::{BlobKind, Id, Repository};

use crate::common::{cheap_opts, contains, init, random_bytes, repo_dir, walk, PW};

const MARKER: &[u8] = b"OPC-LEAK-MARKER-5e1f0c9a77d2";

/// Files under `root` whose bytes contain `needle`.
/// Files holding `needle` in the repository at `root` and in its local
/// cache (the index); cache files are reported as `cache:<path>`.
fn files_containing(root: &Path, needle: &[u8]) -> Vec<String> {
    let scan = |dir: &Path, prefix: &str| -> Vec<String> {
        if !dir.exists() {
            return Vec::new();
        }
        walk(dir)
            .into_iter()
            .filter(|(_, md)| md.is_file())
            .filter(|(p, _)| contains(&std::fs::read(p).unwrap(), needle))
            .map(|(p, _)| format!("{prefix}{}", p.strip_prefix(dir).unwrap().display()))
            .collect()
    };
    let mut found = scan(root, "");
    found.extend(scan(&crate::common::cache_root(root), "cache:"));
    found
}

/// Random bytes with the marker every `every` bytes; zstd cannot shrink
/// the random part, so an unencrypted blob keeps the marker verbatim.
fn sprinkled(seed: u64, len: usize, every: usize) -> Vec<u8> {
    let mut d = random_bytes(seed, len);
    for at in (0..len.saturating_sub(MARKER.len())).step_by(every) {
        d[at..at + MARKER.len()].copy_from_slice(MARKER);
    }
    d
}

/// Stores the marker every way the repository layer stores data, and
/// returns the open repository.
fn store_markers(path: &Path, opts: &InitOptions) -> Repository {
    let repo = init(path, opts);
    let packer = repo.packer();
    let repeated: Vec<u8> = MARKER.repeat(20_000);
    packer.add(BlobKind::Data, &repeated).unwrap();
    packer
        .add(BlobKind::Data, &sprinkled(1, 300_000, 4096))
        .unwrap();
    packer
        .add(BlobKind::Data, &sprinkled(2, 100_000, 100_000))
        .unwrap();
    packer.add(BlobKind::Data, MARKER).unwrap();
    let mut tree = b"entry name: ".to_vec();
    tree.extend_from_slice(MARKER);
    packer.add(BlobKind::Tree, &tree).unwrap();
    packer.flush().unwrap();
    drop(packer);
    let mut obj = random_bytes(3, 5000);
    obj[100..100 + MARKER.len()].copy_from_slice(MARKER);
    repo.write_object("objects", &Id::random(), &obj).unwrap();
    repo
}

#[test]
fn encrypted_repository_holds_no_plaintext() {
    let (_tmp, path) = repo_dir();
    let repo = store_markers(&path, &cheap_opts());
    // While open the SQLite WAL holds recent index pages: scan it too.
    assert_eq!(files_containing(&path, MARKER), Vec::<String>::new());
    drop(repo);
    let repo = crate::common::open_with(&path, Some(PW)).unwrap();
    drop(repo);
    assert_eq!(files_containing(&path, MARKER), Vec::<String>::new());
    // The password itself must not be stored either.
    assert_eq!(files_containing(&path, PW), Vec::<String>::new());
}

#[test]
fn unencrypted_control_shows_the_marker() {
    let (_tmp, path) = repo_dir();
    let repo = store_markers(
        &path,
        &InitOptions {
            encrypted: false,
            ..cheap_opts()
        },
    );
    drop(repo);
    let found = files_containing(&path, MARKER);
    assert!(found.iter().any(|f| f.starts_with("data/")), "{found:?}");
    assert!(found.iter().any(|f| f.starts_with("objects/")), "{found:?}");
}

/// A repository holding one snapshot record with the marker as host and tag.
fn repo_with_marked_snapshot(path: &Path) {
    let repo = init(path, &cheap_opts());
    let marker = String::from_utf8(MARKER.to_vec()).unwrap();
    // Records name hosts, paths and tags: metadata worth hiding too.
    let record = format!(
        r#"{{"version":1,"time":"2026-01-02T03:04:05Z","host":"{marker}","tags":["{marker}"]}}"#
    );
    repo.write_object("snapshots", &Id::random(), record.as_bytes())
        .unwrap();
    repo.sync_snapshot_cache().unwrap();
    assert_eq!(repo.index().snapshots().unwrap().len(), 1);
}

#[test]
fn snapshot_objects_are_sealed() {
    let (_tmp, path) = repo_dir();
    repo_with_marked_snapshot(&path);
    let found = files_containing(&path, MARKER);
    let outside_index: Vec<_> = found.iter().filter(|f| !f.starts_with("cache:")).collect();
    assert!(outside_index.is_empty(), "{found:?}");
}

#[test]
fn snapshot_records_stay_sealed_everywhere() {
    let (_tmp, path) = repo_dir();
    repo_with_marked_snapshot(&path);
    assert_eq!(files_containing(&path, MARKER), Vec::<String>::new());
}
