//! The index is derived data: rebuilt from the packs and snapshot objects
//! alone it equals the index written alongside them.

use std::path::Path;

use opc_store::repo::{BlobLocation, InitOptions};
use opc_store::{BlobKind, Id, Repository};

use crate::common::{cheap_opts, compressible_bytes, init, open, random_bytes, repo_dir};

type Snapshot = (Vec<(Id, BlobLocation)>, Vec<(Id, u64)>, Vec<(Id, Vec<u8>)>);

fn several_packs() -> InitOptions {
    InitOptions {
        pack_target_size: 256 * 1024,
        ..cheap_opts()
    }
}

fn state(repo: &Repository) -> Snapshot {
    let idx = repo.index();
    (
        idx.all_blobs().unwrap(),
        idx.packs().unwrap(),
        idx.snapshots().unwrap(),
    )
}

/// Fills a repository with ~5 MB over several packs and one snapshot
/// record; returns every blob's content. Blobs up to 40 KB are sealed in
/// groups, larger ones alone, so both kinds of trailer entry are rebuilt.
fn populate(path: &Path) -> (Snapshot, Vec<(Id, Vec<u8>)>) {
    let repo = init(path, &several_packs());
    let packer = repo.packer();
    let mut blobs = Vec::new();
    for i in 0..120u64 {
        let len = 1 + (i as usize * 7919) % 40_000 + if i % 3 == 0 { 65_536 } else { 0 };
        let (kind, data) = if i % 5 == 0 {
            (BlobKind::Tree, compressible_bytes(i, len))
        } else {
            (BlobKind::Data, random_bytes(i, len))
        };
        blobs.push((packer.add(kind, &data).unwrap(), data));
    }
    packer.flush().unwrap();
    let stats = packer.stats();
    drop(packer);
    let record = br#"{"version":1,"time":"2026-01-02T03:04:05Z","host":"h"}"#;
    repo.write_object("snapshots", &Id::random(), record)
        .unwrap();
    repo.sync_snapshot_cache().unwrap();

    let s = state(&repo);
    assert!(s.1.len() >= 5, "want several packs, got {}", s.1.len());
    assert_eq!(s.0.len() as u64, stats.new_blobs);
    assert_eq!(s.2.len(), 1);
    (s, blobs)
}

fn index_files(path: &Path) -> Vec<std::path::PathBuf> {
    ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"]
        .iter()
        .map(|f| crate::common::index_dir(path).join(f))
        .collect()
}

fn check_blobs(repo: &Repository, blobs: &[(Id, Vec<u8>)]) {
    for (id, data) in blobs {
        assert!(repo.read_blob(id).unwrap() == *data);
    }
}

#[test]
fn deleted_index_is_rebuilt_on_open() {
    let (_tmp, path) = repo_dir();
    let (want, blobs) = populate(&path);
    for f in index_files(&path) {
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{}: {e}", f.display()),
        }
    }
    let repo = open(&path);
    assert!(state(&repo) == want, "auto-rebuilt index differs");
    check_blobs(&repo, &blobs);

    let report = repo.rebuild_index().unwrap();
    assert!(report.bad_packs.is_empty(), "{report:?}");
    assert_eq!(report.packs as usize, want.1.len());
    assert_eq!(report.blobs as usize, want.0.len());
    assert_eq!(report.snapshots, 1);
    assert!(state(&repo) == want, "explicitly rebuilt index differs");
}

#[test]
fn damaged_index_rows_are_restored_by_rebuild() {
    let (_tmp, path) = repo_dir();
    let (want, blobs) = populate(&path);
    {
        // Rows lost or wrong, as after a crash of a buggy writer.
        let c = rusqlite::Connection::open(crate::common::index_dir(&path).join("index.sqlite"))
            .unwrap();
        c.execute_batch(
            "DELETE FROM blobs WHERE hex(id) < '55';
             UPDATE blobs SET offset = offset + 1 WHERE hex(id) >= 'AA';
             DELETE FROM packs WHERE pid = (SELECT min(pid) FROM packs);
             DELETE FROM snapshots;",
        )
        .unwrap();
    }
    let repo = open(&path);
    assert!(state(&repo) != want, "damage did not reach the index");
    let report = repo.rebuild_index().unwrap();
    assert!(report.bad_packs.is_empty(), "{report:?}");
    assert!(state(&repo) == want, "rebuilt index differs");
    check_blobs(&repo, &blobs);
}

