//! Small data blobs sealed together in groups (docs/FORMAT.md §5.5): they
//! read back in any order, prune keeps only the members still used, and
//! packs written before groups existed still read.

use std::collections::HashSet;

use opc_store::repo::pack::{pack_name, read_trailer, PACK_MAGIC_V1};
use opc_store::repo::{PackerStats, Repository};
use opc_store::{BlobKind, Id};

use crate::common::{cheap_opts, compressible_bytes, init, random_bytes, repo_dir};

/// 600 blobs of 1-12 KB (about 3.6 MB, so several groups). Each starts
/// with the same 2 KB (as conversation files share a system prompt) and
/// goes on with random bytes: alone none compresses, side by side the
/// shared part does.
fn small_blobs() -> Vec<Vec<u8>> {
    let shared = random_bytes(0, 2000);
    (0..600u64)
        .map(|i| {
            let len = 1 + (i as usize * 7919) % 12_000;
            let mut b = shared[..len.min(2000)].to_vec();
            b.extend(random_bytes(i + 1, len - b.len()));
            b
        })
        .collect()
}

/// Stores `blobs` as data and flushes; returns their ids and the packer's counts.
fn store(repo: &Repository, blobs: &[Vec<u8>]) -> (Vec<Id>, PackerStats) {
    let packer = repo.packer();
    let ids = blobs
        .iter()
        .map(|b| packer.add(BlobKind::Data, b).unwrap())
        .collect();
    packer.flush().unwrap();
    (ids, packer.stats())
}

#[test]
fn grouped_blobs_read_back_in_any_order_and_store_smaller() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    let blobs = small_blobs();
    let (ids, stats) = store(&repo, &blobs);
    // Grouped: fewer sealed objects than blobs, and the compressible half
    // stored smaller than the same content sealed one by one.
    let mut objects = HashSet::new();
    for id in &ids {
        let loc = repo.index().lookup(id).unwrap().unwrap();
        assert!(loc.group.is_some(), "a small data blob sealed alone");
        objects.insert((loc.pack, loc.offset));
    }
    assert!((3..=6).contains(&objects.len()), "{} groups", objects.len());
    let alone: u64 = blobs
        .iter()
        .zip(&ids)
        .map(|(b, id)| {
            opc_store::repo::blob::seal(
                repo.sealer(),
                BlobKind::Data,
                id,
                b,
                opc_store::compress::Codec::plain(1),
            )
            .len() as u64
        })
        .sum();
    assert!(
        stats.new_stored_bytes * 10 < alone * 8,
        "groups store {} bytes, blobs alone {alone}",
        stats.new_stored_bytes
    );
    // Every other blob backwards, then the rest forwards: the group cache
    // must never hand out another group's bytes.
    let order: Vec<usize> = (0..ids.len())
        .rev()
        .step_by(2)
        .chain((0..ids.len()).step_by(2))
        .collect();
    for i in order {
        assert!(repo.read_blob(&ids[i]).unwrap() == blobs[i], "blob {i}");
    }
    // And through a fresh repository object, with an index rebuilt from
    // the trailers alone.
    drop(repo);
    let repo = crate::common::open(&path);
    repo.rebuild_index().unwrap();
    for (id, b) in ids.iter().zip(&blobs) {
        assert!(repo.read_blob(id).unwrap() == *b);
    }
}

#[test]
fn repack_keeps_only_the_used_members_of_a_group() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    let blobs = small_blobs();
    let (ids, _) = store(&repo, &blobs);
    let old = crate::common::pack_ids(&repo);
    let keep: HashSet<Id> = ids.iter().step_by(3).copied().collect();
    let stats = repo.repack(&old, &[], &keep, &|| {}).unwrap();
    assert_eq!(stats.blobs_copied as usize, keep.len());
    for p in &old {
        assert!(!path.join(pack_name(p)).exists(), "old pack still there");
    }
    // The new packs list the kept blobs and nothing else.
    let mut listed = HashSet::new();
    for (p, _) in repo.index().packs().unwrap() {
        for e in read_trailer(repo.backend(), repo.sealer(), &pack_name(&p)).unwrap() {
            assert!(e.group.is_some());
            listed.insert(e.id);
        }
    }
    assert_eq!(listed, keep);
    for (i, (id, b)) in ids.iter().zip(&blobs).enumerate() {
        match repo.read_blob(id) {
            Ok(d) => {
                assert!(keep.contains(id), "blob {i} should be gone");
                assert!(d == *b, "blob {i} came back different");
            }
            Err(e) => {
                assert!(!keep.contains(id), "kept blob {i}: {e}");
                assert!(matches!(e, opc_store::Error::MissingBlob(_)), "{e:?}");
            }
        }
    }
}

