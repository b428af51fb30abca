//! Everything in a repository is private to its owner: files 0600, folders
//! 0700, whatever the umask, including the SQLite index's side files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use opc_store::{BlobKind, Id};

use crate::common::{cheap_opts, init, open, random_bytes, repo_dir, walk};

fn wrong_modes(root: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    let root_mode = std::fs::metadata(root).unwrap().permissions().mode() & 0o7777;
    if root_mode != 0o700 {
        bad.push(format!(". {root_mode:o}"));
    }
    for (p, md) in walk(root) {
        let mode = md.permissions().mode() & 0o7777;
        let want = if md.is_dir() { 0o700 } else { 0o600 };
        if mode != want {
            bad.push(format!(
                "{} {mode:o}",
                p.strip_prefix(root).unwrap().display()
            ));
        }
    }
    bad
}

fn write_pack_and_object(repo: &opc_store::Repository) {
    let packer = repo.packer();
    packer
        .add(BlobKind::Data, &random_bytes(1, 10_000))
        .unwrap();
    packer.flush().unwrap();
    repo.write_object(
        "snapshots",
        &Id::random(),
        br#"{"time":"2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    repo.sync_snapshot_cache().unwrap();
}

#[test]
fn fresh_repository_is_private_once_closed() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    write_pack_and_object(&repo);
    drop(repo);
    assert!(walk(&path)
        .iter()
        .any(|(p, _)| p.starts_with(path.join("data"))));
    assert!(path.join("snapshots").read_dir().unwrap().next().is_some());
    assert_eq!(wrong_modes(&path), Vec::<String>::new());
}

/// SQLite gives -wal and -shm the mode the database file had when they were
/// created; `Index::open` only narrows the database to 0600 after that.
#[test]
fn fresh_repository_is_private_while_open() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    write_pack_and_object(&repo);
    let index = crate::common::index_dir(&path);
    assert!(index.join("index.sqlite-wal").exists());
    assert_eq!(wrong_modes(&path), Vec::<String>::new());
    assert_eq!(
        wrong_modes(&crate::common::cache_root(&path)),
        Vec::<String>::new()
    );
}

#[test]
fn reopened_repository_stays_private() {
    let (_tmp, path) = repo_dir();
    drop(init(&path, &cheap_opts()));
    let repo = open(&path);
    write_pack_and_object(&repo);
    assert_eq!(wrong_modes(&path), Vec::<String>::new());
}

/// Key slots written by `key add`, `passwd`, `rotate` and `reencrypt`, and
/// the re-sealed config and records, are private too.
#[test]
fn key_changes_stay_private() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    write_pack_and_object(&repo);
    let wait = std::time::Duration::ZERO;
    {
        let l = repo
            .lock(opc_store::repo::LockKind::Exclusive, "t", wait, &|_| {})
            .unwrap();
        repo.add_key_slot(&l, b"second", None, "x").unwrap();
        repo.change_password(&l, b"third", None, "").unwrap();
    }
    drop(repo);
    let repo = crate::common::open_with(&path, Some(b"third")).unwrap();
    {
        let l = repo
            .lock(opc_store::repo::LockKind::Exclusive, "t", wait, &|_| {})
            .unwrap();
        repo.rotate_keys(&l, b"third", true).unwrap();
    }
    drop(repo);
    let repo = crate::common::open_with(&path, Some(b"third")).unwrap();
    let l = repo
        .lock(opc_store::repo::LockKind::Exclusive, "t", wait, &|_| {})
        .unwrap();
    let rep = repo.reencrypt(&l, b"third", false, false, &|| ()).unwrap();
    assert!(
        rep.config && rep.snapshots == 1 && rep.packs_rewritten == 1,
        "{rep:?}"
    );
    assert_eq!(wrong_modes(&path), Vec::<String>::new());
    assert_eq!(
        wrong_modes(&crate::common::cache_root(&path)),
        Vec::<String>::new()
    );
}
