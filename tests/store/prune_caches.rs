//! Prune through one client, then read through another client's cache:
//! blobs moved to new packs must be found again, never reported missing.
//! Also: after prune, every kept snapshot restores byte for byte and the
//! forgotten snapshot's unique data is gone from the packs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use opc_store::ops::{self, PruneOptions, RestoreDest, RestoreRequest};
use opc_store::pipeline::NoProgress;
use opc_store::repo::{InitOptions, LockKind};
use opc_store::Repository;

use crate::common::{cheap_opts, init, open_with, random_bytes, repo_dir, snapshot_folder, PW};

fn small_packs() -> InitOptions {
    InitOptions {
        pack_target_size: 256 * 1024,
        ..cheap_opts()
    }
}

fn restore(repo: &Repository, id: &str, dest: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let req = RestoreRequest {
        snapshot: id.to_string(),
        parts: vec![],
        dest: RestoreDest::Target(dest.to_path_buf()),
        force: false,
        verify: true,
        run_hooks: false,
        hooks: Default::default(),
        part_hooks: Default::default(),
    };
    ops::restore(repo, &req, &NoProgress).unwrap();
    files(&dest.join("data"))
}

fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            (p.strip_prefix(root).unwrap().to_path_buf(), data)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn prune_repacks_and_other_caches_find_moved_blobs() {
    let (tmp, path) = repo_dir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let repo = init(&path, &small_packs());
    // Snapshot 1 holds a file nobody else has; 2 and 3 share most data.
    std::fs::write(src.join("only-in-first"), random_bytes(1, 900_000)).unwrap();
    std::fs::write(src.join("shared"), random_bytes(2, 700_000)).unwrap();
    let first = snapshot_folder(&repo, &src);
    std::fs::remove_file(src.join("only-in-first")).unwrap();
    std::fs::write(src.join("second"), random_bytes(3, 300_000)).unwrap();
    let second = snapshot_folder(&repo, &src);
    let second_files = files(&src);
    std::fs::write(src.join("third"), random_bytes(4, 200_000)).unwrap();
    let third = snapshot_folder(&repo, &src);
    let third_files = files(&src);

    // A second client with its own cache, up to date before the prune.
    let other_cache = tmp.path().join("other-cache");
    let open_other = || {
        let backend = Box::new(opc_store::backend::LocalBackend::new(&path));
        Repository::open_backend(backend, &path, Some(PW), &other_cache).unwrap()
    };
    drop(open_other());

    let data_before = dir_size(&path.join("data"));
    {
        let lock = repo
            .lock(LockKind::Exclusive, "test", Duration::ZERO, &|_| {})
            .unwrap();
        let req = ops::ForgetRequest {
            ids: vec![first.clone()],
            ..Default::default()
        };
        let rep = ops::forget(&repo, &lock, &req, chrono::Local::now().fixed_offset()).unwrap();
        assert_eq!(rep.removed, vec![first.clone()]);
        let opts = PruneOptions {
            dry_run: false,
            max_unused: 0.0,
        };
        let p = ops::prune(&repo, &lock, &opts, &NoProgress).unwrap();
        assert!(p.packs_deleted + p.packs_repacked > 0, "{p:?}");
        assert!(p.bytes_freed >= 900_000, "{p:?}");
    }
    let data_after = dir_size(&path.join("data"));
    assert!(
        data_after + 850_000 < data_before,
        "space not freed: {data_before} -> {data_after}"
    );

    // Through the other cache: every kept snapshot restores exactly.
    let other = open_other();
    assert_eq!(
        restore(&other, &second, &tmp.path().join("r2")),
        second_files
    );
    assert_eq!(restore(&other, &third, &tmp.path().join("r3")), third_files);
    assert!(ops::restore(
        &other,
        &RestoreRequest {
            snapshot: first,
            parts: vec![],
            dest: RestoreDest::Target(tmp.path().join("r1")),
            force: false,
            verify: true,
            run_hooks: false,
            hooks: Default::default(),
            part_hooks: Default::default(),
        },
        &NoProgress
    )
    .is_err());
    // And through a fresh open of the pruning client's own cache.
    let again = open_with(&path, Some(PW)).unwrap();
    assert_eq!(
        restore(&again, &third, &tmp.path().join("r3b")),
        third_files
    );
}

#[test]
fn exclusive_lock_excludes_and_shared_locks_coexist() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    let a = repo
        .lock(LockKind::Shared, "a", Duration::ZERO, &|_| {})
        .unwrap();
    let b = repo
        .lock(LockKind::Shared, "b", Duration::ZERO, &|_| {})
        .unwrap();
    let told = std::cell::Cell::new(false);
    let err = repo
        .lock(
            LockKind::Exclusive,
            "prune",
            Duration::from_millis(300),
            &|h| {
                assert_eq!(h.kind, LockKind::Shared);
                told.set(true);
            },
        )
        .err()
        .expect("exclusive lock must wait for shared ones");
    assert!(told.get(), "the waiter was not told whom it waits for");
    assert_eq!(err.kind(), opc_store::ErrorKind::Locked);
    assert!(err.to_string().contains("pid"), "{err}");
    drop((a, b));
    let x = repo
        .lock(LockKind::Exclusive, "prune", Duration::ZERO, &|_| {})
        .unwrap();
    assert!(repo
        .lock(LockKind::Shared, "snap", Duration::ZERO, &|_| {})
        .is_err());
    drop(x);
    assert!(repo.locks().unwrap().is_empty(), "locks not released");
}

