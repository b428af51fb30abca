//! Files of more than `INLINE_IDS` blobs keep their blob ids in list blobs
//! of `LIST_IDS` (format 3), not in their folder's listing. Every command
//! that reads a file's content follows the lists: restore, export, diff,
//! check, prune, copy; and a file of exactly `INLINE_IDS` blobs stays
//! inline.

use std::path::{Path, PathBuf};

use opc_store::repo::Repository;
use opc_store::snapshot::{self as snap, read_list, Node, Tree, INLINE_IDS, LIST_IDS};

use crate::support::{files_under, write, Env, INIT_FAST, PASSWORD};

/// `n` blocks of 1 KiB, each distinct (a counter) and order-sensitive.
fn blocks(seed: u64, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n * 1024];
    for (i, b) in out.chunks_exact_mut(1024).enumerate() {
        b[..8].copy_from_slice(&(seed << 32 | i as u64).to_le_bytes());
        b[8..].fill((i % 251) as u8);
    }
    out
}

fn open(env: &Env, repo: &Path) -> Repository {
    let backend = Box::new(opc_store::backend::LocalBackend::new(repo));
    Repository::open_backend(backend, repo, Some(PASSWORD.as_bytes()), &env.path("cache"))
        .expect("open repository")
}

/// The nodes of the `app` folder in the latest snapshot.
fn app_nodes(repo: &Repository) -> Vec<Node> {
    let snaps = snap::list(repo).expect("snapshots");
    let (_, s) = snaps.last().expect("a snapshot");
    let root = Tree::decode(&repo.read_blob(&s.parts[0].tree).unwrap()).unwrap();
    let app = root
        .get(b"app")
        .expect("app entry")
        .subtree
        .expect("a folder");
    Tree::decode(&repo.read_blob(&app).unwrap()).unwrap().nodes
}

fn node<'a>(nodes: &'a [Node], name: &str) -> &'a Node {
    nodes
        .iter()
        .find(|n| n.name == name.as_bytes())
        .expect(name)
}

fn find(dir: &Path, name: &str) -> PathBuf {
    files_under(dir)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|f| f == name))
        .unwrap_or_else(|| panic!("{name} not under {}", dir.display()))
}

/// A test folder whose repository cuts `*.dat` files into 1 KiB blocks,
/// so a few MB make a file of thousands of blobs.
fn env_cutting_dat_files_into_blocks() -> Env {
    let env = Env::new();
    env.cmd()
        .args(INIT_FAST)
        .args(["--chunk-rule", "*.dat=1"])
        .assert()
        .code(0);
    env
}

fn same_bytes(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert_eq!(x.len(), y.len(), "{} vs {}", a.display(), b.display());
    assert!(x == y, "{} differs from {}", b.display(), a.display());
}

