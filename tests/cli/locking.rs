//! Repository locks between real processes: snapshots share the
//! repository, prune and forget wait for them or fail with exit 11 naming
//! the holder; a lock left by a killed process does not block anyone, and
//! `unlock` removes it. Holders are frozen with SIGSTOP once their lock
//! object is in `<repo>/locks`, so the timing is deterministic.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use predicates::prelude::*;
use serde_json::Value;

use crate::support::manifest::{assert_same, manifest, Manifest};
use crate::support::{parse_json, random_bytes, write, Env, PASSWORD};

/// The binary as a `std::process::Command` with the sandbox's environment
/// (see `Env::cmd`), for processes that are spawned, stopped and killed.
fn std_cmd(env: &Env) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_opc-store"));
    c.env("OPC_PASSWORD", PASSWORD)
        .env("OPC_REPO", &env.repo)
        .env("OPC_CONFIG", &env.config)
        .env("OPC_CACHE_DIR", env.tmp.path().join("cache"))
        .env_remove("OPC_PASSWORD_FILE")
        .env_remove("OPC_LOG")
        .env_remove("OPC_FAULT")
        .env_remove("OPC_LOCK_WAIT")
        .env_remove("ENVIRONMENT")
        .current_dir(env.tmp.path())
        .stdin(Stdio::null());
    c
}