/// Another client synchronises while prune has written its new packs but
/// not yet deleted the old ones (their blobs' rows are then ignored as
/// duplicates), and again after the deletes: it must still find every blob.
#[test]
fn a_client_syncing_in_the_middle_of_a_prune_finds_every_blob() {
    let (tmp, path) = repo_dir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let repo = init(&path, &small_packs());
    std::fs::write(src.join("gone"), random_bytes(5, 100_000)).unwrap();
    std::fs::write(src.join("kept"), random_bytes(6, 100_000)).unwrap();
    let first = snapshot_folder(&repo, &src);
    std::fs::remove_file(src.join("gone")).unwrap();
    let second = snapshot_folder(&repo, &src);
    let kept = files(&src);
    let other_cache = tmp.path().join("other-cache");
    let open_other = || {
        let backend = Box::new(opc_store::backend::LocalBackend::new(&path));
        Repository::open_backend(backend, &path, Some(PW), &other_cache).unwrap()
    };
    drop(open_other());
    let before: Vec<PathBuf> = pack_files(&path);
    let saved = tmp.path().join("saved-packs");
    std::fs::create_dir(&saved).unwrap();
    for (i, p) in before.iter().enumerate() {
        std::fs::copy(p, saved.join(i.to_string())).unwrap();
    }
    {
        let lock = repo
            .lock(LockKind::Exclusive, "test", Duration::ZERO, &|_| {})
            .unwrap();
        let req = ops::ForgetRequest {
            ids: vec![first],
            ..Default::default()
        };
        ops::forget(&repo, &lock, &req, chrono::Local::now().fixed_offset()).unwrap();
        let opts = PruneOptions {
            dry_run: false,
            max_unused: 0.0,
        };
        let p = ops::prune(&repo, &lock, &opts, &NoProgress).unwrap();
        assert!(p.packs_repacked > 0, "the test needs a repack: {p:?}");
    }
    // Put the old packs back, as if prune had not reached its deletes yet.
    let deleted: Vec<(usize, &PathBuf)> = before
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.exists())
        .collect();
    assert!(!deleted.is_empty());
    for (i, p) in &deleted {
        std::fs::copy(saved.join(i.to_string()), p).unwrap();
    }
    drop(open_other());
    for (_, p) in &deleted {
        std::fs::remove_file(p).unwrap();
    }
    let other = open_other();
    assert_eq!(restore(&other, &second, &tmp.path().join("r")), kept);
}

/// Two clients that do not yet see each other's packs store the same file
/// twice; the index keeps one copy. Prune must count the other as waste
/// even in a pack it has to keep for its other blobs, and free it.
#[test]
fn prune_frees_the_second_copy_concurrent_writers_stored() {
    let (tmp, path) = repo_dir();
    let a = init(&path, &cheap_opts());
    let other_cache = tmp.path().join("other-cache");
    let open_b = || {
        let backend = Box::new(opc_store::backend::LocalBackend::new(&path));
        Repository::open_backend(backend, &path, Some(PW), &other_cache).unwrap()
    };
    let b = open_b();
    let (src_a, src_b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (dir, own) in [(&src_a, 2), (&src_b, 3)] {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("shared"), random_bytes(1, 200_000)).unwrap();
        std::fs::write(dir.join("own"), random_bytes(own, 200_000)).unwrap();
    }
    let (snap_a, snap_b) = (snapshot_folder(&a, &src_a), snapshot_folder(&b, &src_b));
    let (files_a, files_b) = (files(&src_a), files(&src_b));
    let data_before = dir_size(&path.join("data"));
    let opts = PruneOptions {
        dry_run: false,
        max_unused: 0.10,
    };
    {
        let lock = a
            .lock(LockKind::Exclusive, "test", Duration::ZERO, &|_| {})
            .unwrap();
        let p = ops::prune(&a, &lock, &opts, &NoProgress).unwrap();
        assert_eq!(p.packs_repacked, 1, "{p:?}");
        assert!(p.bytes_freed >= 200_000, "{p:?}");
        let again = PruneOptions {
            dry_run: true,
            ..opts.clone()
        };
        let p = ops::prune(&a, &lock, &again, &NoProgress).unwrap();
        assert_eq!(p.bytes_freed + p.bytes_unused_kept, 0, "{p:?}");
    }
    let data_after = dir_size(&path.join("data"));
    assert!(
        data_after + 195_000 < data_before,
        "the second copy was kept: {data_before} -> {data_after}"
    );
    // Both snapshots restore, through either client's cache.
    let b = open_b();
    for (repo, name) in [(&a, "a"), (&b, "b")] {
        let dest = tmp.path().join(format!("restore-{name}"));
        assert_eq!(restore(repo, &snap_a, &dest.join("1")), files_a);
        assert_eq!(restore(repo, &snap_b, &dest.join("2")), files_b);
    }
}

fn pack_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(repo.join("data")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        n += if md.is_dir() {
            dir_size(&e.path())
        } else {
            md.len()
        };
    }
    n
}
