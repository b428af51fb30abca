//! Repositories on S3 (a real Garage on 127.0.0.1, see `support::garage`):
//! every command works on them, two hosts share one, an upload killed in
//! the middle leaves the repository consistent, and a wrong endpoint, bad
//! credentials or a missing bucket give clear errors and exit codes.
//! Each test uses a prefix of its own, so they run in parallel.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::garage::{self, Garage, S3};
use crate::support::manifest::{assert_same_tree, manifest};
use crate::support::{random_bytes, short_id, tree, write, Env, INIT_FAST};

/// The shared server, or return (skipped loudly; a failure under CI).
macro_rules! server {
    () => {
        match garage::shared() {
            Some(s) => s,
            None => return,
        }
    };
}

/// A sandbox whose repository is `s3:.../<name>-<random>` on `s3`.
fn s3_env(s3: &S3, name: &str) -> Env {
    let mut env = Env::new();
    env.repo = s3.repo_url(name);
    env.vars = s3.vars();
    env
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn num(report: &Value, key: &str) -> u64 {
    report["snapshot"]["summary"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {report:#}"))
}

/// 40 files of 1-40 KB and one 3 MiB file.
fn data_tree(root: &Path, seed: u64) {
    for i in 0..40u64 {
        write(
            &root.join(format!("d{}/f{i}.bin", i % 5)),
            &random_bytes(seed + i, 1_000 + (i as usize * 997) % 40_000),
        );
    }
    write(&root.join("big.dat"), &random_bytes(seed + 1000, 3 << 20));
}

/// The cache folder of the (only) repository under `cache`.
fn index_dir(cache: &Path) -> PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(cache)
        .expect("cache exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("pin.json").exists())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn init_snapshot_restore_incremental_export_import_and_status() {
    let s3 = server!();
    let env = s3_env(s3, "roundtrip");
    env.init();
    // A second init on the same prefix is refused.
    env.cmd()
        .args(INIT_FAST)
        .assert()
        .failure()
        .stderr(predicates::str::contains("already holds"));
    let src = env.path("data/app");
    tree::everything(&src);
    data_tree(&src.join("more"), 1);
    let state = env.path("state/run-state.json");
    env.config_value(serde_json::json!({
        "repository": env.repo,
        "components": { "app": { "paths": [src] } },
        "operations": {
            "log_file": env.path("state/log.jsonl"),
            "state_file": state,
        },
    }));
    let first = env.snapshot(&[]);
    assert_eq!(first["warnings"].as_array().map(Vec::len), Some(0));
    assert!(num(&first, "new_bytes") > 3 << 20, "{first:#}");
    assert!(
        !env.path("repo").exists(),
        "nothing is written to a local folder"
    );

    let out = env.path("out");
    env.restore(&["latest", "--target", s(&out)]);
    assert_same_tree(&src, &out.join("app"));

    // Unchanged data: nothing read, nothing stored.
    let second = env.snapshot(&[]);
    assert_eq!(num(&second, "files_read"), 0, "{second:#}");
    assert_eq!(num(&second, "new_bytes"), 0, "{second:#}");

    // Export to tar.gz, import it back as a new snapshot, restore that.
    let exported = env.json(&["export", "latest", "--output-dir", s(&env.path("tgz"))]);
    let archive = PathBuf::from(exported["path"].as_str().expect("path"));
    let imported = env.json(&["import", s(&archive)]);
    let id = imported["imported"][0]["snapshot_id"]
        .as_str()
        .unwrap_or_else(|| panic!("import report without id: {imported:#}"))
        .to_string();
    let out2 = env.path("out2");
    env.restore(&[&id[..8], "--target", s(&out2)]);
    assert_eq!(
        manifest(&out.join("app/more")),
        manifest(&out2.join("app/more"))
    );

    // The unattended job and status: the size comes from the index.
    env.cmd().args(["run", "app"]).assert().code(0);
    // Exit 17: the types that never ran are overdue; `app` is fine.
    let out = env.cmd().args(["status", "--json"]).assert().code(17);
    let st = crate::support::parse_json(&out.get_output().stdout);
    let app = st["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "app")
        .unwrap_or_else(|| panic!("{st:#}"));
    let size = app["last_success"]["repository_size"].as_u64();
    assert!(size.is_some_and(|n| n > 3 << 20), "{st:#}");
    assert!(state.exists());
}

#[test]
fn forget_and_prune_leave_a_clean_repository() {
    let s3 = server!();
    let env = s3_env(s3, "prune");
    env.cmd()
        .args(INIT_FAST)
        .args(["--pack-size-mib", "1"])
        .assert()
        .code(0);
    let src = env.path("data/app");
    data_tree(&src, 10);
    env.components(&[("app", &[&src])]);
    let old = short_id(&env.snapshot(&[]));
    std::fs::remove_dir_all(&src).unwrap();
    data_tree(&src, 20);
    env.snapshot(&[]);
    env.cmd().args(["forget", &old]).assert().code(0);
    let pruned = env.json(&["prune"]);
    assert!(pruned.to_string().contains("deleted") || pruned.is_object());
    env.cmd().args(["check", "--read-data"]).assert().code(0);
    let out = env.path("out");
    env.restore(&["latest", "--target", s(&out)]);
    assert_same_tree(&src, &out.join("app"));
}

#[test]
fn two_hosts_share_a_repository_and_the_index_is_rebuilt() {
    let s3 = server!();
    let a = s3_env(s3, "hosts");
    a.init();
    let src_a = a.path("data/app");
    data_tree(&src_a, 30);
    a.components(&[("app", &[&src_a])]);
    a.snapshot(&[]);

    // Host B: another sandbox (another cache) on the same repository.
    let mut b = Env::new();
    b.repo = a.repo.clone();
    b.vars = a.vars.clone();
    let src_b = b.path("data/app");
    data_tree(&src_b, 30); // the same content: deduplicated against A's packs
    write(&src_b.join("only-b.txt"), b"written on host b\n");
    b.components(&[("app", &[&src_b])]);
    let listed = b.json(&["snapshots"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed:#}");
    let from_b = b.snapshot(&[]);
    assert!(num(&from_b, "new_bytes") < 100_000, "{from_b:#}");

    // A sees B's snapshot and packs (its index catches up) and restores it.
    let listed = a.json(&["snapshots"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed:#}");
    let out = a.path("out");
    a.restore(&[&short_id(&from_b), "--target", s(&out)]);
    assert_same_tree(&src_b, &out.join("app"));

    // Without its cache, A rebuilds the index from the packs.
    std::fs::remove_dir_all(index_dir(&a.path("cache"))).unwrap();
    a.cmd().args(["check", "--read-data"]).assert().code(0);
    let again = a.snapshot(&[]);
    assert_eq!(num(&again, "new_bytes"), 0, "{again:#}");
}

#[test]
fn an_upload_killed_midway_leaves_the_repository_consistent() {
    let Some(mut g) = Garage::private() else {
        return;
    };
    let env = s3_env(&g.s3, "killed");
    env.cmd()
        .args(INIT_FAST)
        .args(["--pack-size-mib", "4"])
        .assert()
        .code(0);
    let src = env.path("data/app");
    for i in 0..12u64 {
        write(
            &src.join(format!("f{i}.bin")),
            &random_bytes(500 + i, 4 << 20),
        );
    }
    env.components(&[("app", &[&src])]);
    let cache = env.path("cache");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("opc-store"));
    child
        .args(["snapshot", "-q"])
        .env("OPC_PASSWORD", crate::support::PASSWORD)
        .env("OPC_REPO", &env.repo)
        .env("OPC_CONFIG", &env.config)
        .env("OPC_CACHE_DIR", &cache)
        .envs(env.vars.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = child.spawn().expect("snapshot starts");
    // Kill the server once a third pack is being filled: two were sealed
    // and handed to the uploads.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = std::collections::HashSet::new();
    while Instant::now() < deadline && seen.len() < 3 {
        for dir in std::fs::read_dir(&cache).into_iter().flatten() {
            let tmp = dir.unwrap().path().join("tmp");
            for f in std::fs::read_dir(tmp).into_iter().flatten() {
                seen.insert(f.unwrap().file_name());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        seen.len() >= 3,
        "packs never appeared in the cache: {seen:?}"
    );
    g.kill();
    let out = child.wait_with_output().expect("snapshot ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the snapshot must fail: {stderr}");
    assert_eq!(out.status.code(), Some(18), "{stderr}");
    assert!(stderr.contains("127.0.0.1"), "{stderr}");

    g.start();
    // The dead snapshot's lock (a process of this host) is removed on
    // sight; whatever it uploaded is either whole or absent.
    env.cmd().args(["check", "--read-data"]).assert().code(0);
    let listed = env.json(&["snapshots"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed:#}");
    env.snapshot(&[]);
    env.cmd().args(["check", "--read-data"]).assert().code(0);
    let restored = env.path("out");
    env.restore(&["latest", "--target", s(&restored)]);
    assert_same_tree(&src, &restored.join("app"));
}

#[test]
fn bad_credentials_missing_bucket_and_unreachable_endpoints_say_what_to_do() {
    let s3 = server!();
    let mut env = s3_env(s3, "errors");
    env.vars = s3
        .vars()
        .into_iter()
        .map(|(k, v)| {
            if k == "AWS_SECRET_ACCESS_KEY" {
                (k, "f".repeat(64))
            } else {
                (k, v)
            }
        })
        .collect();
    let out = env.cmd().arg("snapshots").assert().code(19);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("refused access") && err.contains("AWS_SECRET_ACCESS_KEY"),
        "{err}"
    );

    let mut env = s3_env(s3, "errors");
    env.repo = PathBuf::from(format!("s3:{}/no-such-bucket-here/x", s3.endpoint));
    let out = env.cmd().args(INIT_FAST).assert().code(19);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("no-such-bucket-here") && err.contains("create it"),
        "{err}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.repo = PathBuf::from(format!("s3:http://127.0.0.1:{port}/b/x"));
    env.vars.push(("OPC_S3_MAX_RETRIES".into(), "0".into()));
    let out = env.cmd().arg("snapshots").assert().code(18);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("check the endpoint"), "{err}");

    env.repo = PathBuf::from("s3:ftp://127.0.0.1/b");
    let out = env.cmd().arg("snapshots").assert().code(15);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("expected s3:https://HOST"), "{err}");
}

/// The off-site copy: `copy` from a local repository into one on S3 (other
/// password, other keys) restores byte for byte from S3, a second copy
/// sends nothing, and `run` with `copy_to:` on S3 copies each new snapshot.
#[test]
fn copy_from_a_local_repository_to_s3_and_run_copy_to() {
    const PW2: &str = "the off-site password";
    let s3 = server!();
    let local = Env::with_repo();
    let src = local.path("data/app");
    data_tree(&src, 7);
    local.components(&[("app", &[&src])]);
    local.snapshot(&[]);
    let target = s3.repo_url("copy");
    let on_s3 = |c: &mut assert_cmd::Command| {
        c.envs(s3.vars())
            .env("OPC_FROM_PASSWORD", crate::support::PASSWORD)
            .env("OPC_PASSWORD", PW2);
    };
    let mut init = local.cmd();
    on_s3(&mut init);
    init.env("OPC_REPO", &target)
        .args(INIT_FAST)
        .assert()
        .code(0);
    let copy = |extra: &[&str]| -> Value {
        let mut c = local.cmd();
        on_s3(&mut c);
        let out = c
            .args([
                "--json",
                "copy",
                "--from",
                s(&local.repo),
                "--to",
                s(&target),
            ])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        crate::support::parse_json(&out.stdout)
    };
    let first = copy(&[]);
    assert_eq!(
        first["copied"].as_array().map(Vec::len),
        Some(1),
        "{first:#}"
    );
    assert!(first["bytes_sent"].as_u64().unwrap() > 3 << 20, "{first:#}");
    let again = copy(&[]);
    assert_eq!(again["bytes_sent"].as_u64(), Some(0), "{again:#}");

    let out = local.path("from-s3");
    let mut restore = local.cmd();
    on_s3(&mut restore);
    restore
        .args([
            "--repo",
            s(&target),
            "restore",
            "latest",
            "--target",
            s(&out),
        ])
        .assert()
        .code(0);
    assert_same_tree(&src, &out.join("app"));

    // run: snapshot locally, then copy the new snapshot to S3.
    let pw_file = local.path("offsite.pw");
    write(&pw_file, format!("{PW2}\n").as_bytes());
    crate::support::tree::chmod(&pw_file, 0o600);
    write(&src.join("new-today.bin"), &random_bytes(99, 200_000));
    local.config_value(serde_json::json!({
        "repository": local.repo,
        "components": { "app": { "paths": [src] } },
        "operations": {
            "log_file": local.path("state/log.jsonl"),
            "state_file": local.path("state/run-state.json"),
        },
        "copy_to": { "repository": target, "password_file": pw_file },
    }));
    let mut run = local.cmd();
    run.envs(s3.vars()).args(["run", "app"]).assert().code(0);
    let log = std::fs::read_to_string(local.path("state/log.jsonl")).unwrap();
    let line: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert!(line["copied_to"].is_string(), "{line:#}");
    let mut list = local.cmd();
    on_s3(&mut list);
    let listed = list
        .args(["--json", "--repo", s(&target), "snapshots"])
        .output()
        .unwrap();
    let v = crate::support::parse_json(&listed.stdout);
    let n = v
        .as_array()
        .or_else(|| v["snapshots"].as_array())
        .map(Vec::len);
    assert_eq!(n, Some(2), "{v:#}");
}
