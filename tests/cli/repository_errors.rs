//! Failures of the repository itself exit with their documented code and
//! a message saying what to do: 10 not a repository, 12 wrong password,
//! 13 format too new, 14 integrity.

use predicates::prelude::*;
use predicates::str::contains;

use crate::errors::with_snapshot;

#[test]
fn wrong_password_exits_12() {
    let env = with_snapshot();
    env.cmd()
        .arg("snapshots")
        .env("OPC_PASSWORD", "not the password")
        .assert()
        .code(12)
        .stdout("")
        .stderr(contains("wrong password"));
}

#[test]
fn a_folder_that_is_no_repository_exits_10() {
    let env = with_snapshot();
    let other = env.path("not-a-repo");
    std::fs::create_dir(&other).unwrap();
    let msg = format!("{} is not an opc-store repository", other.display());
    env.cmd()
        .args(["snapshots", "--repo", other.to_str().unwrap()])
        .assert()
        .code(10)
        .stderr(contains(msg.clone()));
    env.cmd()
        .arg("snapshots")
        .env("OPC_REPO", &other)
        .assert()
        .code(10)
        .stderr(contains(msg));
    // Also when the folder does not exist at all; nothing is created.
    let missing = env.path("missing");
    env.cmd()
        .args(["ls", "latest"])
        .env("OPC_REPO", &missing)
        .assert()
        .code(10);
    assert!(!missing.exists());
}

#[test]
fn a_newer_repository_format_exits_13() {
    let env = with_snapshot();
    let marker = env.repo.join("repo.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    v["version"] = 99.into();
    std::fs::write(&marker, v.to_string()).unwrap();
    env.cmd()
        .arg("snapshots")
        .assert()
        .code(13)
        .stderr(contains("newer").and(contains("upgrade")));
}

/// Every pack byte is authenticated: a flipped byte makes restore fail
/// with exit 14 rather than write wrong data.
#[test]
fn a_damaged_pack_exits_14_on_restore() {
    let env = with_snapshot();
    let mut packs = Vec::new();
    let mut stack = vec![env.repo.join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                packs.push(p)
            }
        }
    }
    assert!(!packs.is_empty());
    for p in &packs {
        let mut bytes = std::fs::read(p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(p, bytes).unwrap();
    }
    let out = env.path("out");
    env.cmd()
        .args(["restore", "latest", "--target", out.to_str().unwrap()])
        .assert()
        .code(14)
        .stderr(contains("failed authentication").or(contains("malformed")));
}

/// An I/O error's cause is printed once, not twice.
#[test]
fn io_error_messages_do_not_repeat_their_cause() {
    let env = with_snapshot();
    let out = env
        .cmd()
        .args(["restore", "latest", "--target", "/proc/opc-test/x"])
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8_lossy(&out);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
