//! A snapshot after an earlier one reads only what changed (same size,
//! mtime, ctime and inode means unchanged) and stores only new content.

use std::path::Path;

use serde_json::Value;

use crate::support::{du, random_bytes, write, Env};

/// 60 files of 1-20 KB over 15 folders plus a 4 MiB file (hardlinked).
fn medium_tree(root: &Path) {
    for d in 0..15u64 {
        for f in 0..4u64 {
            let len = 1_000 + ((d * 7 + f * 13) % 20) as usize * 1_000;
            write(
                &root.join(format!("dir{d}/sub/file{f}.txt")),
                &random_bytes(d * 100 + f, len),
            );
        }
    }
    write(&root.join("large.dat"), &random_bytes(999, 4 << 20));
    std::os::unix::fs::symlink("large.dat", root.join("link")).unwrap();
    std::fs::hard_link(root.join("large.dat"), root.join("dir0/large-hardlink")).unwrap();
}

fn summary(report: &Value) -> &Value {
    &report["snapshot"]["summary"]
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v:#}"))
}

fn setup() -> (Env, std::path::PathBuf, Value) {
    let env = Env::with_repo();
    let src = env.path("data/app");
    medium_tree(&src);
    env.components(&[("app", &[&src])]);
    let first = env.snapshot(&[]);
    let s = summary(&first);
    assert_eq!(num(s, "files"), 62);
    // Hardlinked content should be read once (61), but both links may be
    // read when the walk reaches them in parallel; see the report.
    assert!((61..=62).contains(&num(s, "files_read")), "{s:#}");
    assert!(num(s, "new_bytes") > (4 << 20) + 500_000, "{s:#}");
    (env, src, first)
}

#[test]
fn unchanged_data_is_neither_read_nor_stored_again() {
    let (env, _src, first) = setup();
    let size_before = du(&env.repo);

    let second = env.snapshot(&[]);
    let s = summary(&second);
    assert_eq!(num(s, "files"), 62);
    assert_eq!(num(s, "bytes"), num(summary(&first), "bytes"));
    assert_eq!(num(s, "files_read"), 0, "{s:#}");
    assert_eq!(num(s, "bytes_read"), 0, "{s:#}");
    // At most re-encoded trees; unchanged trees encode identically and
    // deduplicate, so this is normally 0.
    assert!(num(s, "new_bytes") < 4096, "{s:#}");
    assert!(num(s, "stored_bytes") < 8192, "{s:#}");
    assert_eq!(
        second["parents"]["app"], first["id"],
        "the first snapshot is the parent"
    );

    // The repository grows by the snapshot record and index rows only
    // (measured: under 1 KiB; an index page or two is allowed).
    let growth = du(&env.repo) - size_before;
    assert!(
        growth < 32 * 1024,
        "repository grew by {growth} bytes for an unchanged tree"
    );
}

#[test]
fn only_changed_files_are_read_and_only_new_content_is_stored() {
    let (env, src, _) = setup();
    // Appended: read again, stores its new tail chunk.
    let mut big = std::fs::read(src.join("dir3/sub/file1.txt")).unwrap();
    big.extend_from_slice(&random_bytes(7, 5000));
    write(&src.join("dir3/sub/file1.txt"), &big);
    // Same content, new mtime: read again, nothing new stored.
    crate::support::tree::set_mtime(&src.join("dir5/sub/file2.txt"), 1_700_000_000_123_456_789);
    // A copy of existing content under a new name: read, deduplicated.
    std::fs::copy(src.join("large.dat"), src.join("copy-of-large.dat")).unwrap();

    let third = env.snapshot(&[]);
    let s = summary(&third);
    assert_eq!(num(s, "files"), 63);
    assert_eq!(num(s, "files_read"), 3, "{s:#}");
    let len = |rel: &str| std::fs::metadata(src.join(rel)).unwrap().len();
    let read = len("dir3/sub/file1.txt") + len("dir5/sub/file2.txt") + len("copy-of-large.dat");
    assert_eq!(num(s, "bytes_read"), read, "{s:#}");
    // The appended file is one chunk (below the 512 KiB minimum) and so is
    // stored again whole, plus the trees on the changed paths.
    let new = num(s, "new_bytes");
    assert!(
        new >= big.len() as u64 && new < big.len() as u64 + 16_384,
        "{s:#}"
    );
}

/// Pack files holding file content and no tree, per this host's index
/// (current after each of its commands).
fn data_only_packs(env: &Env) -> Vec<std::path::PathBuf> {
    let c = rusqlite::Connection::open(env.index_dir().join("index.sqlite")).unwrap();
    let mut q = c
        .prepare(
            "SELECT lower(hex(p.id)) FROM packs p JOIN blobs b ON b.pid = p.pid
             GROUP BY p.pid HAVING max(b.kind) = 0",
        )
        .unwrap();
    let ids: Vec<String> = q
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    crate::support::files_under(&env.repo.join("data"))
        .into_iter()
        .filter(|p| ids.iter().any(|id| p.ends_with(id)))
        .collect()
}

