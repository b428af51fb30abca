//! Retention and space reclamation end to end: a year of backdated
//! snapshots of every type is thinned by `forget` (the survivors are
//! computed here independently), then `prune` frees the space and every
//! survivor still restores exactly as it was taken. Prune is also killed
//! with SIGKILL at each of its steps and at random moments: nothing kept
//! is ever lost, and the next prune finishes the job.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Utc};
use predicates::prelude::*;
use serde_json::{json, Value};

use crate::support::manifest::{assert_same, manifest, Manifest};
use crate::support::{du, parse_json, random_bytes, write, Env, INIT_FAST, PASSWORD};

/// What one snapshot captured: each component's tree as it was then.
type States = BTreeMap<String, Manifest>;

/// A snapshot taken by a test, with what it must restore to.
struct Taken {
    id: String,
    kind: String,
    time: DateTime<FixedOffset>,
    retention_days: i64,
    states: States,
}

/// A sandbox whose repository has 1 MiB packs, so that a few MB of data
/// spread over several packs and repacking has real work.
fn small_pack_env() -> Env {
    let env = Env::new();
    env.cmd()
        .args(INIT_FAST)
        .args(["--pack-size-mib", "1"])
        .assert()
        .code(0);
    env
}

/// The binary as a `std::process::Command` with the sandbox's environment
/// (see `Env::cmd`), for processes that are spawned and killed.
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

fn rfc(t: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("{t:?}: {e}"))
}

/// Manifests of the components `kind` captures, taken from the sources.
fn states_of(env: &Env, comps: &[&str]) -> States {
    comps
        .iter()
        .map(|c| (c.to_string(), manifest(&env.path(&format!("data/{c}")))))
        .collect()
}

/// `snapshot KIND --time TIME`, recording what it captured.
fn take(env: &Env, kind: &str, comps: &[&str], time: DateTime<FixedOffset>) -> Taken {
    let states = states_of(env, comps);
    let r = env.snapshot(&[kind, "--time", &time.to_rfc3339()]);
    assert_eq!(rfc(r["snapshot"]["time"].as_str().unwrap()), time);
    Taken {
        id: r["id"].as_str().unwrap().to_string(),
        kind: kind.to_string(),
        time,
        retention_days: r["snapshot"]["retention_days"].as_i64().unwrap(),
        states,
    }
}

/// Restores snapshot `id` into a new folder and compares every component
/// with the tree it captured: content (blake3), sizes and metadata.
fn assert_restores(env: &Env, id: &str, states: &States) {
    let dir = tempfile::tempdir_in(env.tmp.path()).unwrap();
    let out = dir.path().join("out");
    env.cmd()
        .args(["restore", id, "--no-verify", "--target"])
        .arg(&out)
        .assert()
        .code(0);
    let got: BTreeSet<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = states.keys().cloned().collect();
    assert_eq!(got, want, "components restored from {id}");
    for (comp, m) in states {
        let actual = manifest(&out.join(comp));
        if actual != *m {
            eprintln!("snapshot {id}, component {comp}:");
            assert_same(m, &actual);
        }
    }
}

/// Full ids listed by `snapshots --json`.
fn listed_ids(env: &Env) -> BTreeSet<String> {
    env.json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every file of the repository with a hash of its content.
fn repo_files(repo: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.symlink_metadata().unwrap().is_dir() {
                walk(&p, root, out);
            } else {
                let h = blake3::hash(&std::fs::read(&p).unwrap())
                    .to_hex()
                    .to_string();
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), h);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(repo, repo, &mut out);
    out
}

/// Names in `<repo>/<dir>` (lock objects, temporary files).
fn names_in(repo: &Path, dir: &str) -> Vec<String> {
    match std::fs::read_dir(repo.join(dir)) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Lock objects in `<repo>/locks` (not temporary files being written).
fn lock_objects(repo: &Path) -> Vec<String> {
    names_in(repo, "locks")
        .into_iter()
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect()
}

/// After a completed prune: nothing wholly unused is left, no temporary
/// pack files of interrupted writers, no lock objects.
fn assert_clean(env: &Env) {
    let dry = env.json(&["prune", "--dry-run"]);
    assert_eq!(dry["packs_deleted"], 0, "garbage packs left: {dry:#}");
    assert_eq!(dry["packs_repacked"], 0, "packs left to repack: {dry:#}");
    let tmp: Vec<_> = names_in(&env.repo, "tmp")
        .into_iter()
        .filter(|n| n.starts_with("pack-"))
        .collect();
    assert!(tmp.is_empty(), "temporary pack files left: {tmp:?}");
    let locks = lock_objects(&env.repo);
    assert!(locks.is_empty(), "locks left: {locks:?}");
}

// ---------------------------------------------------------------------------
// A year of snapshots.

const YEAR_COMPONENTS: [&str; 4] = ["application", "chromadb", "nginx", "volumes"];

fn comps_of(kind: &str) -> Vec<&'static str> {
    if kind == "full" {
        YEAR_COMPONENTS.to_vec()
    } else {
        vec![YEAR_COMPONENTS.into_iter().find(|c| *c == kind).unwrap()]
    }
}

