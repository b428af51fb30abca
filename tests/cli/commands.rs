//! The listing and maintenance commands: `snapshots`, `ls`, `stats`,
//! `diff`, `repair index`, and their `--json` forms.

use std::os::unix::ffi::OsStrExt;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::manifest::{assert_same, manifest};
use crate::support::{parse_json, random_bytes, write, Env};

fn stdout(env: &Env, args: &[&str]) -> String {
    let out = env
        .cmd()
        .args(args)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).expect("stdout is UTF-8 even for non-UTF-8 names")
}

#[test]
fn snapshots_records_type_tags_retention_and_environment() {
    let env = Env::with_repo();
    let src = env.path("data/app");
    write(&src.join("a.txt"), b"a");
    env.config_value(serde_json::json!({
        "repository": env.repo,
        "environment": "staging",
        "components": { "application": { "paths": [src] } },
        "retention": { "full": 9 },
    }));
    env.snapshot(&["--tag", "before-upgrade", "--tag", "manual"]);
    env.snapshot(&["application", "--retention-days", "3"]);
    // `backup` is an alias of `snapshot`.
    env.cmd()
        .args(["backup", "application", "-q"])
        .assert()
        .code(0)
        .stdout("");

    let list = env.json(&["snapshots"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    let (full, app, legacy) = (&list[0], &list[1], &list[2]);
    assert_eq!(full["type"], "full");
    assert_eq!(
        full["tags"],
        serde_json::json!(["before-upgrade", "manual"])
    );
    assert_eq!(full["retention_days"], 9);
    assert_eq!(full["environment"], "staging");
    assert_eq!(app["type"], "application");
    assert_eq!(app["retention_days"], 3);
    assert_eq!(
        legacy["retention_days"], 14,
        "legacy default for application"
    );
    assert_eq!(full["short_id"].as_str().unwrap().len(), 8);

    let text = stdout(&env, &["snapshots"]);
    assert!(
        text.contains("before-upgrade,manual")
            && text.contains("9d")
            && text.ends_with("3 snapshots\n"),
        "{text}"
    );
}

#[test]
fn ls_lists_every_entry_on_one_line_with_escaped_names() {
    let env = Env::with_repo();
    let src = env.path("data/app");
    write(&src.join("dir/inner.txt"), b"inner");
    write(&src.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")), b"x");
    write(&src.join("line\nbreak"), b"y");
    std::os::unix::fs::symlink("dir/inner.txt", src.join("link")).unwrap();
    env.components(&[("app", &[&src])]);
    env.snapshot(&[]);

    let text = stdout(&env, &["ls", "latest"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        6,
        "root, dir, inner, 2 odd names, link:\n{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('d') && l.ends_with(" app")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(r"app/caf\xe9.txt")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(r"app/line\nbreak")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('l') && l.ends_with("app/link -> dir/inner.txt")),
        "{text}"
    );

    let sub = env.json(&["ls", "latest", "app/dir"]);
    let paths: Vec<&str> = sub
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["app/dir", "app/dir/inner.txt"]);
    let inner = &sub[1];
    assert_eq!(
        (
            inner["type"].as_str(),
            inner["size"].as_u64(),
            inner["mode"].as_str()
        ),
        (Some("file"), Some(5), Some("644"))
    );

    env.cmd()
        .args(["ls", "latest", "app/missing"])
        .assert()
        .code(16)
        .stderr(predicate::str::contains("app/missing is not in snapshot"));
}

#[test]
fn stats_shows_deduplication_across_snapshots() {
    let env = Env::with_repo();
    let src = env.path("data/app");
    write(&src.join("a.bin"), &random_bytes(1, 300_000));
    write(&src.join("copy.bin"), &random_bytes(1, 300_000));
    env.components(&[("app", &[&src])]);
    env.snapshot(&[]);
    env.snapshot(&[]);

    let s = env.json(&["stats"]);
    assert_eq!(s["snapshots"], 2);
    assert_eq!(s["logical_bytes"], 1_200_000);
    let unique = s["unique_bytes"].as_u64().unwrap();
    assert!(
        (300_000..310_000).contains(&unique),
        "one copy of the data plus trees: {s:#}"
    );
    assert!(s["dedup_ratio"].as_f64().unwrap() > 3.8, "{s:#}");
    assert!(s["stored_bytes"].as_u64().unwrap() > 0 && s["packs"].as_u64().unwrap() > 0);
    let text = stdout(&env, &["stats"]);
    assert!(
        text.contains("snapshots:          2") && text.contains("dedup ratio:"),
        "{text}"
    );
}

#[test]
fn diff_marks_added_removed_and_modified_entries() {
    let env = Env::with_repo();
    let src = env.path("data/app");
    write(&src.join("same.txt"), b"same");
    write(&src.join("changed.txt"), b"before");
    write(&src.join("removed.txt"), b"gone soon");
    write(&src.join("sub/chmod.txt"), b"mode only");
    env.components(&[("app", &[&src])]);
    let a = env.snapshot(&[]);
    write(&src.join("changed.txt"), b"after!");
    std::fs::remove_file(src.join("removed.txt")).unwrap();
    write(&src.join("sub/added.txt"), b"new");
    crate::support::tree::chmod(&src.join("sub/chmod.txt"), 0o600);
    let b = env.snapshot(&[]);
    let (a, b) = (crate::support::short_id(&a), crate::support::short_id(&b));

    let text = stdout(&env, &["diff", &a, &b]);
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "+  app/sub/added.txt",
        "-  app/removed.txt",
        "M  app/changed.txt",
        "U  app/sub/chmod.txt",
    ] {
        assert!(lines.contains(&want), "{want:?} missing in:\n{text}");
    }
    assert!(!text.contains("same.txt"), "{text}");

    let json = env.json(&["diff", &a, "latest"]);
    let changes: Vec<(String, String)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["marker"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("M".into(), "app/changed.txt".into())),
        "{changes:?}"
    );
    assert_eq!(lines.len(), changes.len());
    assert_eq!(env.json(&["diff", &b, &b]), Value::Array(vec![]));
}

#[test]
fn repair_index_after_the_index_is_deleted_keeps_restore_working() {
    let env = Env::with_repo();
    let src = env.path("data/app");
    write(&src.join("a.bin"), &random_bytes(5, 2_000_000));
    write(&src.join("dir/b.txt"), b"b");
    env.components(&[("app", &[&src])]);
    let snap = env.snapshot(&[]);

    let index = env.index_dir();
    let deleted: Vec<_> = std::fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("index.sqlite")
        })
        .collect();
    assert!(
        !deleted.is_empty(),
        "no index.sqlite* in {}",
        index.display()
    );
    for p in &deleted {
        std::fs::remove_file(p).unwrap();
    }

    let out = env
        .cmd()
        .args(["repair", "index", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let rep = parse_json(&out);
    assert_eq!(rep["snapshots"], 1);
    assert!(
        rep["packs"].as_u64().unwrap() >= 1 && rep["blobs"].as_u64().unwrap() >= 3,
        "{rep:#}"
    );
    assert_eq!(rep["bad_packs"], Value::Array(vec![]));
    env.cmd()
        .args(["repair", "index"])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("index rebuilt: "));

    let listed = env.json(&["snapshots"]);
    assert_eq!(listed[0]["id"], snap["id"]);
    let target = env.path("out");
    env.restore(&["latest", "--target", target.to_str().unwrap()]);
    assert_same(&manifest(&src), &manifest(&target.join("app")));
    // And the next snapshot still finds its parent's blobs.
    let again = env.snapshot(&[]);
    assert_eq!(again["snapshot"]["summary"]["files_read"], 0, "{again:#}");
}

/// The README's first command: `demo` generates a data set with a live-
/// style ChromaDB SQLite database, snapshots it twice, restores chromadb
/// and compares it with the source (databases by schema and rows, because
/// the stored copy is SQLite's consistent backup, not the raw bytes).
#[test]
fn demo_runs_end_to_end_and_verifies_the_restore() {
    let env = Env::new();
    let dir = env.path("demo");
    let out = env
        .cmd()
        .args(["demo", "--scale", "0.2", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("identical to the source"), "{text}");
    assert!(text.contains("files verified against the source"), "{text}");
    let db = dir.join("restore/chromadb/chroma.sqlite3");
    assert!(db.is_file(), "the restored database is kept with --dir");
}
