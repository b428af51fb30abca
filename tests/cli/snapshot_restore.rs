//! Where restored data lands, that restoring one component touches nothing
//! else, and the safety rules of `--in-place` and `--force`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use predicates::prelude::*;

use crate::support::manifest::{assert_same, assert_same_tree, manifest};
use crate::support::{parse_json, random_bytes, write, Env};

/// Two components with a few files each, snapshotted together.
fn two_components(env: &Env) -> (PathBuf, PathBuf) {
    let chroma = env.path("data/chromadb");
    let app = env.path("data/app");
    write(&chroma.join("chroma.sqlite3"), &random_bytes(1, 200_000));
    write(
        &chroma.join("seg/data_level0.bin"),
        &random_bytes(2, 100_000),
    );
    write(&app.join("config/settings.yml"), b"a: 1\n");
    write(&app.join("uploads/report.pdf"), &random_bytes(3, 50_000));
    env.components(&[("chromadb", &[&chroma]), ("application", &[&app])]);
    env.snapshot(&[]);
    (chroma, app)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 test path")
}

/// Names in `dir` starting with `prefix`.
fn siblings(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

#[test]
fn components_land_under_their_names() {
    let env = Env::with_repo();
    let single = env.path("data/single");
    write(&single.join("a.txt"), b"a");
    // Several paths: each lands under its base name; equal base names get
    // -2, -3 suffixes. A component can also be a single file.
    let (one, two, two_b) = (
        env.path("data/one"),
        env.path("data/x/two"),
        env.path("data/y/two"),
    );
    write(&one.join("1.txt"), b"1");
    write(&two.join("2.txt"), b"2");
    write(&two_b.join("2b.txt"), b"2b");
    let file = env.path("data/settings.env");
    write(&file, b"KEY=value\n");
    env.components(&[
        ("single", &[&single]),
        ("multi", &[&one, &two, &two_b]),
        ("file", &[&file]),
    ]);
    env.snapshot(&[]);

    let out = env.path("out");
    env.restore(&["latest", "--target", s(&out)]);
    assert_same_tree(&single, &out.join("single"));
    assert_same_tree(&one, &out.join("multi/one"));
    assert_same_tree(&two, &out.join("multi/two"));
    assert_same_tree(&two_b, &out.join("multi/two-2"));
    assert_same_tree(&file, &out.join("file"));
    assert_eq!(siblings(&out.join("multi"), ""), ["one", "two", "two-2"]);
    assert_eq!(siblings(&out, ""), ["file", "multi", "single"]);
}

#[test]
fn restoring_one_component_leaves_the_other_untouched() {
    let env = Env::with_repo();
    let (chroma, app) = two_components(&env);
    let out = env.path("out");
    env.restore(&["latest", "--target", s(&out)]);
    let app_copy = manifest(&out.join("application"));

    // Damage the restored chromadb copy, then restore only chromadb over it.
    write(&out.join("chromadb/chroma.sqlite3"), b"damaged");
    std::fs::remove_file(out.join("chromadb/seg/data_level0.bin")).unwrap();
    env.cmd()
        .args([
            "restore",
            "latest",
            "--component",
            "chromadb",
            "--target",
            s(&out),
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--force"));
    env.restore(&[
        "latest",
        "--component",
        "chromadb",
        "--target",
        s(&out),
        "--force",
    ]);

    assert_same_tree(&chroma, &out.join("chromadb"));
    assert_same(&app_copy, &manifest(&out.join("application")));
    assert_same_tree(&app, &out.join("application"));
}

#[test]
fn in_place_restore_of_one_component_leaves_other_sources_untouched() {
    let env = Env::with_repo();
    let (chroma, app) = two_components(&env);
    let snapshotted = manifest(&chroma);
    write(&chroma.join("chroma.sqlite3"), b"newer");
    let app_before = manifest(&app);

    env.restore(&["latest", "--component", "chromadb", "--in-place", "--force"]);

    assert_same(&snapshotted, &manifest(&chroma));
    assert_same(&app_before, &manifest(&app));
    let data = env.path("data");
    assert_eq!(
        siblings(&data, "app"),
        ["app"],
        "nothing added next to the other component"
    );
}

#[test]
fn in_place_restore_refuses_to_clobber_without_force() {
    let env = Env::with_repo();
    let (chroma, _) = two_components(&env);
    write(&chroma.join("chroma.sqlite3"), b"current, not yet saved");
    let before = manifest(&chroma);

    env.cmd()
        .args(["restore", "latest", "--component", "chromadb", "--in-place"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(chroma.to_str().unwrap()))
        .stderr(predicate::str::contains("exists; pass --force"));

    assert_same(&before, &manifest(&chroma));
    let data = env.path("data");
    assert_eq!(
        siblings(&data, "chromadb"),
        ["chromadb"],
        "no temporary or moved-aside copies left"
    );
}

#[test]
fn in_place_restore_with_force_keeps_previous_content_aside() {
    let env = Env::with_repo();
    let (chroma, _) = two_components(&env);
    let snapshotted = manifest(&chroma);
    write(&chroma.join("chroma.sqlite3"), b"current, not yet saved");
    write(&chroma.join("new-file"), b"created after the snapshot");
    let current = manifest(&chroma);

    let out = env
        .cmd()
        .args([
            "restore",
            "latest",
            "--component",
            "chromadb",
            "--in-place",
            "--force",
            "--json",
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let report = crate::support::parse_json(&out);

    assert_same(&snapshotted, &manifest(&chroma));
    let data = env.path("data");
    let names = siblings(&data, "chromadb");
    assert_eq!(names.len(), 2, "{names:?}");
    let aside = &names[1];
    let stamp = aside
        .strip_prefix("chromadb.pre-restore-")
        .expect("aside name");
    assert!(
        stamp.len() == 15
            && stamp.as_bytes()[8] == b'_'
            && stamp.replace('_', "").bytes().all(|b| b.is_ascii_digit()),
        "stamp {stamp:?} is not YYYYmmdd_HHMMSS"
    );
    assert_same(&current, &manifest(&data.join(aside)));
    let moved = &report["moved_aside"][0];
    assert_eq!(moved["from"], chroma.to_str().unwrap());
    assert_eq!(moved["to"], data.join(aside).to_str().unwrap());
}

/// Two in-place restores within one second (a retry, a script restoring
/// twice) must not overwrite the first moved-aside copy, which may be the
/// only copy of data newer than the snapshot. The collision is forced by
/// planting `<path>.pre-restore-<stamp>` for the coming seconds.
#[test]
fn in_place_restore_never_overwrites_an_earlier_aside_copy() {
    let env = Env::with_repo();
    let file = env.path("data/settings.env");
    let dir = env.path("data/dir");
    write(&file, b"v1");
    write(&dir.join("f"), b"v1");
    env.components(&[("file", &[&file]), ("dir", &[&dir])]);
    env.snapshot(&[]);
    let now = chrono::Local::now();
    for k in 0..10 {
        let stamp = (now + chrono::Duration::seconds(k)).format("%Y%m%d_%H%M%S");
        write(
            &env.path(&format!("data/settings.env.pre-restore-{stamp}")),
            b"precious",
        );
        write(
            &env.path(&format!("data/dir.pre-restore-{stamp}/f")),
            b"precious",
        );
    }
    write(&file, b"v2");
    env.restore(&["latest", "--component", "file", "--in-place", "--force"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"v1");
    let data = env.path("data");
    let asides: Vec<Vec<u8>> = siblings(&data, "settings.env.")
        .iter()
        .map(|n| std::fs::read(data.join(n)).unwrap())
        .collect();
    assert_eq!(
        asides.iter().filter(|c| *c == b"precious").count(),
        10,
        "an earlier aside copy was overwritten"
    );
    assert!(
        asides.contains(&b"v2".to_vec()),
        "the content replaced now was not kept"
    );
    env.restore(&["latest", "--component", "dir", "--in-place", "--force"]);
    assert!(
        siblings(&data, "dir.opc-restore").is_empty(),
        "temporary folder left behind"
    );
}

#[test]
fn target_restore_refuses_a_non_empty_target_without_force() {
    let env = Env::with_repo();
    two_components(&env);
    let out = env.path("out");
    write(&out.join("application/keep.txt"), b"mine");
    env.cmd()
        .args(["restore", "latest", "--target", s(&out)])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("not empty").and(predicate::str::contains("--force")));
    assert_eq!(
        std::fs::read(out.join("application/keep.txt")).unwrap(),
        b"mine"
    );
    assert!(
        !out.join("chromadb").exists(),
        "nothing restored when one target is refused"
    );
}

/// Hardlinks are restored as hardlinks, also when the links sit in
/// different paths of one component (target restore already does this).
#[test]
fn in_place_restore_keeps_hardlinks_across_paths_of_a_component() {
    let env = Env::with_repo();
    let (p1, p2) = (env.path("data/p1"), env.path("data/p2"));
    write(&p1.join("a"), b"shared");
    std::fs::create_dir_all(&p2).unwrap();
    std::fs::hard_link(p1.join("a"), p2.join("a-link")).unwrap();
    env.components(&[("multi", &[&p1, &p2])]);
    env.snapshot(&[]);
    env.restore(&["latest", "--in-place", "--force"]);
    let ino = |p: PathBuf| std::fs::metadata(p).unwrap().ino();
    assert_eq!(ino(p1.join("a")), ino(p2.join("a-link")));
}

/// Reading restored files back is asked for with --verify; by default the
/// blobs are checked as they are read from the repository, not re-read.
#[test]
fn restore_reads_files_back_only_with_verify() {
    let env = Env::with_repo();
    let (chroma, _app) = two_components(&env);
    let files = |v: &serde_json::Value| v["stats"]["files"].as_u64().unwrap();
    let mut seen = Vec::new();
    for (i, extra) in [&[][..], &["--verify"][..]].iter().enumerate() {
        let out = env.path(&format!("out-{i}"));
        let o = env
            .cmd()
            .args(["--json", "restore", "latest", "--component", "chromadb"])
            .args(["--target", s(&out)])
            .args(*extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        let v = parse_json(&o.stdout);
        assert!(files(&v) >= 2, "{v}");
        assert_same_tree(&chroma, &out.join("chromadb"));
        seen.push((v["stats"]["verified"].as_u64().unwrap(), files(&v)));
    }
    assert_eq!(seen[0].0, 0, "no read-back by default");
    assert_eq!(seen[1].0, seen[1].1, "--verify reads every file back");
}
