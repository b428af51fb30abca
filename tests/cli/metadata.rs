//! A generated tree with every kind of entry goes through `snapshot` and
//! `restore`, and the result is compared entry by entry with the source:
//! type, mode, size, content hash, mtime (ns), link target, hardlink
//! groups, xattrs, uid/gid, device numbers.

use std::path::Path;

use crate::support::manifest::{assert_same, manifest, Manifest};
use crate::support::tree::{self, Features, GID, SPARSE_LEN, UID};
use crate::support::Env;

/// Builds the tree as component `app` and takes one snapshot of it.
fn snapshot_everything(env: &Env) -> (Features, serde_json::Value) {
    let src = env.path("data/app");
    let features = tree::everything(&src);
    env.components(&[("app", &[&src])]);
    let report = env.snapshot(&[]);
    (features, report)
}

/// Checks, besides the generic comparison, that the cases the comparison
/// relies on are really in the tree, so a generator change cannot make the
/// round trip vacuous.
fn assert_cases_present(m: &Manifest, f: Features) {
    let kinds: Vec<_> = m.entries.values().map(|e| e.kind).collect();
    for k in ["file", "dir", "symlink", "fifo"] {
        assert!(kinds.contains(&k), "no {k} in the tree");
    }
    let group: Vec<Vec<u8>> = ["dir/hard-b", "dir/sub/hard-c", "hard-a"]
        .map(|s| s.as_bytes().to_vec())
        .to_vec();
    assert!(
        m.links.contains(&group),
        "hardlink group missing: {:?}",
        m.links
    );
    assert_eq!(m.links.len(), 2, "exactly two hardlink groups");
    assert_eq!(m.get("setgid-dir").mode, 0o2775);
    assert_eq!(m.get("setuid").mode, 0o4755);
    assert_eq!(m.get("mode-0640").mode, 0o640);
    assert_eq!(
        m.get("dangling").target.as_deref(),
        Some(&b"does/not/exist"[..])
    );
    assert!(m.entries.contains_key(&b"caf\xe9.txt"[..]));
    assert!(m.entries.contains_key(&b"line\nbreak"[..]));
    assert!(m.entries.keys().any(|k| k.len() > 1200), "no long path");
    assert_eq!(m.get("regular.txt").mtime_ns, -1_500_000_001);
    assert_ne!(
        m.get("big.dat").mtime_ns % 1_000,
        0,
        "mtime without nanoseconds"
    );
    if f.xattrs {
        assert_eq!(
            m.get("regular.txt").xattrs[&b"user.comment"[..]],
            b"a comment"
        );
        assert_eq!(m.get("empty").xattrs[&b"user.empty-value"[..]], b"");
        assert!(m.get("dir").xattrs.contains_key(&b"user.folder"[..]));
    }
    if f.root {
        let e = m.get("owned/file");
        assert_eq!((e.uid, e.gid), (UID, GID));
        assert_eq!((m.get("owned/link").uid, m.get("owned").gid), (UID, GID));
        assert_eq!(m.get("null-dev").kind, "chardev");
        assert_eq!(m.get("null-dev").rdev, nix::sys::stat::makedev(1, 3));
        assert_eq!(m.get("block-dev").kind, "blockdev");
    }
}

/// The restored sparse file keeps most of its holes. Today only chunks
/// that are entirely zero become holes, so each 4 KiB data region costs a
/// whole chunk (up to 8 MiB) of allocated blocks; this bound holds for
/// that. The issue's stricter "few blocks" is `sparse_file_restores_with_few_blocks`.
fn assert_sparse(restored: &Manifest) {
    let blocks = restored.blocks[&b"sparse.img"[..]];
    assert_eq!(restored.get("sparse.img").size, Some(SPARSE_LEN));
    assert!(
        blocks * 512 <= SPARSE_LEN / 4,
        "sparse.img restored with {} KiB allocated of {} KiB: holes were filled",
        blocks / 2,
        SPARSE_LEN / 1024
    );
}

#[test]
fn every_kind_of_entry_round_trips_to_a_target() {
    let env = Env::with_repo();
    let (features, report) = snapshot_everything(&env);
    let s = &report["snapshot"]["summary"];
    assert_eq!(s["warnings"], 0, "{report:#}");
    assert_eq!(report["warnings"].as_array().map(Vec::len), Some(0));

    let src = manifest(&env.path("data/app"));
    assert_cases_present(&src, features);
    let files = src.entries.values().filter(|e| e.kind == "file").count() as u64;
    assert_eq!(
        s["files"], files,
        "every path of a regular file counts, hardlinks included"
    );

    let out = env.path("out");
    env.restore(&["latest", "--target", out.to_str().unwrap()]);
    let restored = manifest(&out.join("app"));
    assert_same(&src, &restored);
    assert_sparse(&restored);
}