/// Initial data: per component six files that get rewritten, a static
/// file shared by every snapshot, a folder of rotating logs.
fn year_data(env: &Env) {
    for (ci, c) in YEAR_COMPONENTS.iter().enumerate() {
        let dir = env.path(&format!("data/{c}"));
        let ci = ci as u64;
        write(&dir.join("static.bin"), &random_bytes(900 + ci, 40_000));
        for f in 0..6 {
            write(
                &dir.join(format!("f{f}.dat")),
                &random_bytes(100 * ci + f, 20_000),
            );
        }
        write(&dir.join("log/000.log"), b"started\n");
    }
}

/// Data keeps changing between snapshots: in every component one file is
/// rewritten (new size too), a log is added and the log of four steps ago
/// is removed. A few tens of KB per step.
fn year_mutate(env: &Env, step: u64) {
    for (ci, c) in YEAR_COMPONENTS.iter().enumerate() {
        let dir = env.path(&format!("data/{c}"));
        let seed = 10_000 + step * 16 + ci as u64;
        let len = 6_000 + (seed * 7919 % 24_000) as usize;
        write(
            &dir.join(format!("f{}.dat", step % 6)),
            &random_bytes(seed, len),
        );
        write(
            &dir.join(format!("log/{step:03}.log")),
            &random_bytes(seed << 20, 1_500),
        );
        if step >= 4 {
            let _ = std::fs::remove_file(dir.join(format!("log/{:03}.log", step - 4)));
        }
    }
}

/// A year compressed: full monthly-ish then weekly in the last weeks,
/// chromadb and application every few weeks and more often lately,
/// volumes monthly. 38 snapshots, in time order.
fn year_schedule() -> Vec<(&'static str, DateTime<FixedOffset>)> {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let at = |day: i64, hour: i64| {
        (start + chrono::Duration::days(day) + chrono::Duration::hours(hour)).fixed_offset()
    };
    let mut v = Vec::new();
    for d in (0..=315).step_by(45).chain([329, 336, 343, 350, 357, 364]) {
        v.push(("full", at(d, 2)));
    }
    for d in [45, 150, 250, 320, 362, 364] {
        v.push(("chromadb", at(d, 6)));
    }
    for d in [20, 110, 200, 290, 350, 359] {
        v.push(("application", at(d, 3)));
    }
    for d in [5, 36, 65, 96, 126, 157, 187, 218, 249, 279, 310, 340] {
        v.push(("volumes", at(d, 1)));
    }
    v.sort_by_key(|(_, t)| *t);
    v
}

/// The rule, written out independently of the tool: per type, keep the
/// newest; those younger than their retention days; the newest of each of
/// the last `weeks` ISO weeks and `months` months that have snapshots.
/// Returns, per kept id, the names of the rules that keep it.
fn expected_survivors(
    taken: &[Taken],
    now: DateTime<FixedOffset>,
    weeks: usize,
    months: usize,
) -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut keep: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    let kinds: BTreeSet<&str> = taken.iter().map(|t| t.kind.as_str()).collect();
    for kind in kinds {
        let mut group: Vec<&Taken> = taken.iter().filter(|t| t.kind == kind).collect();
        group.sort_by_key(|t| std::cmp::Reverse(t.time));
        keep.entry(group[0].id.clone())
            .or_default()
            .insert("newest");
        for t in &group {
            if now < t.time + chrono::Duration::days(t.retention_days) {
                keep.entry(t.id.clone()).or_default().insert("retention");
            }
        }
        let week = |t: &Taken| {
            let w = t.time.iso_week();
            (w.year(), w.week())
        };
        let month = |t: &Taken| (t.time.year(), t.time.month());
        for (rule, n, bucket) in [
            ("weekly", weeks, &week as &dyn Fn(&Taken) -> (i32, u32)),
            ("monthly", months, &month),
        ] {
            let mut seen = Vec::new();
            for t in &group {
                let b = bucket(t);
                if !seen.contains(&b) && seen.len() < n {
                    seen.push(b);
                    keep.entry(t.id.clone()).or_default().insert(rule);
                }
            }
        }
    }
    keep
}

