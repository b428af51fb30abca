//! Mistakes in what the user asks for exit with their documented code and
//! a message that says what is wrong: 2 usage, 15 configuration, 16 not
//! found. Repository-level failures are in `repository_errors`.

use predicates::prelude::*;
use predicates::str::contains;

use crate::support::{write, Env};

/// A repository with one snapshot of component `app`.
pub fn with_snapshot() -> Env {
    let env = Env::with_repo();
    let src = env.path("data/app");
    write(
        &src.join("a.txt"),
        &crate::support::random_bytes(3, 100_000),
    );
    env.components(&[("app", &[&src])]);
    env.snapshot(&[]);
    env
}
#[test]
fn unknown_component_exits_15_naming_the_known_ones() {
    let env = with_snapshot();
    env.cmd()
        .args(["snapshot", "nosuch"])
        .assert()
        .code(15)
        .stderr(contains("nosuch").and(contains("full or one of app")));
    // In a restore, the component is looked up in the snapshot: not found.
    env.cmd()
        .args([
            "restore",
            "latest",
            "--component",
            "nosuch",
            "--target",
            env.path("out").to_str().unwrap(),
        ])
        .assert()
        .code(16)
        .stderr(contains("nosuch"));
    let id = env.json(&["snapshots"])[0]["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.cmd()
        .args([
            "restore",
            &id,
            "--component",
            "nosuch",
            "--target",
            env.path("out").to_str().unwrap(),
        ])
        .assert()
        .code(16)
        .stderr(contains("has no component nosuch (it has: app)"));
    assert!(!env.path("out").exists());
}

/// Writes `yaml` as the configuration and expects `snapshot` to fail with
/// exit 15 and a message containing every string of `wants`. Errors found
/// while loading the file also name the file.
fn config_error(env: &Env, yaml: &str, wants: &[&str]) {
    env.config_text(yaml);
    let assert = env
        .cmd()
        .args(["snapshot"])
        .env_remove("OPC_TEST_UNSET_VAR")
        .assert()
        .code(15);
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    for w in wants {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
    // The path check runs after loading and names the key, not the file.
    if !err.contains("does not exist") {
        assert!(
            err.contains(env.config.to_str().unwrap()),
            "the file is named: {err}"
        );
    }
}

#[test]
fn invalid_configurations_exit_15_and_say_where() {
    let env = Env::with_repo();
    let src = env.path("data/app");
    std::fs::create_dir_all(&src).unwrap();
    let src = src.to_str().unwrap();
    let repo = env.repo.to_str().unwrap();
    // Unknown keys, at the top and nested.
    config_error(
        &env,
        &format!("repository: {repo}\ncolour: red\ncomponents:\n  app:\n    paths: [{src}]\n"),
        &["unknown field `colour`"],
    );
    config_error(
        &env,
        &format!("components:\n  app:\n    pathz: [{src}]\n"),
        &["components.app", "unknown field `pathz`"],
    );
    // Wrong types.
    config_error(
        &env,
        "components:\n  app:\n    paths: 5\n",
        &["components.app.paths", "invalid type"],
    );
    config_error(
        &env,
        &format!("retention: {{full: many}}\ncomponents:\n  app:\n    paths: [{src}]\n"),
        &["retention.full"],
    );
    // A path that does not exist, and one that is relative.
    config_error(
        &env,
        "components:\n  app:\n    paths: [/nonexistent/opc/path]\n",
        &[
            "components.app.paths",
            "/nonexistent/opc/path",
            "does not exist",
        ],
    );
    config_error(
        &env,
        "components:\n  app:\n    paths: [relative/path]\n",
        &["must be absolute"],
    );
    // An unset variable is named, with the key using it.
    config_error(
        &env,
        "components:\n  app:\n    paths: [\"${OPC_TEST_UNSET_VAR}/x\"]\n",
        &[
            "OPC_TEST_UNSET_VAR",
            "is not set",
            "components.app.paths[0]",
        ],
    );
    // Not YAML at all.
    config_error(&env, "components: [unclosed\n", &[]);
    // Retention for something that is no component.
    config_error(
        &env,
        &format!("retention: {{nosuch: 3}}\ncomponents:\n  app:\n    paths: [{src}]\n"),
        &["nosuch"],
    );

    // A set variable or its default is expanded.
    let parent = env.path("data");
    env.config_text("components:\n  app:\n    paths: [\"${OPC_TEST_DATA}/app\", \"${OPC_TEST_UNSET_VAR:-/nonexistent}\"]\n");
    env.cmd()
        .arg("snapshot")
        .env("OPC_TEST_DATA", &parent)
        .assert()
        .code(15)
        .stderr(contains("/nonexistent does not exist"));
    env.config_text("components:\n  app:\n    paths: [\"${OPC_TEST_DATA}/app\"]\n");
    env.cmd()
        .args(["snapshot", "-q"])
        .env("OPC_TEST_DATA", &parent)
        .assert()
        .code(0);
}

#[test]
fn a_missing_configuration_file_is_named() {
    let env = Env::with_repo();
    env.cmd()
        .arg("snapshot")
        .assert()
        .failure()
        .stderr(contains(env.config.to_str().unwrap()));
}

#[test]
fn unknown_snapshots_exit_16() {
    let env = with_snapshot();
    let out = env.path("out");
    for spec in ["deadbeef", "0000000000", "not-hex", ""] {
        env.cmd()
            .args(["restore", spec, "--target", out.to_str().unwrap()])
            .assert()
            .code(16)
            .stderr(contains("opc-store snapshots"));
    }
    env.cmd().args(["ls", "deadbeef"]).assert().code(16);
    env.cmd()
        .args(["diff", "latest", "deadbeef"])
        .assert()
        .code(16);
    assert!(!out.exists());
}

#[test]
fn usage_errors_exit_2() {
    let env = with_snapshot();
    env.cmd().assert().code(2);
    env.cmd()
        .args(["restore", "latest"])
        .assert()
        .code(2)
        .stderr(contains("--target"));
    env.cmd()
        .args(["restore", "latest", "--target", "/tmp/x", "--in-place"])
        .assert()
        .code(2);
    env.cmd().args(["snapshot", "--bogus"]).assert().code(2);
    env.cmd()
        .args(["init", "--compression-level", "99"])
        .assert()
        .code(2);
    env.cmd()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(contains("Exit codes"));
    env.cmd()
        .args(["snapshot", "--time", "yesterday"])
        .assert()
        .code(3)
        .stderr(contains("RFC 3339"));
}
