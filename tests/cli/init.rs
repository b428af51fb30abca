//! `init`: what it creates, what it refuses, and where the password comes
//! from.

use std::os::unix::fs::PermissionsExt;

use predicates::prelude::*;

use crate::support::{parse_json, write, Env, INIT_FAST, PASSWORD};

#[test]
fn init_creates_a_private_repository_and_reports_it_as_json() {
    let env = Env::new();
    let out = env
        .cmd()
        .args(INIT_FAST)
        .arg("--json")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = parse_json(&out);
    assert_eq!(v["repository"], env.repo.to_str().unwrap());
    assert_eq!(v["encryption"], "xchacha20poly1305");
    let id = v["id"].as_str().expect("id");
    let marker = parse_json(&std::fs::read(env.repo.join("repo.json")).unwrap());
    assert_eq!(marker["id"], id);
    let mode = std::fs::metadata(&env.repo).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the repository folder is private");
    // Usable right away.
    assert_eq!(env.json(&["snapshots"]), serde_json::json!([]));
}

#[test]
fn init_refuses_an_existing_repository_or_a_non_empty_folder() {
    let env = Env::with_repo();
    let marker = std::fs::read(env.repo.join("repo.json")).unwrap();
    env.cmd()
        .args(INIT_FAST)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "already holds an opc-store repository",
        ));
    assert_eq!(
        std::fs::read(env.repo.join("repo.json")).unwrap(),
        marker,
        "repository untouched"
    );

    let busy = env.path("busy");
    write(&busy.join("precious.txt"), b"keep");
    env.cmd()
        .args(INIT_FAST)
        .env("OPC_REPO", &busy)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("is not empty"));
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    // An existing empty folder is fine.
    let empty = env.path("empty");
    std::fs::create_dir(&empty).unwrap();
    env.cmd()
        .args(INIT_FAST)
        .env("OPC_REPO", &empty)
        .assert()
        .code(0);
}

#[test]
fn unencrypted_repository_warns_and_needs_no_password() {
    let env = Env::new();
    env.cmd()
        .args(["init", "--encryption", "none"])
        .env_remove("OPC_PASSWORD")
        .assert()
        .code(0)
        .stderr(predicate::str::contains("UNENCRYPTED"));
    let src = env.path("data/app");
    write(&src.join("a"), b"a");
    env.components(&[("app", &[&src])]);
    env.cmd()
        .args(["snapshot", "-q"])
        .env_remove("OPC_PASSWORD")
        .assert()
        .code(0);
}

#[test]
fn password_comes_from_a_file_without_its_trailing_newline() {
    let env = Env::new();
    let pw_file = env.path("pw");
    std::fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
    env.cmd()
        .args(INIT_FAST)
        .env_remove("OPC_PASSWORD")
        .env("OPC_PASSWORD_FILE", &pw_file)
        .assert()
        .code(0);
    // OPC_PASSWORD (same password, no newline) opens it too.
    env.cmd().arg("snapshots").assert().code(0);
    env.cmd()
        .args(["snapshots", "--password-file", pw_file.to_str().unwrap()])
        .env_remove("OPC_PASSWORD")
        .assert()
        .code(0);

    // No password at all, and no terminal to ask on: a clear error.
    env.cmd()
        .arg("snapshots")
        .env_remove("OPC_PASSWORD")
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("no password given")
                .and(predicate::str::contains("OPC_PASSWORD")),
        );
}