/// The rule names a reason given by the tool stands for.
fn reason_rule(reason: &str) -> &'static str {
    if reason.contains("newest") {
        "newest"
    } else if reason.contains("retention") {
        "retention"
    } else if reason.starts_with("weekly") {
        "weekly"
    } else if reason.starts_with("monthly") {
        "monthly"
    } else {
        panic!("unexpected reason {reason:?}")
    }
}

#[test]
fn a_year_of_snapshots_thinned_by_policy_then_pruned_restores_every_survivor() {
    let env = Env::with_repo();
    year_data(&env);
    let mut comps = serde_json::Map::new();
    for c in YEAR_COMPONENTS {
        comps.insert(
            c.into(),
            json!({ "paths": [env.path(&format!("data/{c}"))] }),
        );
    }
    // volumes: 45 days from the configuration; the others: legacy
    // defaults (full 7, chromadb 3, application 14; nginx unused alone).
    env.config_value(json!({
        "repository": env.repo,
        "components": comps,
        "retention": { "volumes": 45 },
    }));

    let mut taken = Vec::new();
    for (step, (kind, time)) in year_schedule().into_iter().enumerate() {
        year_mutate(&env, step as u64 + 1);
        taken.push(take(&env, kind, &comps_of(kind), time));
    }
    assert_eq!(taken.len(), 38);
    let days: BTreeMap<&str, i64> = taken
        .iter()
        .map(|t| (t.kind.as_str(), t.retention_days))
        .collect();
    assert_eq!(
        days,
        BTreeMap::from([
            ("application", 14),
            ("chromadb", 3),
            ("full", 7),
            ("volumes", 45)
        ]),
        "retention days recorded at capture"
    );

    let now = rfc("2025-01-01T12:00:00+00:00");
    let expected = expected_survivors(&taken, now, 4, 6);
    let all: BTreeSet<String> = taken.iter().map(|t| t.id.clone()).collect();
    let kept: BTreeSet<String> = expected.keys().cloned().collect();
    let gone: BTreeSet<String> = all.difference(&kept).cloned().collect();
    assert!(kept.len() >= 12 && gone.len() >= 10, "{kept:?}");

    let rep = env.json(&[
        "forget",
        "--keep-monthly",
        "6",
        "--keep-weekly",
        "4",
        "--now",
        &now.to_rfc3339(),
    ]);
    assert_eq!(rep["dry_run"], false);
    let removed: BTreeSet<String> = rep["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let describe = |ids: &BTreeSet<String>| -> Vec<String> {
        taken
            .iter()
            .filter(|t| ids.contains(&t.id))
            .map(|t| format!("{} {} {}", &t.id[..8], t.kind, t.time))
            .collect()
    };
    assert!(
        removed == gone,
        "forget removed what it should keep: {:?}\nand kept what it should remove: {:?}",
        describe(&removed.difference(&gone).cloned().collect()),
        describe(&gone.difference(&removed).cloned().collect())
    );
    eprintln!("{} kept, {} forgotten", kept.len(), gone.len());
    let decisions = rep["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), taken.len());
    for d in decisions {
        let id = d["id"].as_str().unwrap();
        let rules: BTreeSet<&str> = d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| reason_rule(r.as_str().unwrap()))
            .collect();
        let want = expected.get(id).cloned().unwrap_or_default();
        assert_eq!(
            rules, want,
            "why {id} ({} {}) is kept: {d:#}",
            d["type"], d["time"]
        );
        assert_eq!(d["keep"], !want.is_empty());
    }
    assert_eq!(listed_ids(&env), kept, "snapshots left after forget");

    let before = du(&env.repo.join("data"));
    let pr = env.json(&["prune"]);
    let after = du(&env.repo.join("data"));
    assert_eq!(pr["snapshots"], kept.len());
    assert!(pr["bytes_freed"].as_u64().unwrap() > 0, "{pr:#}");
    assert!(
        pr["packs_deleted"].as_u64().unwrap() + pr["packs_repacked"].as_u64().unwrap() > 0,
        "{pr:#}"
    );
    assert!(
        after < before,
        "repository did not shrink: {before} -> {after} bytes; {pr:#}"
    );
    assert_clean(&env);

    for t in taken.iter().filter(|t| kept.contains(&t.id)) {
        assert_restores(&env, &t.id, &t.states);
    }
    let forgotten = gone.iter().next().unwrap();
    env.cmd()
        .args(["restore", forgotten, "--target"])
        .arg(env.path("nothing"))
        .assert()
        .code(16);
}

