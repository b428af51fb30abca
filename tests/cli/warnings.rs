//! Entries that cannot be captured are skipped with a warning naming them:
//! the snapshot still completes with everything else, and exits 1.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use predicates::prelude::*;
use predicates::str::contains;

use crate::support::{parse_json, unprivileged, write, Env, INIT_FAST, NOBODY};

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn unreadable_files_are_skipped_with_a_warning_and_exit_1() {
    let env = Env::new();
    // The sandbox is 0700 (tempfile); `nobody` must reach into it and own
    // the (empty) repository folder it initialises.
    chmod(env.tmp.path(), 0o755);
    std::fs::create_dir(&env.repo).unwrap();
    std::fs::create_dir(env.path("cache-nobody")).unwrap();
    if crate::support::is_root() {
        std::os::unix::fs::chown(&env.repo, Some(NOBODY), Some(NOBODY)).unwrap();
        std::os::unix::fs::chown(env.path("cache-nobody"), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let src = env.path("data/app");
    write(&src.join("readable.txt"), b"fine");
    write(&src.join("sub/also-readable.txt"), b"fine too");
    write(&src.join("secret.txt"), b"no access");
    chmod(&src.join("secret.txt"), 0o000);
    write(&src.join("closed-dir/inside.txt"), b"hidden");
    chmod(&src.join("closed-dir"), 0o000);
    env.components(&[("app", &[&src])]);

    unprivileged(&env).args(INIT_FAST).assert().code(0);
    let out = unprivileged(&env)
        .args(["snapshot", "--json"])
        .assert()
        .code(1)
        .stderr(contains("secret.txt").and(contains("closed-dir")))
        .stderr(contains("Permission denied"))
        .stderr(contains("completed with 2 warnings"))
        .get_output()
        .stdout
        .clone();
    let report = parse_json(&out);
    assert_eq!(
        report["warnings"].as_array().unwrap().len(),
        2,
        "{report:#}"
    );
    let s = &report["snapshot"]["summary"];
    assert_eq!(
        (s["warnings"].as_u64(), s["files"].as_u64()),
        (Some(2), Some(2)),
        "{report:#}"
    );

    // The snapshot exists and holds everything else.
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 1);
    let target = env.path("out");
    env.restore(&["latest", "--target", target.to_str().unwrap()]);
    let app = target.join("app");
    assert_eq!(std::fs::read(app.join("readable.txt")).unwrap(), b"fine");
    assert_eq!(
        std::fs::read(app.join("sub/also-readable.txt")).unwrap(),
        b"fine too"
    );
    assert!(!app.join("secret.txt").exists() && !app.join("closed-dir").exists());
}

/// Sockets cannot be recreated by a restore: skipped, with a warning.
#[test]
fn sockets_are_skipped_with_a_warning() {
    let env = Env::with_repo();
    let src = env.path("data/app");
    write(&src.join("file.txt"), b"x");
    let _listener = std::os::unix::net::UnixListener::bind(src.join("daemon.sock")).unwrap();
    env.components(&[("app", &[&src])]);
    env.cmd()
        .args(["snapshot", "--json"])
        .assert()
        .code(1)
        .stderr(contains("daemon.sock").and(contains("socket")));
    let target = env.path("out");
    env.restore(&["latest", "--target", target.to_str().unwrap()]);
    assert!(target.join("app/file.txt").exists() && !target.join("app/daemon.sock").exists());
}