/// The unchanged-file shortcut reuses the parent's blob ids without a
/// lookup per blob while no blob has left the index. A pack deleted behind
/// the repository's back drops its blobs from the index when it is next
/// opened: the following snapshot must then read the affected file again
/// rather than point at content that is gone, and restore byte for byte.
#[test]
fn a_pack_lost_after_a_trusted_snapshot_makes_the_next_one_store_again() {
    let env = Env::new();
    // 1 MiB packs. The small files are stored by a snapshot of their own
    // first, so no pack mixes their content with the large file's (blobs
    // reach the open pack in whatever order the threads finish). The pack
    // lost is the largest holding no tree: the 4 MiB random file (512 KiB
    // to 8 MiB chunks) closes at least one pack before the trees are
    // written. No hardlink here: a second copy of the same content would
    // make the loss depend on which copy the index kept.
    env.cmd()
        .args(crate::support::INIT_FAST)
        .args(["--pack-size-mib", "1"])
        .assert()
        .code(0);
    let src = env.path("data/app");
    for f in 0..5u64 {
        write(&src.join(format!("d/f{f}")), &random_bytes(f, 3_000));
    }
    env.components(&[("app", &[&src])]);
    env.snapshot(&[]);
    write(&src.join("large.dat"), &random_bytes(7, 4 << 20));
    let first = env.snapshot(&[]);
    assert_eq!(num(summary(&first), "files_read"), 1);
    let second = env.snapshot(&[]);
    assert_eq!(num(summary(&second), "files_read"), 0);
    let mut packs = data_only_packs(&env);
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let lost = packs.last().expect("a pack without trees");
    let lost_len = std::fs::metadata(lost).unwrap().len();
    assert!(lost_len > 500_000, "{lost_len}");
    std::fs::remove_file(lost).unwrap();

    let third = env.snapshot(&[]);
    let s = summary(&third);
    assert_eq!(
        num(s, "files_read"),
        1,
        "the damaged file is read again: {s:#}"
    );
    assert!(
        num(s, "stored_bytes") + 100_000 > lost_len,
        "what was lost is stored again: {s:#}"
    );
    let id = third["id"].as_str().unwrap();
    let out = env.path("out");
    env.restore(&[&id[..8], "--target", out.to_str().unwrap()]);
    crate::support::manifest::assert_same_tree(&src, &out.join("app"));
    // And the snapshot after that is again fast: nothing is read.
    let fourth = env.snapshot(&[]);
    assert_eq!(num(summary(&fourth), "files_read"), 0);
}

/// `file` of 2 MB in a fresh repository (`init` with `extra`), snapshotted,
/// then 64 bytes rewritten in place at ten places far apart, snapshotted
/// again; returns the new plaintext bytes of the second snapshot (file
/// blocks and trees) after checking that the file restores exactly.
fn bytes_after_rewrites_in_place(file: &str, extra: &[&str]) -> u64 {
    let env = Env::new();
    env.cmd()
        .args(crate::support::INIT_FAST)
        .args(extra)
        .assert()
        .code(0);
    let seg = env.path("data/seg");
    let mut data = random_bytes(11, 2_000_000);
    write(&seg.join(file), &data);
    env.components(&[("chromadb", &[&seg])]);
    env.snapshot(&[]);
    for k in 0..10 {
        // Inside one 4 KiB block each.
        let at = 4096 * (5 + 45 * k) + 1000;
        data[at..at + 64].fill(0xab);
    }
    write(&seg.join(file), &data);
    let second = env.snapshot(&[]);
    let target = env.path("restored");
    env.restore(&["latest", "--target", target.to_str().unwrap()]);
    assert!(
        std::fs::read(target.join("chromadb").join(file)).unwrap() == data,
        "{file} restored differently"
    );
    num(summary(&second), "new_bytes")
}

/// hnswlib's level-0 file (fixed-size records whose links are rewritten in
/// place) is cut in fixed 4 KiB blocks by default, so each rewrite costs
/// one block; other `.bin` files keep content-defined 16 KiB chunks, which
/// cost several times as much. `--chunk-rule GLOB=SIZE` sets fixed blocks
/// for any file.
#[test]
fn records_rewritten_in_place_store_only_their_blocks() {
    // The second snapshot's trees list every block id of the file again.
    let trees = |block: u64| 2_000_000 / block * 34 + 4096;
    let level0 = bytes_after_rewrites_in_place("data_level0.bin", &[]);
    assert!(level0 <= 10 * 4096 + trees(4096), "{level0} new bytes");
    let cdc = bytes_after_rewrites_in_place("links.bin", &[]);
    assert!(cdc > 3 * 10 * 4096, "content-defined {cdc}, fixed {level0}");
    let ruled = bytes_after_rewrites_in_place("records.dat", &["--chunk-rule", "*.dat=8"]);
    assert!(ruled <= 10 * 8192 + trees(8192), "{ruled} new bytes");
    assert!(ruled > 10 * 8192, "{ruled} new bytes: not 8 KiB blocks");
}
