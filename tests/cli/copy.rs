//! `copy` between two local repositories with different passwords (and so
//! different keys): copied snapshots restore byte for byte and metadata for
//! metadata, keep their identity, are not copied twice, send only what the
//! target lacks and dedup against the target's own snapshots; `run` with
//! `copy_to:`; a copy killed before its record leaves the target consistent.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{json, Value};

use crate::support::manifest::assert_same_tree;
use crate::support::tree::{self, chmod};
use crate::support::{files_under, parse_json, random_bytes, write, Env, INIT_FAST, PASSWORD};

/// The target's password.
const PW2: &str = "another horse for the off-site copy";

/// A source repository with component `app` and an empty target
/// repository (`offsite`) with another password.
struct Two {
    env: Env,
    off: PathBuf,
    pw_file: PathBuf,
    data: PathBuf,
}

fn two() -> Two {
    let env = Env::with_repo();
    let off = env.path("offsite");
    env.cmd()
        .env("OPC_PASSWORD", PW2)
        .env("OPC_REPO", &off)
        .args(INIT_FAST)
        .assert()
        .code(0);
    let pw_file = env.path("source.pw");
    write(&pw_file, format!("{PASSWORD}\n").as_bytes());
    chmod(&pw_file, 0o600);
    let data = env.path("data/app");
    tree::everything(&data);
    write(&data.join("big/random.bin.dat"), &random_bytes(1, 2 << 20));
    env.components(&[("app", &[&data])]);
    Two {
        env,
        off,
        pw_file,
        data,
    }
}

impl Two {
    /// `copy --from repo --to offsite ARGS`.
    fn copy(&self, args: &[&str]) -> Command {
        let mut c = self.env.cmd();
        c.env("OPC_PASSWORD", PW2)
            .env("OPC_FROM_PASSWORD_FILE", &self.pw_file)
            .env_remove("OPC_FROM_PASSWORD")
            .arg("copy")
            .arg("--from")
            .arg(&self.env.repo)
            .arg("--to")
            .arg(&self.off)
            .args(args);
        c
    }

    fn copy_json(&self, args: &[&str]) -> Value {
        let out = self.copy(args).arg("--json").assert().code(0);
        parse_json(&out.get_output().stdout)
    }

    /// A command on the target repository.
    fn off(&self) -> Command {
        let mut c = self.env.cmd();
        c.env("OPC_PASSWORD", PW2).env("OPC_REPO", &self.off);
        c
    }

    fn off_json(&self, args: &[&str]) -> Value {
        let out = self.off().args(args).arg("--json").assert().code(0);
        parse_json(&out.get_output().stdout)
    }

    /// The target's second snapshot restores equal to the source tree.
    fn second_copy_restores_as_the_source(&self) {
        let dst = self.off_json(&["snapshots"]);
        let out = self.env.path("out");
        self.off()
            .args(["restore", dst[1]["short_id"].as_str().unwrap(), "--target"])
            .arg(&out)
            .assert()
            .code(0);
        assert_same_tree(&self.data, &out.join("app"));
    }

    fn packs(&self) -> usize {
        files_under(&self.off.join("data")).len()
    }
}