#[test]
fn large_files_keep_their_ids_in_lists_and_every_command_follows_them() {
    let env = env_cutting_dat_files_into_blocks();
    let src = env.path("data/app");
    write(&src.join("big.dat"), &blocks(1, LIST_IDS + 1));
    write(&src.join("edge.dat"), &blocks(2, INLINE_IDS));
    write(&src.join("mid.dat"), &blocks(3, INLINE_IDS + 1));
    write(&src.join("small.txt"), b"small");
    env.components(&[("app", &[&src])]);
    let first = crate::support::short_id(&env.snapshot(&[]));

    // The stored form: lists of LIST_IDS and 1 ids, in file order.
    {
        let repo = open(&env, &env.repo);
        let nodes = app_nodes(&repo);
        let big = node(&nodes, "big.dat");
        assert!(big.content.is_empty(), "big.dat inline");
        assert_eq!(big.lists.len(), 2);
        let lens: Vec<usize> = big
            .lists
            .iter()
            .map(|l| read_list(&repo, l).unwrap().len())
            .collect();
        assert_eq!(lens, [LIST_IDS, 1]);
        let edge = node(&nodes, "edge.dat");
        assert_eq!((edge.content.len(), edge.lists.len()), (INLINE_IDS, 0));
        let mid = node(&nodes, "mid.dat");
        assert_eq!((mid.content.len(), mid.lists.len()), (0, 1));
        assert_eq!(
            read_list(&repo, &mid.lists[0]).unwrap().len(),
            INLINE_IDS + 1
        );
    }

    let out = env.path("out");
    env.restore(&["latest", "--target", out.to_str().unwrap(), "--verify"]);
    crate::support::manifest::assert_same_tree(&src, &out.join("app"));

    // One block rewritten in place: diff names big.dat only, and the
    // new snapshot stores that block, one list and a small listing (the
    // inline ids of edge.dat, 128 KiB), not the other list.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(src.join("big.dat"))
            .unwrap();
        f.write_all_at(&[0xEE; 1024], 5 * 1024).unwrap();
    }
    let second = env.snapshot(&[]);
    let new_bytes = second["snapshot"]["summary"]["new_bytes"].as_u64().unwrap();
    assert!(
        new_bytes < 1024 + 32 * LIST_IDS as u64 + 34 * INLINE_IDS as u64 + 16 * 1024,
        "{new_bytes} new bytes for one changed block"
    );
    let changes = env.json(&["diff", &first, "latest"]);
    let paths: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["app/big.dat"], "{changes:#}");

    // Forget the first snapshot, prune, and the second still restores
    // and checks clean: prune kept the lists and the blobs they name.
    env.cmd().args(["forget", &first]).assert().code(0);
    env.cmd().arg("prune").assert().code(0);
    env.cmd().args(["check", "--read-data"]).assert().code(0);
    let out2 = env.path("out2");
    env.restore(&["latest", "--target", out2.to_str().unwrap()]);
    crate::support::manifest::assert_same_tree(&src, &out2.join("app"));

    // The legacy archive holds the whole file.
    let exported = env.path("exported");
    let rep = env.json(&[
        "export",
        "latest",
        "--output-dir",
        exported.to_str().unwrap(),
    ]);
    let archive = rep["path"].as_str().unwrap();
    let unpacked = env.path("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(st.success());
    same_bytes(&src.join("big.dat"), &find(&unpacked, "big.dat"));

    // Copied to a repository with other keys (cut and listed again), it
    // restores the same.
    let off = env.path("offsite");
    env.cmd()
        .env("OPC_REPO", &off)
        .args(INIT_FAST)
        .assert()
        .code(0);
    // And to one sharing our ids (`--copy-chunker-params-from`), where
    // the lists carry over as they are, with the blobs they name.
    let same = env.path("same");
    env.cmd()
        .env("OPC_REPO", &same)
        .env("OPC_FROM_PASSWORD", PASSWORD)
        .args(INIT_FAST)
        .arg("--copy-chunker-params-from")
        .arg(&env.repo)
        .assert()
        .code(0);
    for target in [&off, &same] {
        env.cmd()
            .env("OPC_FROM_PASSWORD", PASSWORD)
            .args(["copy", "--quiet", "--from"])
            .arg(&env.repo)
            .arg("--to")
            .arg(target)
            .assert()
            .code(0);
        let out = target.with_extension("restored");
        env.cmd()
            .env("OPC_REPO", target)
            .args(["restore", "latest", "--target", out.to_str().unwrap()])
            .assert()
            .code(0);
        let big = find(&out, "big.dat");
        crate::support::manifest::assert_same_tree(&src, big.parent().unwrap());
        env.cmd()
            .env("OPC_REPO", target)
            .args(["check", "--read-data"])
            .assert()
            .code(0);
    }
    let copied = open(&env, &same);
    assert_eq!(node(&app_nodes(&copied), "big.dat").lists.len(), 2);
}

