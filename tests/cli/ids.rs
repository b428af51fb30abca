//! Naming snapshots: short ids, unique prefixes, `latest`, and `latest`
//! restricted to a component.

use predicates::prelude::*;

use crate::support::{short_id, write, Env};

fn hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[test]
fn ids_are_shown_short_and_unique_prefixes_are_accepted() {
    let env = Env::with_repo();
    let src = env.path("data/app");
    write(&src.join("a.txt"), b"a");
    env.components(&[("app", &[&src])]);
    let report = env.snapshot(&[]);
    let (id, short) = (report["id"].as_str().unwrap(), short_id(&report));
    assert_eq!(short.len(), 8);
    assert!(
        hex(&short) && hex(id) && id.starts_with(&short),
        "{id} {short}"
    );

    // Text output shows the short id, not the full one.
    env.cmd()
        .args(["snapshot"])
        .assert()
        .code(0)
        .stdout(predicate::str::is_match(r"^snapshot [0-9a-f]{8} \(full\) saved").unwrap());
    let list = env
        .cmd()
        .arg("snapshots")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let list = String::from_utf8(list).unwrap();
    assert!(list.lines().any(|l| l.starts_with(&short)), "{list}");
    assert!(!list.contains(id), "full id in the listing:\n{list}");

    // Four characters are enough when unique (the shortest unique prefix
    // of at least 4 is taken, so a rare 4-digit clash cannot flake); case
    // does not matter.
    let all: Vec<String> = env
        .json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let prefix = (4..=id.len())
        .map(|n| &id[..n])
        .find(|p| all.iter().filter(|i| i.starts_with(p)).count() == 1)
        .unwrap();
    let out = env.path("out");
    env.restore(&[prefix, "--target", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(out.join("app/a.txt")).unwrap(), b"a");
    env.cmd()
        .args(["ls", &prefix.to_uppercase()])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("app/a.txt"));
    let restored = env.json(&[
        "restore",
        prefix,
        "--target",
        env.path("out2").to_str().unwrap(),
    ]);
    assert_eq!(restored["id"], id);
    assert_eq!(restored["short_id"], short.as_str());
}

/// 17 snapshots: by pigeonhole two share their first hex digit, so that
/// one-digit prefix is ambiguous and must be refused, not guessed.
#[test]
fn ambiguous_prefixes_are_refused() {
    let env = Env::with_repo();
    let src = env.path("data/app");
    write(&src.join("a.txt"), b"a");
    env.components(&[("app", &[&src])]);
    let mut firsts = std::collections::BTreeMap::<char, usize>::new();
    for _ in 0..17 {
        let r = env.snapshot(&[]);
        *firsts
            .entry(short_id(&r).chars().next().unwrap())
            .or_default() += 1;
    }
    let (digit, n) = firsts.iter().find(|(_, n)| **n > 1).expect("pigeonhole");
    env.cmd()
        .args([
            "restore",
            &digit.to_string(),
            "--target",
            env.path("out").to_str().unwrap(),
        ])
        .assert()
        .code(16)
        .stderr(predicate::str::contains(format!("matches {n} snapshots")));
    assert!(!env.path("out").exists());
    env.cmd().args(["ls", &digit.to_string()]).assert().code(16);
}

#[test]
fn latest_of_a_component_skips_newer_snapshots_of_other_components() {
    let env = Env::with_repo();
    let (chroma, app) = (env.path("data/chromadb"), env.path("data/app"));
    write(&app.join("app.txt"), b"app");
    env.components(&[("chromadb", &[&chroma]), ("application", &[&app])]);
    // Order is by snapshot time, not by creation: the application snapshot
    // is taken first but dated last.
    let t = |h: u32| format!("2030-01-01T{h:02}:00:00+00:00");
    let app_snap = env.snapshot(&["application", "--time", &t(6)]);
    write(&chroma.join("chroma.sqlite3"), b"chromadb v1");
    let v1 = env.snapshot(&["chromadb", "--time", &t(1)]);
    write(&chroma.join("chroma.sqlite3"), b"chromadb v2");
    let v2 = env.snapshot(&["chromadb", "--time", &t(2)]);
    write(&chroma.join("chroma.sqlite3"), b"chromadb v0");
    let full = env.snapshot(&["full", "--time", &t(0)]);

    let out = env.path("out");
    let r = env.json(&[
        "restore",
        "latest",
        "--component",
        "chromadb",
        "--target",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r["id"], v2["id"], "newest snapshot containing chromadb");
    assert_eq!(
        std::fs::read(out.join("chromadb/chroma.sqlite3")).unwrap(),
        b"chromadb v2"
    );
    assert!(
        !out.join("application").exists(),
        "only the asked component is restored"
    );

    // Plain `latest` is the application snapshot, which lacks chromadb.
    let r = env.json(&[
        "restore",
        "latest",
        "--target",
        env.path("out2").to_str().unwrap(),
    ]);
    assert_eq!(r["id"], app_snap["id"]);
    assert!(env.path("out2/application/app.txt").exists() && !env.path("out2/chromadb").exists());

    let ids = |args: &[&str]| -> Vec<serde_json::Value> {
        env.json(args)
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].clone())
            .collect()
    };
    assert_eq!(
        ids(&["snapshots", "--component", "chromadb"]),
        [&full["id"], &v1["id"], &v2["id"]].map(Clone::clone)
    );
    assert_eq!(ids(&["snapshots"]).len(), 4);
    assert_eq!(
        ids(&["snapshots", "--component", "application"]),
        [&full["id"], &app_snap["id"]].map(Clone::clone)
    );
}

#[test]
fn latest_in_an_empty_repository_is_not_found() {
    let env = Env::with_repo();
    env.cmd()
        .args([
            "restore",
            "latest",
            "--target",
            env.path("out").to_str().unwrap(),
        ])
        .assert()
        .code(16)
        .stderr(predicate::str::contains("no snapshots yet"));
    env.cmd()
        .args([
            "restore",
            "latest",
            "--component",
            "chromadb",
            "--target",
            env.path("out").to_str().unwrap(),
        ])
        .assert()
        .code(16)
        .stderr(predicate::str::contains("no snapshot contains chromadb"));
}