fn ids(v: &Value, key: &str, field: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {v:#}"))
        .iter()
        .map(|c| c[field].as_str().unwrap().to_string())
        .collect()
}

fn check_clean(t: &Two) {
    let v = t.off_json(&["check", "--read-data"]);
    assert_eq!(v["ok"], true, "{v:#}");
}

#[test]
fn every_snapshot_is_copied_once_restores_exactly_and_later_copies_send_only_new_data() {
    let t = two();
    // A secret: redacted in the snapshot, recorded in its sanitization record.
    write(&t.data.join("conf/.env"), b"API_KEY=sk-123456\nMODE=prod\n");
    let s1 = t.env.snapshot(&["--tag", "first"]);
    let s2 = t
        .env
        .snapshot(&["app", "--time", "2026-01-02T03:04:05+01:00"]);
    let r = t.copy_json(&[]);
    assert_eq!(r["copied"].as_array().unwrap().len(), 2, "{r:#}");
    assert_eq!(r["skipped"].as_array().unwrap().len(), 0, "{r:#}");
    assert!(r["bytes_sent"].as_u64().unwrap() > 2 << 20, "{r:#}");

    // Identity: time, type, host, tags, paths, summary; `original` names
    // the source snapshot.
    let src: Vec<Value> = serde_json::from_value(t.env.json(&["snapshots"])).unwrap();
    let dst: Vec<Value> = serde_json::from_value(t.off_json(&["snapshots"])).unwrap();
    assert_eq!(dst.len(), 2);
    for s in &src {
        let d = dst
            .iter()
            .find(|d| d["original"] == s["id"])
            .unwrap_or_else(|| panic!("no copy of {s:#} in {dst:#?}"));
        for k in [
            "time",
            "start",
            "end",
            "type",
            "host",
            "environment",
            "tags",
            "summary",
        ] {
            assert_eq!(d[k], s[k], "{k}");
        }
        for k in ["name", "paths", "summary", "sanitize"] {
            assert_eq!(d["parts"][0][k], s["parts"][0][k], "part {k}");
        }
        let entries = &d["parts"][0]["sanitize"]["entries"];
        assert_eq!(entries[0]["path"], "app/conf/.env", "{d:#}");
        assert_ne!(
            d["parts"][0]["tree"], s["parts"][0]["tree"],
            "ids are keyed"
        );
    }

    // Byte for byte, metadata for metadata, from the target: the same as
    // restored from the source (the .env redacted in both).
    for s in [&s1, &s2] {
        let copy = dst.iter().find(|d| d["original"] == s["id"]).unwrap();
        let short = s["short_id"].as_str().unwrap();
        let (from_src, from_dst) = (
            t.env.path(&format!("src-{short}")),
            t.env.path(&format!("dst-{short}")),
        );
        t.env
            .cmd()
            .args(["restore", short, "--target"])
            .arg(&from_src)
            .assert()
            .code(0);
        t.off()
            .args(["restore", copy["short_id"].as_str().unwrap(), "--target"])
            .arg(&from_dst)
            .assert()
            .code(0);
        assert_same_tree(&from_src.join("app"), &from_dst.join("app"));
        let env_file = std::fs::read_to_string(from_dst.join("app/conf/.env")).unwrap();
        assert!(!env_file.contains("sk-123456"), "{env_file}");
    }

    // Again: nothing copied, no pack added.
    let packs = t.packs();
    let again = t.copy_json(&[]);
    assert_eq!(again["copied"].as_array().unwrap().len(), 0, "{again:#}");
    assert_eq!(again["skipped"].as_array().unwrap().len(), 2, "{again:#}");
    assert_eq!(again["bytes_sent"], 0);
    assert_eq!(t.packs(), packs);

    // A new source snapshot with 512 KiB of new data: only that is sent,
    // and unchanged folders and files are not even read again.
    write(&t.data.join("new/fresh.dat"), &random_bytes(2, 512 << 10));
    let s3 = t.env.snapshot(&[]);
    let size = s3["snapshot"]["summary"]["bytes"].as_u64().unwrap();
    let r = t.copy_json(&[]);
    assert_eq!(
        ids(&r, "copied", "source"),
        vec![s3["id"].as_str().unwrap()]
    );
    let raw = r["raw_bytes_sent"].as_u64().unwrap();
    assert!((512 << 10..640 << 10).contains(&raw), "{r:#}");
    assert!(
        r["bytes_sent"].as_u64().unwrap() < size / 4,
        "{size}: {r:#}"
    );
    assert!(r["files_reused"].as_u64().unwrap() > 0, "{r:#}");
    assert!(r["bytes_read"].as_u64().unwrap() < 1 << 20, "{r:#}");
    check_clean(&t);
}

#[test]
fn copied_data_dedups_against_the_targets_own_snapshots() {
    let t = two();
    t.env.snapshot(&[]);
    t.copy_json(&[]);
    // The same bytes captured natively into the target, from another path
    // (no parent snapshot: every file is read and cut): no data is new.
    let moved = t.env.path("elsewhere/app");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&t.data, &moved).unwrap();
    t.env.components(&[("app", &[&moved])]);
    let out = t
        .off()
        .args(["snapshot", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = parse_json(&out);
    let sum = &v["snapshot"]["summary"];
    assert!(sum["bytes_read"].as_u64().unwrap() > 2 << 20, "{v:#}");
    // Only trees (inodes and paths differ) are new, no file content.
    assert!(sum["new_bytes"].as_u64().unwrap() < 64 << 10, "{v:#}");
}

#[test]
fn only_the_named_snapshot_is_copied() {
    let t = two();
    let s1 = t.env.snapshot(&[]);
    t.env.snapshot(&["app"]);
    let r = t.copy_json(&[s1["short_id"].as_str().unwrap()]);
    assert_eq!(
        ids(&r, "copied", "source"),
        vec![s1["id"].as_str().unwrap()]
    );
    let dst = t.off_json(&["snapshots"]);
    assert_eq!(dst.as_array().unwrap().len(), 1);
    assert_eq!(dst[0]["type"], "full");
    // --type filters like forget's.
    let r = t.copy_json(&["--type", "app"]);
    assert_eq!(r["copied"].as_array().unwrap().len(), 1, "{r:#}");
    assert_eq!(r["copied"][0]["type"], "app");
    check_clean(&t);
}

#[test]
fn a_wrong_source_password_is_exit_12() {
    let t = two();
    t.env.snapshot(&[]);
    write(&t.pw_file, b"not the password\n");
    t.copy(&[])
        .assert()
        .code(12)
        .stderr(predicate::str::contains("source repository"))
        .stderr(predicate::str::contains("password"));
    assert_eq!(t.off_json(&["snapshots"]), json!([]));
}

/// Configuration with `copy_to:` pointing at `target`, run files in the
/// sandbox.
fn config_with_copy_to(t: &Two, target: &Path) -> PathBuf {
    let log = t.env.path("log/run.log");
    t.env.config_value(json!({
        "repository": t.env.repo,
        "components": { "app": { "paths": [t.data] } },
        "operations": {
            "log_file": log,
            "state_file": t.env.path("state/state.json"),
        },
        "copy_to": { "repository": target, "password_file": t.env.path("target.pw") },
    }));
    write(&t.env.path("target.pw"), PW2.as_bytes());
    chmod(&t.env.path("target.pw"), 0o600);
    log
}

#[test]
fn run_copies_the_new_snapshot_and_a_broken_target_is_a_warning() {
    let t = two();
    let log = config_with_copy_to(&t, &t.off);
    t.env
        .cmd()
        .args(["run", "full"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("copied as"));
    let src = t.env.json(&["snapshots"]);
    let dst = t.off_json(&["snapshots"]);
    assert_eq!(dst.as_array().unwrap().len(), 1);
    assert_eq!(dst[0]["original"], src[0]["id"]);
    let text = std::fs::read_to_string(&log).unwrap();
    let first: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(first["copied_to"], dst[0]["id"], "{first:#}");
    assert!(
        first["copy_bytes_sent"].as_u64().unwrap() > 2 << 20,
        "{first:#}"
    );

    // Target gone: the snapshot is kept here, the run warns (exit 1) in its
    // output and its log line.
    std::fs::rename(&t.off, t.env.path("offsite-away")).unwrap();
    t.env
        .cmd()
        .args(["run", "full"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("copy to"));
    assert_eq!(t.env.json(&["snapshots"]).as_array().unwrap().len(), 2);
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["outcome"], "warning", "{last:#}");
    assert!(
        last["error"].as_str().unwrap().contains("copy to"),
        "{last:#}"
    );

    // Back again: the next run copies its snapshot and the one missed.
    std::fs::rename(t.env.path("offsite-away"), &t.off).unwrap();
    t.env.cmd().args(["run", "full"]).assert().code(0);
    assert_eq!(t.off_json(&["snapshots"]).as_array().unwrap().len(), 3);
    check_clean(&t);
}

#[test]
fn a_copy_killed_before_its_record_leaves_the_target_consistent() {
    let t = two();
    t.env.snapshot(&[]);
    write(&t.data.join("more.dat"), &random_bytes(3, 300 << 10));
    t.env.snapshot(&[]);
    let status = t
        .copy(&[])
        .env("OPC_FAULT", "copy-before-record")
        .output()
        .unwrap()
        .status;
    assert_eq!(status.signal(), Some(9), "{status:?}");
    // Packs without a snapshot: nothing visible, nothing damaged.
    assert_eq!(t.off_json(&["snapshots"]), json!([]));
    assert!(t.packs() > 0);
    check_clean(&t);
    // Stale lock of the killed process on this host is cleaned up by the
    // rerun, which completes.
    let r = t.copy_json(&[]);
    assert_eq!(r["copied"].as_array().unwrap().len(), 2, "{r:#}");
    check_clean(&t);
    t.second_copy_restores_as_the_source();
}

#[test]
fn a_target_sharing_chunker_params_keeps_ids_and_reads_only_missing_blobs() {
    let t = two();
    let same = t.env.path("same");
    t.env
        .cmd()
        .env("OPC_PASSWORD", PW2)
        .env("OPC_REPO", &same)
        .env("OPC_FROM_PASSWORD_FILE", &t.pw_file)
        .args(INIT_FAST)
        .arg("--copy-chunker-params-from")
        .arg(&t.env.repo)
        .assert()
        .code(0);
    let t = Two { off: same, ..t };
    t.env.snapshot(&[]);
    let r = t.copy_json(&[]);
    assert_eq!(r["copied"].as_array().unwrap().len(), 1, "{r:#}");
    let src = t.env.json(&["snapshots"]);
    let dst = t.off_json(&["snapshots"]);
    assert_eq!(dst[0]["parts"][0]["tree"], src[0]["parts"][0]["tree"]);

    write(&t.data.join("new/fresh.dat"), &random_bytes(4, 512 << 10));
    t.env.snapshot(&[]);
    let r = t.copy_json(&[]);
    assert_eq!(r["copied"].as_array().unwrap().len(), 1, "{r:#}");
    assert_eq!(r["files_read"], 1, "{r:#}");
    let raw = r["raw_bytes_sent"].as_u64().unwrap();
    assert!((512 << 10..640 << 10).contains(&raw), "{r:#}");
    check_clean(&t);
    t.second_copy_restores_as_the_source();
}

#[test]
fn copies_killed_while_writing_packs_leave_the_target_consistent() {
    let t = two();
    // 1 MiB packs: a copy writes several, and is killed after each new one.
    let small = t.env.path("small");
    t.env
        .cmd()
        .env("OPC_PASSWORD", PW2)
        .env("OPC_REPO", &small)
        .args(INIT_FAST)
        .args(["--pack-size-mib", "1"])
        .assert()
        .code(0);
    let t = Two { off: small, ..t };
    t.env.snapshot(&[]);
    write(&t.data.join("more.dat"), &random_bytes(5, 3 << 20));
    t.env.snapshot(&["app"]);
    let mut killed = 0;
    for _ in 0..4 {
        let before = t.packs();
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("opc-store"))
            .env("OPC_PASSWORD", PW2)
            .env("OPC_FROM_PASSWORD_FILE", &t.pw_file)
            .env("OPC_CACHE_DIR", t.env.path("cache"))
            .env_remove("OPC_FAULT")
            .args(["copy", "--quiet", "--from"])
            .arg(&t.env.repo)
            .arg("--to")
            .arg(&t.off)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        while t.packs() == before && child.try_wait().unwrap().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        check_clean(&t);
    }
    assert!(killed >= 2, "only {killed} copies were killed half-way");
    // Each rerun reused the packs of the killed ones; the last completes.
    let r = t.copy_json(&[]);
    let total = r["copied"].as_array().unwrap().len() + r["skipped"].as_array().unwrap().len();
    assert_eq!(total, 2, "{r:#}");
    check_clean(&t);
    t.second_copy_restores_as_the_source();
}

#[test]
fn run_applies_the_retention_to_the_copy_target_when_asked() {
    let t = two();
    let old = (chrono::Local::now() - chrono::Duration::days(30)).to_rfc3339();
    t.env.snapshot(&["--time", &old]);
    t.copy_json(&[]);
    assert_eq!(t.off_json(&["snapshots"]).as_array().unwrap().len(), 1);
    config_with_copy_to(&t, &t.off);
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&t.env.config).unwrap()).unwrap();
    cfg["copy_to"]["retention"] = json!(true);
    t.env.config_value(cfg);
    t.env.cmd().args(["run", "full"]).assert().code(0);
    // Both forgot the 30-day-old full snapshot (7 days kept) and hold the
    // new one.
    let src = t.env.json(&["snapshots"]);
    let dst = t.off_json(&["snapshots"]);
    assert_eq!(src.as_array().unwrap().len(), 1, "{src:#}");
    assert_eq!(dst.as_array().unwrap().len(), 1, "{dst:#}");
    assert_eq!(dst[0]["original"], src[0]["id"]);
    check_clean(&t);
}

#[test]
fn a_relative_copy_to_path_is_a_configuration_error() {
    let t = two();
    config_with_copy_to(&t, Path::new("offsite"));
    t.env
        .cmd()
        .env_remove("OPC_REPO")
        .arg("snapshots")
        .assert()
        .code(15)
        .stderr(predicate::str::contains("copy_to.repository"));
}
