//! Chunk boundaries depend on content, not offsets: an insertion at the
//! start of a file changes only the first chunks, so dedup survives edits.
//! SQLite files are cut on page boundaries.

use std::collections::HashSet;

use opc_store::chunker::{sqlite_page_size, CdcParams, ChunkMethod};
use opc_store::Repository;
use proptest::prelude::*;

use crate::common::{cheap_opts, init, random_bytes, repo_dir};

fn chunks<'a>(repo: &Repository, data: &'a [u8], method: ChunkMethod) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut next = 0;
    repo.chunker().cut(data, method, |r| {
        // The ranges must tile the input exactly, in order.
        assert_eq!(r.start, next, "gap or overlap before {r:?}");
        next = r.end;
        out.push(&data[r]);
    });
    assert_eq!(next, data.len(), "chunks do not cover the input");
    out
}

/// How many of the original's chunks, counted from the start, do not
/// survive once `prefix` is inserted at the start. Panics if a chunk after
/// the first survivor is lost: once cut points fall back in step with the
/// original they must stay in step, or dedup would erode along the file.
fn lost_before_resync(repo: &Repository, data: &[u8], prefix: &[u8], p: CdcParams) -> usize {
    let method = ChunkMethod::Cdc(p);
    let before = chunks(repo, data, method);
    let edited: Vec<u8> = prefix.iter().chain(data).copied().collect();
    let after: HashSet<&[u8]> = chunks(repo, &edited, method).into_iter().collect();
    for c in &before[..before.len() - 1] {
        assert!(
            c.len() >= p.min as usize && c.len() <= p.max as usize,
            "{}",
            c.len()
        );
    }
    let lost = before.iter().take_while(|c| !after.contains(*c)).count();
    assert!(lost < before.len(), "cut points never came back in step");
    let relost = before[lost..]
        .iter()
        .filter(|c| !after.contains(*c))
        .count();
    assert_eq!(relost, 0, "chunks lost after cut points were back in step");
    lost
}

#[test]
fn small_cdc_survives_insertions_at_start() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    let cfg = ProptestConfig {
        cases: 16,
        ..ProptestConfig::default()
    };
    proptest!(cfg, |(seed in any::<u64>(), mib in 1usize..4, k in 1usize..20_000)| {
        let data = random_bytes(seed, mib << 20);
        let prefix = random_bytes(!seed, k);
        let lost = lost_before_resync(&repo, &data, &prefix, CdcParams::SMALL);
        // Resync is geometric in the number of chunks: a few, never dozens.
        prop_assert!(lost <= 12, "{lost} chunks lost before resync");
    });
}

#[test]
fn default_cdc_survives_insertions_at_start() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    let cfg = ProptestConfig {
        cases: 3,
        ..ProptestConfig::default()
    };
    proptest!(cfg, |(seed in any::<u64>(), k in 1usize..2_000_000)| {
        let data = random_bytes(seed, 32 << 20);
        let prefix = random_bytes(!seed, k);
        let lost = lost_before_resync(&repo, &data, &prefix, CdcParams::DEFAULT);
        prop_assert!(lost <= 12, "{lost} chunks lost before resync");
    });
}

#[test]
fn cdc_cuts_are_keyed_per_repository() {
    let (_t1, p1) = repo_dir();
    let (_t2, p2) = repo_dir();
    let (r1, r2) = (init(&p1, &cheap_opts()), init(&p2, &cheap_opts()));
    let data = random_bytes(42, 2 << 20);
    let m = ChunkMethod::Cdc(CdcParams::SMALL);
    assert_eq!(
        chunks(&r1, &data, m),
        chunks(&r1, &data, m),
        "cutting must be deterministic"
    );
    // A shared gear table would let chunk sizes fingerprint known files.
    assert_ne!(chunks(&r1, &data, m), chunks(&r2, &data, m));
}

/// A real SQLite database with `page` byte pages and some rows.
fn sqlite_db(dir: &std::path::Path, page: u32) -> Vec<u8> {
    let path = dir.join(format!("db-{page}.sqlite3"));
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(&format!(
        "PRAGMA page_size={page}; CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB);"
    ))
    .unwrap();
    for i in 0..200 {
        c.execute("INSERT INTO t(v) VALUES (?1)", [random_bytes(i, 300)])
            .unwrap();
    }
    drop(c);
    std::fs::read(&path).unwrap()
}

#[test]
fn sqlite_files_are_cut_on_pages() {
    let (tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    for page in [1024u32, 4096, 8192] {
        let db = sqlite_db(tmp.path(), page);
        assert_eq!(sqlite_page_size(&db), Some(page));
        assert_eq!(db.len() % page as usize, 0);
        let method = repo.chunker().method_for(b"some/dir/chroma.sqlite3", &db);
        assert_eq!(method, ChunkMethod::SqlitePages { pages_per_chunk: 1 });
        let cuts = chunks(&repo, &db, method);
        assert_eq!(cuts.len(), db.len() / page as usize);
        assert!(cuts.iter().all(|c| c.len() == page as usize));

        // A page rewritten in place changes exactly that page's chunk.
        let mut edited = db.clone();
        edited[3 * page as usize + 17] ^= 0xff;
        let after = chunks(&repo, &edited, method);
        let changed: Vec<usize> = (0..cuts.len()).filter(|&i| cuts[i] != after[i]).collect();
        assert_eq!(changed, vec![3]);

        let grouped = ChunkMethod::SqlitePages { pages_per_chunk: 4 };
        let mut offset = 0;
        for c in chunks(&repo, &db, grouped) {
            assert_eq!(offset % (4 * page as usize), 0);
            assert!(c.len() <= 4 * page as usize && c.len() % page as usize == 0);
            offset += c.len();
        }
    }
    // Not SQLite: the default content-defined chunking.
    let other = repo.chunker().method_for(b"notes.txt", b"plain text");
    assert_eq!(other, ChunkMethod::Cdc(CdcParams::DEFAULT));
}

#[test]
fn empty_input_has_no_chunks() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    for m in [
        ChunkMethod::Cdc(CdcParams::SMALL),
        ChunkMethod::SqlitePages { pages_per_chunk: 1 },
    ] {
        assert!(chunks(&repo, &[], m).is_empty());
    }
}