/// A spawned `opc-store` whose stdout and stderr go to files; killed on
/// drop so a failing test leaves no stopped process behind.
struct Proc {
    child: Child,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

impl Proc {
    fn spawn(env: &Env, name: &str, cmd: &mut std::process::Command) -> Proc {
        let out = env.path(&format!("{name}.stdout"));
        let err = env.path(&format!("{name}.stderr"));
        let child = cmd
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Proc { child, out, err }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.pid() as i32), s).unwrap();
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap()
    }

    /// Waits for the exit; returns the code, stdout and stderr.
    fn finish(&mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.running() {
            assert!(Instant::now() < deadline, "process {} hangs", self.pid());
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = self.child.wait().unwrap();
        (
            status.code(),
            std::fs::read_to_string(&self.out).unwrap(),
            self.stderr(),
        )
    }

    /// Waits for a successful exit; returns stdout.
    fn success(&mut self) -> String {
        let (code, out, err) = self.finish();
        assert_eq!(code, Some(0), "pid {} failed:\n{err}", self.pid());
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lock objects in `<repo>/locks` (not temporary files being written).
fn lock_objects(repo: &Path) -> Vec<String> {
    std::fs::read_dir(repo.join("locks"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `args` and freezes it with SIGSTOP as soon as its lock object
/// exists, so it holds the lock for as long as the test wants. Retries
/// when the command finished before it could be caught.
fn frozen_holder(env: &Env, args: &[&str]) -> Proc {
    frozen_holder_with(env, args, &[])
}

/// [`frozen_holder`] with extra environment variables.
fn frozen_holder_with(env: &Env, args: &[&str], vars: &[(&str, &Path)]) -> Proc {
    for _ in 0..10 {
        let before = lock_objects(&env.repo);
        let mut cmd = std_cmd(env);
        cmd.args(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut p = Proc::spawn(env, "holder", &mut cmd);
        let deadline = Instant::now() + Duration::from_secs(30);
        while lock_objects(&env.repo).len() <= before.len() && p.running() {
            assert!(Instant::now() < deadline, "no lock appeared");
            std::thread::sleep(Duration::from_millis(1));
        }
        if !p.running() {
            p.success();
            continue;
        }
        p.signal(Signal::SIGSTOP);
        // Stopped while holding its lock (not after releasing it)?
        if p.running() && lock_objects(&env.repo).len() > before.len() {
            return p;
        }
        p.signal(Signal::SIGCONT);
        p.success();
    }
    panic!("{args:?} always finished before it could be stopped");
}

/// Starts `snapshot ARGS`, kills it with SIGKILL once it holds its lock,
/// reaps it, and returns its pid. Its lock object stays behind.
fn killed_snapshot(env: &Env, kind: &str) -> u32 {
    let p = frozen_holder(env, &["snapshot", kind]);
    let pid = p.pid();
    drop(p); // SIGKILL and wait
    pid
}

/// Waits until `p`'s stderr contains `text` (or it exits).
fn wait_for_stderr(p: &mut Proc, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p.stderr().contains(text) {
        assert!(
            p.running() && Instant::now() < deadline,
            "never printed {text:?}; stderr:\n{}",
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn restore_matches(env: &Env, id: &str, states: &BTreeMap<String, Manifest>) {
    let dir = tempfile::tempdir_in(env.tmp.path()).unwrap();
    let out = dir.path().join("out");
    env.cmd()
        .args(["restore", id, "--no-verify", "--target"])
        .arg(&out)
        .assert()
        .code(0);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), states.len(), "{names:?}");
    for (comp, m) in states {
        assert_same(m, &manifest(&out.join(comp)));
    }
}

/// `count` files of `size` random bytes under `dir`.
fn fill(dir: &Path, seed: u64, count: u64, size: usize) {
    for i in 0..count {
        write(
            &dir.join(format!("f{i:03}.dat")),
            &random_bytes(seed + i, size),
        );
    }
}

/// Two components, chromadb and application, of `mb` MB each.
fn two_big_components(env: &Env, mb: u64) -> BTreeMap<String, Manifest> {
    let (chroma, app) = (env.path("data/chromadb"), env.path("data/application"));
    fill(&chroma, 1_000, mb * 10, 100_000);
    fill(&app, 2_000, mb * 10, 100_000);
    env.components(&[("chromadb", &[&chroma]), ("application", &[&app])]);
    [
        ("chromadb".to_string(), manifest(&chroma)),
        ("application".to_string(), manifest(&app)),
    ]
    .into()
}

fn rfc(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap()
}

#[test]
fn concurrent_snapshots_share_the_repository_and_all_restore() {
    let env = Env::with_repo();
    let states = two_big_components(&env, 1);
    // A barrier in the run's `before` hook (which runs after a snapshot's
    // start is taken and before its end): none goes on until all three have
    // started, so they overlap however loaded the machine is.
    let arrived = env.path("arrived");
    std::fs::create_dir_all(&arrived).unwrap();
    let barrier = format!(
        "touch {d}/$OPC_SNAPSHOT_TYPE; i=0; while [ $(ls {d} | wc -l) -lt 3 ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done",
        d = arrived.display()
    );
    env.config_value(serde_json::json!({
        "repository": env.repo,
        "components": {
            "chromadb": { "paths": [env.path("data/chromadb")] },
            "application": { "paths": [env.path("data/application")] },
        },
        "hooks": { "before": barrier },
    }));
    let only =
        |c: &str| -> BTreeMap<String, Manifest> { [(c.to_string(), states[c].clone())].into() };
    // Three at once: two components, and a full one storing the same data
    // as both (two writers of the same blobs).
    let mut procs: Vec<(Proc, BTreeMap<String, Manifest>)> = ["chromadb", "application", "full"]
        .iter()
        .map(|k| {
            let p = Proc::spawn(&env, k, std_cmd(&env).args(["snapshot", k, "--json"]));
            let want = if *k == "full" {
                states.clone()
            } else {
                only(k)
            };
            (p, want)
        })
        .collect();
    let reports: Vec<Value> = procs
        .iter_mut()
        .map(|(p, _)| parse_json(p.success().as_bytes()))
        .collect();
    // They really ran side by side.
    let latest_start = reports.iter().map(|r| rfc(&r["snapshot"]["start"])).max();
    let earliest_end = reports.iter().map(|r| rfc(&r["snapshot"]["end"])).min();
    assert!(
        latest_start < earliest_end,
        "the snapshots did not overlap: {latest_start:?} >= {earliest_end:?}"
    );
    assert!(lock_objects(&env.repo).is_empty());
    for (r, (_, want)) in reports.iter().zip(&procs) {
        restore_matches(&env, r["id"].as_str().unwrap(), want);
    }
    // Prune copes with blobs stored twice by concurrent writers: it keeps
    // everything the three snapshots need and frees the second copies
    // (2 MB of distinct, incompressible content in all). How the copies
    // fall into packs depends on timing: with the default 10% threshold a
    // pack holding a few second copies may rightly be kept, so repack all.
    env.cmd()
        .args(["prune", "-q", "--max-unused", "0"])
        .assert()
        .code(0);
    let stored = crate::support::du(&env.repo.join("data"));
    assert!(stored < 2_100_000, "{stored} bytes stored after prune");
    let dry = env.json(&["prune", "--dry-run"]);
    assert_eq!(dry["bytes_freed"], 0, "{dry:#}");
    for (r, (_, want)) in reports.iter().zip(&procs) {
        restore_matches(&env, r["id"].as_str().unwrap(), want);
    }
}

#[test]
fn prune_fails_with_exit_11_while_a_snapshot_runs_or_waits_with_lock_wait() {
    let env = Env::with_repo();
    let states = two_big_components(&env, 1);
    let mut snap = frozen_holder(&env, &["snapshot", "--json"]);
    let holder = format!("a shared lock held by `snapshot` (pid {} on ", snap.pid());

    env.cmd().args(["prune"]).assert().code(11).stderr(
        predicate::str::contains("the repository is locked")
            .and(predicate::str::contains(holder.as_str()))
            .and(predicate::str::contains("--lock-wait")),
    );
    env.cmd()
        .args(["forget", "--keep-last", "1"])
        .assert()
        .code(11)
        .stderr(predicate::str::contains(holder.as_str()));
    // A refused command leaves no lock of its own behind.
    assert_eq!(lock_objects(&env.repo).len(), 1);

    let mut prune = Proc::spawn(
        &env,
        "prune",
        std_cmd(&env).args(["prune", "--lock-wait", "30s", "--json"]),
    );
    wait_for_stderr(&mut prune, &format!("waiting up to 30s for {holder}"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(prune.running(), "prune did not wait for the snapshot");

    snap.signal(Signal::SIGCONT);
    let report = parse_json(snap.success().as_bytes());
    let pr = parse_json(prune.success().as_bytes());
    assert_eq!(
        pr["snapshots"], 1,
        "prune ran before the snapshot was saved: {pr:#}"
    );
    restore_matches(&env, report["id"].as_str().unwrap(), &states);
    assert!(lock_objects(&env.repo).is_empty());
}

/// A repository where prune has something to do (a forgotten snapshot's
/// data), so it holds its lock for a while.
fn repo_with_garbage(env: &Env) -> BTreeMap<String, Manifest> {
    let db = env.path("data/db");
    fill(&db, 10, 12, 100_000);
    env.components(&[("db", &[&db])]);
    let first = env.snapshot(&["db"]);
    fill(&db, 50, 6, 100_000);
    env.snapshot(&["db"]);
    env.cmd()
        .args(["forget", first["id"].as_str().unwrap(), "-q"])
        .assert()
        .code(0);
    [("db".to_string(), manifest(&db))].into()
}

#[test]
fn snapshot_restore_and_forget_fail_while_prune_runs_or_wait_with_opc_lock_wait() {
    let env = Env::with_repo();
    let states = repo_with_garbage(&env);
    let mut prune = frozen_holder(&env, &["prune", "-q"]);
    let holder = format!("an exclusive lock held by `prune` (pid {} on ", prune.pid());

    for args in [
        &["snapshot", "db"][..],
        &["restore", "latest", "--target", "out"],
        &["forget", "--keep-last", "1"],
        &["repair", "index"],
    ] {
        env.cmd()
            .args(args)
            .assert()
            .code(11)
            .stderr(predicate::str::contains(holder.as_str()));
    }
    assert!(!env.path("out").exists(), "restore wrote before locking");
    // unlock leaves a live holder alone.
    env.cmd()
        .arg("unlock")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!("still locked: {holder}")));
    assert_eq!(lock_objects(&env.repo).len(), 1);

    let mut snap = Proc::spawn(
        &env,
        "snapshot",
        std_cmd(&env)
            .args(["snapshot", "db", "--json"])
            .env("OPC_LOCK_WAIT", "30s"),
    );
    wait_for_stderr(&mut snap, &format!("waiting up to 30s for {holder}"));
    prune.signal(Signal::SIGCONT);
    prune.success();
    let report = parse_json(snap.success().as_bytes());
    restore_matches(&env, report["id"].as_str().unwrap(), &states);
    assert!(lock_objects(&env.repo).is_empty());
}

#[test]
fn a_lock_left_by_a_killed_snapshot_does_not_block_prune() {
    let env = Env::with_repo();
    let states = two_big_components(&env, 1);
    let kept = env.snapshot(&["chromadb"]);
    let pid = killed_snapshot(&env, "full");
    assert_eq!(
        lock_objects(&env.repo).len(),
        1,
        "the killed snapshot's lock is gone: nothing to test"
    );

    let out = env
        .cmd()
        .args(["prune", "--json"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("waiting"), "{err}");
    let rep = parse_json(&out.stdout);
    assert_eq!(rep["snapshots"], 1);
    assert!(
        lock_objects(&env.repo).is_empty(),
        "stale lock of pid {pid} kept"
    );
    let tmp: Vec<_> = std::fs::read_dir(env.repo.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(tmp.is_empty(), "killed writer's files left: {tmp:?}");
    restore_matches(
        &env,
        kept["id"].as_str().unwrap(),
        &[("chromadb".to_string(), states["chromadb"].clone())].into(),
    );
}

#[test]
fn unlock_removes_stale_locks_and_remove_all_removes_live_ones() {
    let env = Env::with_repo();
    let states = two_big_components(&env, 1);
    env.cmd()
        .arg("unlock")
        .assert()
        .code(0)
        .stdout("no locks\n");

    let pid = killed_snapshot(&env, "chromadb");
    let rep = env.json(&["unlock"]);
    let removed = rep["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 1, "{rep:#}");
    assert_eq!(removed[0]["kind"], "shared");
    assert_eq!(removed[0]["command"], "snapshot");
    assert_eq!(removed[0]["pid"], pid);
    assert_eq!(rep["remaining"], serde_json::json!([]));
    assert!(lock_objects(&env.repo).is_empty());

    let pid = killed_snapshot(&env, "application");
    env.cmd()
        .arg("unlock")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "removed a shared lock held by `snapshot` (pid {pid} on "
        )));
    assert!(lock_objects(&env.repo).is_empty());

    // A live holder stays unless --remove-all.
    let mut snap = frozen_holder(&env, &["snapshot", "--json"]);
    let rep = env.json(&["unlock"]);
    assert_eq!(rep["removed"], serde_json::json!([]));
    assert_eq!(rep["remaining"][0]["pid"], snap.pid());
    assert_eq!(lock_objects(&env.repo).len(), 1);
    let rep = env.json(&["unlock", "--remove-all"]);
    assert_eq!(rep["removed"][0]["pid"], snap.pid(), "{rep:#}");
    assert!(lock_objects(&env.repo).is_empty());
    // The holder, resumed, completes; releasing its vanished lock is no error.
    snap.signal(Signal::SIGCONT);
    let report = parse_json(snap.success().as_bytes());
    restore_matches(&env, report["id"].as_str().unwrap(), &states);
}

/// Prune and snapshot started at the same instant, again and again, both
/// with a lock wait. Each round's snapshot holds content that only a just
/// forgotten snapshot held: were both to run at once, prune would delete
/// the blobs the snapshot deduplicates against. Every snapshot must
/// restore, whichever took the lock first.
#[test]
fn racing_prune_and_snapshot_never_lose_data() {
    let env = Env::with_repo();
    let db = env.path("data/db");
    env.components(&[("db", &[&db])]);
    let mut kept = Vec::new();
    for round in 0..6u64 {
        std::fs::remove_dir_all(&db).ok();
        fill(&db, 1_000 * (round + 1), 8, 40_000);
        let want: BTreeMap<String, Manifest> = [("db".to_string(), manifest(&db))].into();
        let garbage = env.snapshot(&["db"]);
        env.cmd()
            .args(["forget", garbage["id"].as_str().unwrap(), "-q"])
            .assert()
            .code(0);
        let mut snap = Proc::spawn(
            &env,
            "snapshot",
            std_cmd(&env)
                .args(["snapshot", "db", "--json"])
                .env("OPC_LOCK_WAIT", "30s"),
        );
        let mut prune = Proc::spawn(
            &env,
            "prune",
            std_cmd(&env).args(["prune", "--json", "--lock-wait", "30s"]),
        );
        let report = parse_json(snap.success().as_bytes());
        let pr = parse_json(prune.success().as_bytes());
        eprintln!(
            "round {round}: prune ran {} the snapshot",
            if pr["snapshots"] == round + 1 {
                "after"
            } else {
                "before"
            }
        );
        kept.push((report["id"].as_str().unwrap().to_string(), want));
        for (id, want) in &kept {
            restore_matches(&env, id, want);
        }
        // Mark refuses when a referenced blob is missing.
        env.cmd()
            .args(["prune", "--dry-run", "-q"])
            .assert()
            .code(0);
    }
}

/// Writes a lock object the way `docs/FORMAT.md` §5 and §9 describe it, in
/// a repository made with `--encryption none` (where anyone can seal):
/// `pt || BLAKE3(u64le(len(aad)) || aad || pt)[..16]`, with
/// `aad = "opc-store object v1 locks/" || id`. Returns the object's name.
fn plant_lock(env: &Env, seed: u64, info: &Value) -> String {
    let id = random_bytes(seed, 32);
    let pt = serde_json::to_vec(info).unwrap();
    let mut aad = b"opc-store object v1 locks/".to_vec();
    aad.extend_from_slice(&id);
    let mut h = blake3::Hasher::new();
    h.update(&(aad.len() as u64).to_le_bytes());
    h.update(&aad);
    h.update(&pt);
    let mut sealed = pt;
    sealed.extend_from_slice(&h.finalize().as_bytes()[..16]);
    let name = hex(&id);
    write(&env.repo.join("locks").join(&name), &sealed);
    name
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The pid of a process that has exited (and was reaped).
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    c.wait().unwrap();
    c.id()
}

#[test]
fn locks_of_other_hosts_are_never_presumed_stale() {
    let env = Env::new();
    env.cmd()
        .args(crate::support::INIT_FAST)
        .args(["--encryption", "none"])
        .assert()
        .code(0);
    let src = env.path("data/app");
    write(&src.join("a"), b"a");
    env.components(&[("application", &[&src])]);
    let time = "2024-12-01T02:00:00+00:00";
    let here = gethostname::gethostname().to_string_lossy().into_owned();
    let remote = plant_lock(
        &env,
        1,
        &serde_json::json!({"kind": "exclusive", "host": "backup-02.example", "pid": 4242,
            "time": time, "command": "prune"}),
    );
    let stale = plant_lock(
        &env,
        2,
        &serde_json::json!({"kind": "exclusive", "host": here, "pid": dead_pid(),
            "time": time, "command": "forget"}),
    );
    // Unreadable: ignored by lockers, removed by `unlock`.
    write(
        &env.repo.join("locks").join(hex(&random_bytes(3, 32))),
        b"junk",
    );
    assert_eq!(lock_objects(&env.repo).len(), 3);

    env.cmd()
        .args(["snapshot", "application"])
        .assert()
        .code(11)
        .stderr(
            predicate::str::contains(
                "an exclusive lock held by `prune` (pid 4242 on backup-02.example) since 2024-12-01",
            )
            .and(predicate::str::contains("--remove-all"))
            .and(predicate::str::contains("another host")),
        );
    let left = lock_objects(&env.repo);
    assert!(
        !left.contains(&stale),
        "the dead local holder's lock was not cleared"
    );
    assert!(left.contains(&remote));

    let rep = env.json(&["unlock"]);
    assert_eq!(rep["removed"], serde_json::json!([]), "{rep:#}");
    assert_eq!(rep["remaining"][0]["host"], "backup-02.example");
    assert_eq!(
        lock_objects(&env.repo),
        std::slice::from_ref(&remote),
        "unlock keeps the other host's lock and removes the unreadable one"
    );
    // However long one waits.
    env.cmd()
        .args(["snapshot", "application", "--lock-wait", "1s"])
        .assert()
        .code(11);
    let rep = env.json(&["unlock", "--remove-all"]);
    assert_eq!(rep["removed"][0]["host"], "backup-02.example", "{rep:#}");
    assert!(lock_objects(&env.repo).is_empty());
    env.snapshot(&["application"]);
}

/// Two machines (or two users) sharing a repository each have their own
/// cache. Our command (`args`, with `--lock-wait`) opens the repository,
/// which brings our cache up to date, then finds it locked by the other
/// side and is frozen between two attempts (holding no lock). Meanwhile
/// the other side forgets `forget_id` and prunes. Then ours resumes, gets
/// the lock and runs; returns its exit code, stdout and stderr.
fn run_across_a_remote_forget_and_prune(
    env: &Env,
    args: &[&str],
    forget_id: &str,
) -> (Option<i32>, String, String) {
    let other_cache = env.path("cache-other");
    // The other side holds the exclusive lock (an idle prune, frozen).
    let mut holder = frozen_holder_with(env, &["prune", "-q"], &[("OPC_CACHE_DIR", &other_cache)]);
    let mut ours = Proc::spawn(
        env,
        "ours",
        std_cmd(env).args(args).args(["--lock-wait", "60s"]),
    );
    wait_for_stderr(&mut ours, "waiting up to 1m");
    ours.signal(Signal::SIGSTOP);
    holder.signal(Signal::SIGCONT);
    holder.success();
    env.cmd()
        .env("OPC_CACHE_DIR", &other_cache)
        .args(["forget", forget_id, "--prune", "-q"])
        .assert()
        .code(0);
    ours.signal(Signal::SIGCONT);
    ours.finish()
}

/// A snapshot that waited for the lock must not rely on what its cache
/// said before: neither a snapshot forgotten meanwhile as parent nor blobs
/// of packs deleted meanwhile as already stored.
#[test]
fn a_snapshot_that_waited_for_prune_does_not_reuse_what_prune_deleted() {
    let env = Env::with_repo();
    let db = env.path("data/db");
    fill(&db, 70, 6, 50_000);
    env.components(&[("db", &[&db])]);
    let want: BTreeMap<String, Manifest> = [("db".to_string(), manifest(&db))].into();
    let old = env.snapshot(&["db"]);
    let (code, out, err) = run_across_a_remote_forget_and_prune(
        &env,
        &["snapshot", "db", "--json"],
        old["id"].as_str().unwrap(),
    );
    assert_eq!(code, Some(0), "{err}");
    let report = parse_json(out.as_bytes());
    restore_matches(&env, report["id"].as_str().unwrap(), &want);
    env.cmd()
        .args(["prune", "--dry-run", "-q"])
        .assert()
        .code(0);
}

/// A restore that waited for the lock finds data that prune moved
/// meanwhile (repacked into new packs) instead of failing.
#[test]
fn a_restore_that_waited_for_prune_finds_repacked_data() {
    let env = Env::with_repo();
    let db = env.path("data/db");
    fill(&db, 80, 6, 50_000);
    env.components(&[("db", &[&db])]);
    let old = env.snapshot(&["db"]);
    // Half the files change: the old snapshot's pack is half used by the
    // kept one, so prune repacks it.
    fill(&db, 90, 3, 40_000);
    let want: BTreeMap<String, Manifest> = [("db".to_string(), manifest(&db))].into();
    let kept = env.snapshot(&["db"]);
    let kept_id = kept["id"].as_str().unwrap();
    let target = env.path("restored");
    let (code, _, err) = run_across_a_remote_forget_and_prune(
        &env,
        &[
            "restore",
            kept_id,
            "--no-verify",
            "--target",
            target.to_str().unwrap(),
        ],
        old["id"].as_str().unwrap(),
    );
    assert_eq!(code, Some(0), "{err}");
    assert_same(&want["db"], &manifest(&target.join("db")));
}