#[test]
fn every_kind_of_entry_round_trips_in_place() {
    let env = Env::with_repo();
    snapshot_everything(&env);
    let src_path = env.path("data/app");
    let src = manifest(&src_path);
    // Remove the source entirely: in-place restore recreates it without
    // needing --force, since there is nothing to clobber.
    rm_rf(&src_path);
    env.restore(&["latest", "--in-place"]);
    let restored = manifest(&src_path);
    assert_same(&src, &restored);
    assert_sparse(&restored);
}

#[test]
fn restore_without_verification_gives_the_same_tree() {
    let env = Env::with_repo();
    snapshot_everything(&env);
    let out = env.path("out");
    env.restore(&["latest", "--no-verify", "--target", out.to_str().unwrap()]);
    assert_same(
        &manifest(&env.path("data/app")),
        &manifest(&out.join("app")),
    );
}

/// The issue: a 64 MiB file with two small data regions must restore
/// with few blocks (here: at most 1 MiB allocated for 8 KiB of data).
#[test]
fn sparse_file_restores_with_few_blocks() {
    let env = Env::with_repo();
    let src = env.path("data/sparse");
    crate::support::tree::sparse_file(&src.join("sparse.img"));
    env.components(&[("sparse", &[&src])]);
    env.snapshot(&[]);
    let out = env.path("out");
    env.restore(&["latest", "--target", out.to_str().unwrap()]);
    let m = manifest(&out.join("sparse"));
    assert_same(&manifest(&src), &m);
    let blocks = m.blocks[&b"sparse.img"[..]];
    assert!(
        blocks * 512 <= 1 << 20,
        "{} KiB allocated for 8 KiB of data",
        blocks / 2
    );
}

/// 20 nested 250-byte names: beyond PATH_MAX (4096 bytes).
fn deep_rel() -> std::path::PathBuf {
    (0..20)
        .map(|i| format!("{i:02}{}", "d".repeat(248)))
        .collect()
}

/// A path deeper than PATH_MAX cannot be named in one system call. Until
/// the tool walks with `openat`, such an entry must at least be reported
/// (exit 1, a warning naming the problem) while everything else is kept.
#[test]
fn path_beyond_path_max_is_reported_not_silently_lost() {
    let env = Env::with_repo();
    let src = env.path("data/deep");
    mkdir_deep(&src, &deep_rel());
    crate::support::write(&src.join("shallow.txt"), b"kept\n");
    env.components(&[("deep", &[&src])]);
    let out = env
        .cmd()
        .args(["snapshot", "--json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let report = crate::support::parse_json(&out.stdout);
    let warnings = report["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{report:#}");
    assert!(
        warnings[0].as_str().unwrap().contains("File name too long"),
        "{report:#}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));
    let target = env.path("out");
    env.restore(&["latest", "--target", target.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(target.join("deep/shallow.txt")).unwrap(),
        b"kept\n"
    );
}

/// Creates `base/rel/leaf` one folder at a time through directory file
/// descriptors (Python's `dir_fd`): no call sees the whole path, which is
/// beyond PATH_MAX, and the test needs no unsafe code.
fn mkdir_deep(base: &Path, rel: &Path) {
    std::fs::create_dir_all(base).unwrap();
    let comps: Vec<&str> = rel
        .components()
        .map(|c| c.as_os_str().to_str().unwrap())
        .collect();
    let script = r#"
import os, sys
fd = os.open('.', os.O_RDONLY)
for c in sys.argv[1:]:
    os.mkdir(c, dir_fd=fd)
    fd = os.open(c, os.O_RDONLY, dir_fd=fd)
f = os.open('leaf', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
os.write(f, b'bottom\n')
"#;
    let st = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&comps)
        .current_dir(base)
        .status()
        .expect("python3 runs");
    assert!(st.success(), "building the deep tree failed");
}

pub fn rm_rf(p: &Path) {
    std::fs::remove_dir_all(p).unwrap_or_else(|e| panic!("rm -r {}: {e}", p.display()));
}