// ---------------------------------------------------------------------------
// prune --dry-run

#[test]
fn prune_dry_run_changes_nothing_and_reports_what_prune_frees() {
    let env = small_pack_env();
    let app = env.path("data/application");
    env.components(&[("application", &[&app])]);
    let mut taken = Vec::new();
    for k in 0..3u64 {
        for f in 0..8 {
            // Half the files change each time.
            if k == 0 || f % 2 == 0 {
                write(
                    &app.join(format!("f{f}")),
                    &random_bytes(k * 100 + f, 60_000),
                );
            }
        }
        let time = rfc(&format!("2024-03-0{}T03:00:00+00:00", k + 1));
        taken.push(take(&env, "application", &["application"], time));
    }
    env.cmd()
        .args(["forget", "--keep-last", "1", "-q"])
        .assert()
        .code(0);

    let files = repo_files(&env.repo);
    let dry = env.json(&["prune", "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert!(dry["bytes_freed"].as_u64().unwrap() > 100_000, "{dry:#}");
    assert!(dry["unused_blobs"].as_u64().unwrap() > 0, "{dry:#}");
    assert!(
        dry["packs_deleted"].as_u64().unwrap() + dry["packs_repacked"].as_u64().unwrap() > 0,
        "{dry:#}"
    );
    env.cmd()
        .args(["prune", "--dry-run"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("would free"));
    assert_eq!(
        repo_files(&env.repo),
        files,
        "prune --dry-run changed the repository"
    );

    let real = env.json(&["prune"]);
    for k in [
        "bytes_freed",
        "packs_deleted",
        "packs_repacked",
        "unused_blobs",
    ] {
        assert_eq!(real[k], dry[k], "{k}: dry run {dry:#}\nreal {real:#}");
    }
    assert_ne!(repo_files(&env.repo), files);
    let last = taken.last().unwrap();
    assert_restores(&env, &last.id, &last.states);
    assert_clean(&env);
}

// ---------------------------------------------------------------------------
// Crash safety: prune killed by SIGKILL.

/// A repository of 1 MiB packs where prune has every kind of work: the
/// first snapshot's two packs are a third unused once it is forgotten
/// (repack, over 1 MiB copied so more than one new pack), a pack only
/// held its folder listing (delete). Returns the sandbox and the
/// snapshots that must survive.
fn crash_base() -> (Env, Vec<Taken>) {
    let env = small_pack_env();
    let db = env.path("data/db");
    let file = |i: u64| db.join(format!("seg/f{i:02}.dat"));
    for i in 0..18 {
        write(&file(i), &random_bytes(1_000 + i, 100_000));
    }
    env.components(&[("db", &[&db])]);
    let first = take(&env, "db", &["db"], rfc("2024-06-01T02:00:00+00:00"));
    for i in (0..18).step_by(3) {
        write(&file(i), &random_bytes(2_000 + i, 90_000));
    }
    let second = take(&env, "db", &["db"], rfc("2024-06-02T02:00:00+00:00"));
    write(&file(1), &random_bytes(3_001, 80_000));
    let third = take(&env, "db", &["db"], rfc("2024-06-03T02:00:00+00:00"));
    env.cmd().args(["forget", &first.id, "-q"]).assert().code(0);
    (env, vec![second, third])
}

/// Runs `prune` with `OPC_FAULT=point`: it must die by SIGKILL there. Then
/// every kept snapshot restores, a normal prune completes, everything
/// still restores and the repository is clean.
fn prune_killed_at(point: &str) {
    let (env, kept) = crash_base();
    let before = du(&env.repo.join("data"));
    let out = std_cmd(&env)
        // 5 %: each of the first snapshot's packs holds a rewritten file.
        .args(["prune", "--max-unused", "5", "--json"])
        .env("OPC_FAULT", point)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "prune was not killed at {point}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for t in &kept {
        assert_restores(&env, &t.id, &t.states);
    }
    let rep = env.json(&["prune"]);
    eprintln!("prune after the crash at {point}: {rep}");
    for t in &kept {
        assert_restores(&env, &t.id, &t.states);
    }
    assert_clean(&env);
    let after = du(&env.repo.join("data"));
    assert!(
        after < before,
        "space not freed after the crash at {point}: {before} -> {after}"
    );
}

#[test]
fn prune_killed_after_its_first_new_pack_loses_nothing() {
    prune_killed_at("prune-after-first-new-pack");
}

#[test]
fn prune_killed_before_the_index_swap_loses_nothing() {
    prune_killed_at("prune-before-index-swap");
}

#[test]
fn prune_killed_after_the_index_swap_loses_nothing() {
    prune_killed_at("prune-after-index-swap");
}

#[test]
fn prune_killed_during_deletes_loses_nothing() {
    prune_killed_at("prune-during-deletes");
}

/// SplitMix64 step, for delays that differ from run to run yet can be
/// replayed from the printed seed (`OPC_TEST_SEED`).
fn next(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn prune_killed_at_random_moments_loses_nothing() {
    let env = small_pack_env();
    let db = env.path("data/db");
    let file = |i: u64| db.join(format!("f{i:02}.dat"));
    for i in 0..12 {
        write(&file(i), &random_bytes(5_000 + i, 100_000));
    }
    env.components(&[("db", &[&db])]);
    let mut alive = Vec::new();
    for k in 0..10u64 {
        // Four files rewritten per snapshot, rotating through the twelve.
        for j in 0..4 {
            let i = (k * 4 + j) % 12;
            write(&file(i), &random_bytes(6_000 + k * 100 + i, 100_000));
        }
        let time = rfc(&format!("2024-07-{:02}T02:00:00+00:00", k + 1));
        alive.push(take(&env, "db", &["db"], time));
    }
    let mut seed = std::env::var("OPC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("OPC_TEST_SEED={seed}");

    // The kill lands at a random moment after prune took its lock, within
    // `window`; the window shrinks when prune was faster than it (a prune
    // of these few packs takes a few milliseconds in a release build).
    let mut window = 60;
    let mut killed = 0;
    for round in 0..8 {
        let old = alive.remove(0);
        // Forget also proves the killed prune's lock does not block it.
        env.cmd().args(["forget", &old.id, "-q"]).assert().code(0);
        let mut child = std_cmd(&env)
            .arg("prune")
            .arg("-q")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while lock_objects(&env.repo).is_empty()
            && child.try_wait().unwrap().is_none()
            && started.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let delay = Duration::from_millis(next(&mut seed) % window);
        std::thread::sleep(delay);
        let outcome = match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "round {round}: prune failed: {status}");
                window = (window / 2).max(2);
                "finished first"
            }
            None => {
                child.kill().unwrap();
                let status = child.wait().unwrap();
                // It may have finished between the check and the kill.
                if status.signal() == Some(9) {
                    killed += 1;
                    "killed"
                } else {
                    assert!(status.success(), "round {round}: prune failed: {status}");
                    "finished first"
                }
            }
        };
        eprintln!("round {round}: prune {outcome} {delay:?} after taking its lock");
    }
    assert!(killed > 0, "no prune was killed while running");
    for t in &alive {
        assert_restores(&env, &t.id, &t.states);
    }
    env.cmd().args(["prune", "-q"]).assert().code(0);
    assert_eq!(
        listed_ids(&env),
        alive.iter().map(|t| t.id.clone()).collect()
    );
    for t in &alive {
        assert_restores(&env, &t.id, &t.states);
    }
    assert_clean(&env);
}

// ---------------------------------------------------------------------------
// What `snapshots` and `forget --dry-run` explain.

#[test]
fn snapshots_and_forget_dry_run_explain_expiry_and_reasons() {
    let env = Env::with_repo();
    let (chroma, app) = (env.path("data/chromadb"), env.path("data/app"));
    write(&chroma.join("chroma.sqlite3"), &random_bytes(1, 10_000));
    write(&app.join("a.txt"), b"a");
    env.components(&[("chromadb", &[&chroma]), ("application", &[&app])]);
    let now = Utc::now().fixed_offset();
    let ago = |d: i64| (now - chrono::Duration::days(d)).to_rfc3339();
    let old_chroma = env.snapshot(&["chromadb", "--time", &ago(20)]);
    write(&chroma.join("chroma.sqlite3"), &random_bytes(2, 10_000));
    // Older than its 3 days, but the newest chromadb snapshot.
    let newest_chroma = env.snapshot(&["chromadb", "--time", &ago(10)]);
    let old_app = env.snapshot(&["application", "--time", &ago(3), "--retention-days", "5"]);
    let new_app = env.snapshot(&["application", "--time", &ago(1)]);
    let id = |r: &Value| r["id"].as_str().unwrap().to_string();

    let list = env.json(&["snapshots"]);
    let by_id: BTreeMap<String, &Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s))
        .collect();
    assert_eq!(by_id.len(), 4);
    for (sid, s) in &by_id {
        let days = s["retention_days"].as_i64().unwrap();
        let expires = rfc(s["expires"].as_str().unwrap());
        assert_eq!(
            expires,
            rfc(s["time"].as_str().unwrap()) + chrono::Duration::days(days),
            "expires of {sid}: {s:#}"
        );
        assert_eq!(s["retention_days_applied"], days);
    }
    let reasons = |r: &Value| -> Vec<String> {
        by_id[&id(r)]["keep_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    let o = by_id[&id(&old_chroma)];
    assert_eq!(o["retention_days"], 3);
    assert_eq!(o["kept_by_policy"], false, "{o:#}");
    assert!(reasons(&old_chroma).is_empty());
    assert_eq!(by_id[&id(&newest_chroma)]["kept_by_policy"], true);
    assert_eq!(reasons(&newest_chroma), ["newest of its type"]);
    assert_eq!(by_id[&id(&old_app)]["retention_days"], 5);
    let r = reasons(&old_app);
    assert!(
        r.len() == 1 && r[0].contains("5-day retention"),
        "old application: {r:?}"
    );
    let r = reasons(&new_app);
    assert!(
        r.len() == 2 && r[0].contains("newest") && r[1].contains("14-day retention"),
        "newest application: {r:?}"
    );

    let files = repo_files(&env.repo);
    let dry = env.json(&["forget", "--dry-run", "--now", &now.to_rfc3339()]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["removed"], json!([]));
    let decided: BTreeMap<String, (bool, Vec<String>)> = dry["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let reasons = d["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            (
                d["id"].as_str().unwrap().to_string(),
                (d["keep"].as_bool().unwrap(), reasons),
            )
        })
        .collect();
    assert_eq!(decided[&id(&old_chroma)], (false, vec![]));
    assert_eq!(
        decided[&id(&newest_chroma)],
        (true, vec!["newest of its type".to_string()])
    );
    assert!(decided[&id(&old_app)].0 && decided[&id(&new_app)].0);
    let text = env
        .cmd()
        .args(["forget", "--dry-run", "--now", &now.to_rfc3339()])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    let line = |r: &Value| {
        text.lines()
            .find(|l| l.starts_with(&id(r)[..8]))
            .unwrap_or_else(|| panic!("no line for {}:\n{text}", id(r)))
            .to_string()
    };
    assert!(line(&old_chroma).ends_with("would remove"), "{text}");
    assert!(
        line(&newest_chroma).contains("keep    (newest of its type)"),
        "{text}"
    );
    assert!(
        text.contains("1 snapshots would be removed, 3 kept"),
        "{text}"
    );
    assert_eq!(
        repo_files(&env.repo),
        files,
        "forget --dry-run changed files"
    );
    assert_eq!(listed_ids(&env).len(), 4);

    // Without --dry-run the same policy removes exactly the expired one.
    let rep = env.json(&["forget", "--now", &now.to_rfc3339()]);
    assert_eq!(rep["removed"], json!([id(&old_chroma)]));
    assert_eq!(listed_ids(&env).len(), 3);
}

// ---------------------------------------------------------------------------
// forget by id, by tag, by type.

/// Five application snapshots and one volumes snapshot, a day apart.
fn six_snapshots(env: &Env) -> Vec<Taken> {
    let (app, vol) = (env.path("data/application"), env.path("data/volumes"));
    write(&vol.join("v.dat"), &random_bytes(77, 5_000));
    env.components(&[("application", &[&app]), ("volumes", &[&vol])]);
    let mut v = Vec::new();
    for k in 0..5u64 {
        write(&app.join("app.dat"), &random_bytes(k, 5_000 + k as usize));
        let time = rfc(&format!("2024-05-{:02}T03:00:00+00:00", k + 1));
        v.push(take(env, "application", &["application"], time));
    }
    v.push(take(
        env,
        "volumes",
        &["volumes"],
        rfc("2024-04-01T01:00:00+00:00"),
    ));
    v
}

#[test]
fn forget_by_id_removes_exactly_that_snapshot() {
    let env = Env::with_repo();
    let taken = six_snapshots(&env);
    let victim = &taken[2];
    let rep = env.json(&["forget", &victim.id[..8]]);
    assert_eq!(rep["removed"], json!([victim.id]));
    let left: BTreeSet<String> = taken
        .iter()
        .filter(|t| t.id != victim.id)
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(listed_ids(&env), left);
    env.cmd()
        .args(["forget", &victim.id[..8]])
        .assert()
        .code(16);
    assert_eq!(listed_ids(&env), left, "a failed forget removed something");
    env.cmd().args(["prune", "-q"]).assert().code(0);
    for t in taken.iter().filter(|t| t.id != victim.id) {
        assert_restores(&env, &t.id, &t.states);
    }
}

#[test]
fn forget_keep_tag_keeps_tagged_snapshots_and_type_limits_the_scope() {
    let env = Env::with_repo();
    let app = env.path("data/application");
    let vol = env.path("data/volumes");
    write(&vol.join("v.dat"), b"volume");
    env.components(&[("application", &[&app]), ("volumes", &[&vol])]);
    let mut ids = Vec::new();
    for k in 0..5u64 {
        write(&app.join("app.dat"), &random_bytes(k, 3_000));
        let time = format!("2024-05-{:02}T03:00:00+00:00", k + 1);
        let mut args = vec!["application", "--time", &time];
        if k == 1 {
            args.extend(["--tag", "release"]);
        }
        ids.push(env.snapshot(&args)["id"].as_str().unwrap().to_string());
    }
    let old_vols: Vec<String> = (1..=2)
        .map(|d| {
            let t = format!("2024-03-0{d}T01:00:00+00:00");
            env.snapshot(&["volumes", "--time", &t])["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();

    let rep = env.json(&[
        "forget",
        "--type",
        "application",
        "--keep-last",
        "1",
        "--keep-tag",
        "release",
        "--now",
        "2024-06-01T00:00:00+00:00",
    ]);
    let decisions = rep["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 5, "--type limits the decisions: {rep:#}");
    let tagged = decisions.iter().find(|d| d["id"] == ids[1]).unwrap();
    assert_eq!(tagged["keep"], true);
    assert_eq!(tagged["reasons"], json!(["has a kept tag"]));
    let mut expected: BTreeSet<String> = [ids[1].clone(), ids[4].clone()].into();
    // Both volumes snapshots are expired, but out of scope.
    expected.extend(old_vols.iter().cloned());
    assert_eq!(listed_ids(&env), expected);

    // Without the tag rule the tagged one goes too; --prune frees the data.
    let rep = env.json(&[
        "forget",
        "--type",
        "application",
        "--keep-last",
        "1",
        "--prune",
        "--now",
        "2024-06-01T00:00:00+00:00",
    ]);
    assert_eq!(rep["removed"], json!([ids[1]]));
    assert!(rep["prune"]["bytes_freed"].as_u64().unwrap() > 0, "{rep:#}");
    expected.remove(&ids[1]);
    assert_eq!(listed_ids(&env), expected);
}

#[test]
fn forget_needs_the_prune_flag_to_free_space_and_can_combine_both() {
    let env = Env::with_repo();
    let taken = six_snapshots(&env);
    let before = du(&env.repo.join("data"));
    let out = env
        .cmd()
        .args(["forget", &taken[0].id[..8]])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("run `opc-store prune`"))
        .get_output()
        .stdout
        .clone();
    assert!(!out.is_empty());
    assert_eq!(du(&env.repo.join("data")), before, "forget alone prunes");
    let rep = parse_json(
        &env.cmd()
            .args(["forget", &taken[1].id[..8], "--prune", "--json"])
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone(),
    );
    assert!(rep["prune"]["bytes_freed"].as_u64().unwrap() > 0, "{rep:#}");
    assert!(du(&env.repo.join("data")) < before);
    for t in &taken[2..] {
        assert_restores(&env, &t.id, &t.states);
    }
}