#[test]
fn packs_written_before_groups_still_read() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    let packer = repo.packer();
    // Trees and large data blobs are sealed alone: a version 1 pack could
    // have held exactly these bytes.
    let blobs = [
        (BlobKind::Tree, compressible_bytes(1, 3000)),
        (BlobKind::Data, random_bytes(2, 70_000)),
    ];
    let ids: Vec<Id> = blobs
        .iter()
        .map(|(k, b)| packer.add(*k, b).unwrap())
        .collect();
    packer.flush().unwrap();
    drop(packer);
    let (pack, _) = repo.index().packs().unwrap()[0];
    let file = path.join(pack_name(&pack));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[..8].copy_from_slice(PACK_MAGIC_V1);
    std::fs::write(&file, &bytes).unwrap();
    let report = repo.rebuild_index().unwrap();
    assert!(report.bad_packs.is_empty(), "{report:?}");
    for (id, (_, b)) in ids.iter().zip(&blobs) {
        assert!(repo.read_blob(id).unwrap() == *b);
    }
}

/// A run read with one request opens its blobs where they lie in the read
/// buffer; a blob or group named twice in the run (a file repeating a
/// block, or several members of one group) is opened once and shared, and
/// every blob still comes back as itself.
#[test]
fn a_run_naming_blobs_and_groups_twice_reads_each_as_itself() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    let mut blobs = small_blobs();
    blobs.truncate(40);
    blobs.extend((0..3).map(|i| compressible_bytes(900 + i, 150_000)));
    let (ids, _) = store(&repo, &blobs);
    // A "file": large and small blobs, each more than once, out of order.
    let order: Vec<usize> = vec![40, 0, 1, 40, 0, 41, 2, 1, 42, 41, 5, 5, 40];
    let file_ids: Vec<Id> = order.iter().map(|&i| ids[i]).collect();
    let locs = repo.index().locate_all(&file_ids).unwrap();
    let runs = opc_store::repo::blob_runs(&locs, repo.run_bytes());
    assert!(
        runs.iter().any(|r| r.len() >= 4),
        "the blobs should share a run: {runs:?}"
    );
    let mut seen = 0;
    for run in &runs {
        let got = repo.read_blob_run(&file_ids, &locs, run).unwrap();
        assert_eq!(got.len(), run.len());
        for (k, &i) in run.iter().enumerate() {
            assert_eq!(&got[k][..], &blobs[order[i]][..], "entry {i} of the file");
            seen += 1;
        }
    }
    assert_eq!(seen, order.len());
}

/// Two threads storing pages in strict alternation (as two files, or two
/// halves of one file's batch, are stored side by side): each group holds
/// the pages of one thread only, so a restore of one file's pages does not
/// open groups full of another's. One group shared by all threads took
/// every other page from each.
#[test]
fn each_thread_fills_groups_of_its_own() {
    use std::sync::{Condvar, Mutex};
    const PAGES: usize = 400; // 1.6 MB a thread: a full group and an open one
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    let packer = repo.packer();
    let turn = (Mutex::new(0usize), Condvar::new());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let ids: Vec<Vec<Id>> = pool.broadcast(|ctx| {
        let me = ctx.index();
        (0..PAGES)
            .map(|i| {
                let mut t = turn.0.lock().unwrap();
                while *t % 2 != me {
                    t = turn.1.wait(t).unwrap();
                }
                let id = packer
                    .add(BlobKind::Data, &random_bytes((me * PAGES + i) as u64, 4096))
                    .unwrap();
                *t += 1;
                turn.1.notify_all();
                id
            })
            .collect()
    });
    packer.flush().unwrap();
    let mut owner = std::collections::HashMap::new();
    for (thread, ids) in ids.iter().enumerate() {
        for id in ids {
            let loc = repo.index().lookup(id).unwrap().unwrap();
            assert!(loc.group.is_some(), "a page sealed alone");
            let first = *owner.entry((loc.pack, loc.offset)).or_insert(thread);
            assert_eq!(first, thread, "a group holds pages of both threads");
        }
    }
    assert!(owner.len() >= 4, "{} groups", owner.len());
}