#[test]
fn outdated_index_schema_is_rebuilt_on_open() {
    let (_tmp, path) = repo_dir();
    let (want, blobs) = populate(&path);
    {
        let c = rusqlite::Connection::open(crate::common::index_dir(&path).join("index.sqlite"))
            .unwrap();
        c.execute_batch(
            "UPDATE meta SET value = '0' WHERE key = 'schema_version'; DELETE FROM blobs;",
        )
        .unwrap();
    }
    let repo = open(&path);
    assert!(
        state(&repo) == want,
        "index of another schema version was kept"
    );
    check_blobs(&repo, &blobs);
}

#[test]
fn rebuild_skips_a_bad_pack_and_keeps_the_rest() {
    let (_tmp, path) = repo_dir();
    let (want, blobs) = populate(&path);
    let repo = open(&path);
    let (victim, _) = want.1[0];
    let file = path.join(opc_store::repo::pack::pack_name(&victim));
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();

    let report = repo.rebuild_index().unwrap();
    assert_eq!(report.bad_packs.len(), 1, "{report:?}");
    assert!(report.bad_packs[0].0.contains(&victim.to_hex()));
    let (got_blobs, got_packs, _) = state(&repo);
    let expected: Vec<_> = want
        .0
        .iter()
        .filter(|(_, l)| l.pack != victim)
        .cloned()
        .collect();
    assert!(got_blobs == expected);
    assert_eq!(got_packs.len(), want.1.len() - 1);
    for (id, data) in &blobs {
        match repo.read_blob(id) {
            Ok(d) => assert!(d == *data),
            Err(e) => assert_eq!(e.kind(), opc_store::ErrorKind::Integrity, "{e}"),
        }
    }
}

#[test]
fn unreadable_index_file_is_replaced_on_open() {
    let (_tmp, path) = repo_dir();
    let (want, blobs) = populate(&path);
    let files = index_files(&path);
    std::fs::write(&files[0], vec![0x07; 8192]).unwrap();
    for f in &files[1..] {
        let _ = std::fs::remove_file(f);
    }
    let repo = open(&path);
    assert!(state(&repo) == want, "index rebuilt from garbage differs");
    check_blobs(&repo, &blobs);
}

#[test]
fn batch_lookups_answer_in_the_order_asked() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &several_packs());
    let packer = repo.packer();
    let data: Vec<Vec<u8>> = (0..40)
        .map(|i| random_bytes(i, 1000 + i as usize))
        .collect();
    let ids: Vec<Id> = data
        .iter()
        .map(|d| packer.add(BlobKind::Data, d).unwrap())
        .collect();
    packer.flush().unwrap();
    // Reversed, with repeats and an unknown id in the middle.
    let unknown = Id([7; 32]);
    let mut ask: Vec<Id> = ids.iter().rev().copied().collect();
    ask.extend_from_slice(&ids[..3]);
    ask.insert(10, unknown);
    let one_by_one: Vec<Option<BlobLocation>> = ask
        .iter()
        .map(|id| repo.index().lookup(id).unwrap())
        .collect();
    assert_eq!(repo.index().lookup_many(&ask).unwrap(), one_by_one);
    assert!(one_by_one[10].is_none() && one_by_one.iter().filter(|l| l.is_none()).count() == 1);

    let known: Vec<Id> = ask.iter().copied().filter(|id| *id != unknown).collect();
    let locs = repo.index().locate_all(&known).unwrap();
    let want: u64 = known
        .iter()
        .map(|id| data[ids.iter().position(|x| x == id).unwrap()].len() as u64)
        .sum();
    assert_eq!(
        locs.iter().map(|l| u64::from(l.raw_length)).sum::<u64>(),
        want
    );
    match repo.index().locate_all(&ask) {
        Err(opc_store::Error::MissingBlob(s)) => assert_eq!(s, unknown.to_hex()),
        other => panic!("{other:?}"),
    }
}