/// A damaged list blob is found by `check` (naming the file), and restore
/// of that file fails with a clear error instead of writing a wrong file.
#[test]
fn a_damaged_content_list_is_reported_by_check_and_refused_by_restore() {
    let env = env_cutting_dat_files_into_blocks();
    let src = env.path("data/app");
    write(&src.join("mid.dat"), &blocks(4, INLINE_IDS + 10));
    write(&src.join("small.txt"), b"small");
    env.components(&[("app", &[&src])]);
    env.snapshot(&[]);
    env.cmd().arg("check").assert().code(0);

    let loc = {
        let repo = open(&env, &env.repo);
        let nodes = app_nodes(&repo);
        let list = node(&nodes, "mid.dat").lists[0];
        repo.index().lookup(&list).unwrap().expect("list indexed")
    };
    damage_blob(&env, &loc);

    let out = env.cmd().args(["check", "--json"]).assert().code(14);
    let report = crate::support::parse_json(&out.get_output().stdout);
    let text = report.to_string();
    assert!(text.contains("app/mid.dat"), "{report:#}");
    assert!(!text.contains("small.txt"), "{report:#}");

    let target = env.path("out");
    let out = env
        .cmd()
        .args(["restore", "latest", "--target", target.to_str().unwrap()])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("corrupted") && err.contains("can still be restored"),
        "not clear: {err}"
    );
    let restored = find(&target, "mid.dat");
    assert_eq!(
        std::fs::metadata(&restored).unwrap().len(),
        0,
        "a wrong file was written"
    );

    // `repair snapshots` drops the file whose list is damaged, keeps the rest.
    let out = env
        .cmd()
        .args(["repair", "snapshots", "--json"])
        .assert()
        .code(0);
    let rep = crate::support::parse_json(&out.get_output().stdout);
    let rewritten = &rep["snapshots"][0];
    assert_eq!(
        rewritten["removed"],
        serde_json::json!(["app/mid.dat"]),
        "{rep:#}"
    );
    let repaired = rewritten["repaired"].as_str().unwrap();
    let target = env.path("out-repaired");
    env.restore(&[&repaired[..8], "--target", target.to_str().unwrap()]);
    same_bytes(&src.join("small.txt"), &find(&target, "small.txt"));
    assert!(files_under(&target).iter().all(|p| !p.ends_with("mid.dat")));
}

/// A restore writes a large file a slice at a time; a damaged blob near
/// its end, met after most of the file is on disk, still leaves an empty
/// file rather than one that looks restored.
#[test]
fn a_damaged_block_at_the_end_of_a_large_file_leaves_it_empty() {
    let env = env_cutting_dat_files_into_blocks();
    let src = env.path("data/app");
    write(&src.join("big.dat"), &blocks(5, LIST_IDS + 1));
    env.components(&[("app", &[&src])]);
    env.snapshot(&[]);

    let loc = {
        let repo = open(&env, &env.repo);
        let nodes = app_nodes(&repo);
        let lists = &node(&nodes, "big.dat").lists;
        let last = *read_list(&repo, &lists[1]).unwrap().last().unwrap();
        repo.index().lookup(&last).unwrap().expect("block indexed")
    };
    damage_blob(&env, &loc);

    let target = env.path("out");
    let out = env
        .cmd()
        .args(["restore", "latest", "--target", target.to_str().unwrap()])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("corrupted"), "not clear: {err}");
    let restored = find(&target, "big.dat");
    assert_eq!(
        std::fs::metadata(&restored).unwrap().len(),
        0,
        "a partly written file was left"
    );
}

/// Flips a byte in the middle of the stored blob at `loc`, in its pack.
fn damage_blob(env: &Env, loc: &opc_store::repo::BlobLocation) {
    use std::os::unix::fs::FileExt;
    let hex = loc.pack.to_hex();
    let pack = env.repo.join("data").join(&hex[..2]).join(&hex);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pack)
        .unwrap();
    let at = loc.offset + u64::from(loc.length) / 2;
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
}
