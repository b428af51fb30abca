//! `key list|add|remove|passwd|rotate|reencrypt`: every snapshot restores,
//! byte for byte, with the remaining passwords and with none removed; the
//! last slot stays; rotation seals new data with a new key and
//! re-encryption leaves no pack the old key opens; kills at every step of
//! `passwd` and `reencrypt` leave a usable repository; password files
//! readable by others are warned about; no password is stored anywhere.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use opc_store::crypto::{KeySlot, Keyring};
use serde_json::Value;

use crate::support::manifest::{assert_same, manifest, Manifest};
use crate::support::{random_bytes, write, Env, INIT_FAST, PASSWORD};

const SECOND: &str = "second password for the keys test";
const THIRD: &str = "third password, from a file";

/// A repository with small packs (so re-encryption has several) and one
/// component `app` of a few files.
fn setup() -> Env {
    let env = Env::new();
    env.cmd()
        .args(INIT_FAST)
        .args(["--pack-size-mib", "1"])
        .assert()
        .code(0);
    let src = env.path("data/app");
    write(&src.join("big.bin"), &random_bytes(1, 3 << 20));
    write(&src.join("small.txt"), b"hello keys\n");
    write(&src.join("sub/more.bin"), &random_bytes(2, 300_000));
    env.components(&[("app", &[src.as_path()])]);
    env
}

/// Takes a snapshot of `app`; returns its id and the source's manifest.
fn take(env: &Env) -> (String, Manifest) {
    let m = manifest(&env.path("data/app"));
    let r = env.snapshot(&["full"]);
    (r["id"].as_str().unwrap().to_string(), m)
}

fn change(env: &Env, seed: u64) {
    write(
        &env.path(&format!("data/app/new-{seed}.bin")),
        &random_bytes(seed, 1 << 20),
    );
}

/// Restores `id` with `password` and compares it with `want`.
fn assert_restores_with(env: &Env, password: &str, id: &str, want: &Manifest) {
    let out = tempfile::tempdir_in(env.tmp.path()).unwrap();
    let target = out.path().join("out");
    env.cmd()
        .env("OPC_PASSWORD", password)
        .args(["restore", id, "--target"])
        .arg(&target)
        .assert()
        .code(0);
    let got = manifest(&target.join("app"));
    if got != *want {
        assert_same(want, &got);
    }
}

fn assert_wrong_password(env: &Env, password: &str) {
    env.cmd()
        .env("OPC_PASSWORD", password)
        .arg("snapshots")
        .assert()
        .code(12);
}

fn key_list(env: &Env, password: &str) -> Value {
    let out = env
        .cmd()
        .env("OPC_PASSWORD", password)
        .args(["key", "list", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    crate::support::parse_json(&out)
}

fn slot_ids(list: &Value) -> Vec<String> {
    list["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

#[test]
fn add_passwd_remove_keep_every_snapshot_restorable() {
    let env = setup();
    let (id, m) = take(&env);
    let first = key_list(&env, PASSWORD);
    assert_eq!(slot_ids(&first).len(), 1);
    assert_eq!(first["generations"], serde_json::json!([0]));
    let initial = first["current"].as_str().unwrap().to_string();

    // add: both passwords open it.
    env.cmd()
        .env("OPC_NEW_PASSWORD", SECOND)
        .args(["key", "add", "--label", "ops team"])
        .assert()
        .code(0);
    let list = key_list(&env, SECOND);
    assert_eq!(slot_ids(&list).len(), 2);
    let second = list["current"].as_str().unwrap().to_string();
    assert_ne!(second, initial);
    let s = &list["slots"].as_array().unwrap();
    let added = s.iter().find(|x| x["id"] == second.as_str()).unwrap();
    assert_eq!(added["label"], "ops team");
    assert_eq!(added["kdf"], "argon2id");
    assert_eq!(
        added["params"]["memory_kib"], 1024,
        "cost of the opening slot"
    );
    assert_restores_with(&env, PASSWORD, &id, &m);
    assert_restores_with(&env, SECOND, &id, &m);

    // passwd from a file: the first password stops working.
    let pw_file = env.path("third.pw");
    std::fs::write(&pw_file, format!("{THIRD}\n")).unwrap();
    std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.cmd()
        .args(["key", "passwd", "--new-password-file"])
        .arg(&pw_file)
        .assert()
        .code(0);
    assert_wrong_password(&env, PASSWORD);
    assert_restores_with(&env, THIRD, &id, &m);
    assert_restores_with(&env, SECOND, &id, &m);
    let list = key_list(&env, THIRD);
    assert!(!slot_ids(&list).contains(&initial), "old slot still there");

    // The slot of the current password, which opens no other: refused
    // without --force. Another slot by unique prefix: removed.
    let third = list["current"].as_str().unwrap().to_string();
    let a = env
        .cmd()
        .env("OPC_PASSWORD", THIRD)
        .args(["key", "remove", &third])
        .assert()
        .code(3);
    assert!(stderr_of(&a).contains("locks you out"), "{}", stderr_of(&a));
    env.cmd()
        .env("OPC_PASSWORD", THIRD)
        .args(["key", "remove", &second[..6]])
        .assert()
        .code(0);
    assert_wrong_password(&env, SECOND);
    assert_restores_with(&env, THIRD, &id, &m);

    // The last slot stays, even with --force.
    for extra in [&[][..], &["--force"][..]] {
        let a = env
            .cmd()
            .env("OPC_PASSWORD", THIRD)
            .args(["key", "remove", &third])
            .args(extra)
            .assert()
            .code(3);
        assert!(stderr_of(&a).contains("last one"), "{}", stderr_of(&a));
    }
    assert_restores_with(&env, THIRD, &id, &m);
    // An unknown id is "not found".
    env.cmd()
        .env("OPC_PASSWORD", THIRD)
        .args(["key", "remove", "ffffffffffff"])
        .assert()
        .code(16);
}

/// The keyring a slot file wraps, opened with `password`.
fn keyring_of(slot_file: &Path, password: &str) -> Keyring {
    let slot: KeySlot = serde_json::from_slice(&std::fs::read(slot_file).unwrap()).unwrap();
    slot.open(password.as_bytes()).unwrap().expect("opens")
}

fn packs(repo: &Path) -> Vec<PathBuf> {
    crate::support::files_under(&repo.join("data"))
}

/// Packs whose trailer `ring` opens, and those it does not.
fn trailers_opened_by(repo: &Path, ring: &Keyring) -> (usize, usize) {
    let backend = opc_store::backend::LocalBackend::new(repo);
    let sealer = ring.sealer();
    let mut yes = 0;
    let mut no = 0;
    for p in packs(repo) {
        let name = p.strip_prefix(repo).unwrap().to_str().unwrap().to_string();
        match opc_store::repo::pack::read_trailer(&backend, &sealer, &name) {
            Ok(_) => yes += 1,
            Err(_) => no += 1,
        }
    }
    (yes, no)
}

fn current_slot_file(env: &Env, password: &str) -> PathBuf {
    let list = key_list(env, password);
    env.repo
        .join("keys")
        .join(list["current"].as_str().unwrap())
}

#[test]
fn rotate_seals_new_data_with_a_new_key_and_reencrypt_drops_the_old() {
    let env = setup();
    let (old_id, old_m) = take(&env);
    let old_ring = keyring_of(&current_slot_file(&env, PASSWORD), PASSWORD).newest_only();
    let old_packs = packs(&env.repo).len();
    assert!(old_packs >= 3, "want several packs, got {old_packs}");

    // Another password blocks a rotation: its slot would keep the old keys.
    env.cmd()
        .env("OPC_NEW_PASSWORD", SECOND)
        .args(["key", "add"])
        .assert()
        .code(0);
    let a = env.cmd().args(["key", "rotate"]).assert().code(3);
    assert!(stderr_of(&a).contains("--remove-other-slots"));
    let rot = env.json(&["key", "rotate", "--remove-other-slots"]);
    assert_eq!(rot["generation"], 1);
    assert_eq!(rot["removed_slots"].as_array().unwrap().len(), 2);
    assert_wrong_password(&env, SECOND);
    assert_eq!(
        key_list(&env, PASSWORD)["generations"],
        serde_json::json!([0, 1])
    );

    change(&env, 7);
    let (new_id, new_m) = take(&env);
    assert_restores_with(&env, PASSWORD, &old_id, &old_m);
    assert_restores_with(&env, PASSWORD, &new_id, &new_m);
    // Old packs under generation 0, the new ones not.
    let (by_old, not_old) = trailers_opened_by(&env.repo, &old_ring);
    assert_eq!(by_old, old_packs);
    assert!(not_old >= 1, "the new snapshot wrote no pack");

    let rep = env.json(&["key", "reencrypt"]);
    assert_eq!(rep["packs_rewritten"], old_packs as u64, "{rep}");
    assert_eq!(rep["dropped_generations"], serde_json::json!([0]));
    assert_eq!(rep["config"], true);
    let list = key_list(&env, PASSWORD);
    assert_eq!(list["generations"], serde_json::json!([1]));
    let (by_old, _) = trailers_opened_by(&env.repo, &old_ring);
    assert_eq!(by_old, 0, "a pack is still sealed with the old key");
    let new_ring = keyring_of(&current_slot_file(&env, PASSWORD), PASSWORD);
    assert_eq!(new_ring.numbers(), vec![1]);
    assert_eq!(trailers_opened_by(&env.repo, &new_ring).1, 0);
    assert_restores_with(&env, PASSWORD, &old_id, &old_m);
    assert_restores_with(&env, PASSWORD, &new_id, &new_m);
    env.cmd().args(["check", "--read-data"]).assert().code(0);

    // Deduplication continues across the rotation: a copy of a file stored
    // under generation 0 is read again but stores only new trees.
    std::fs::copy(env.path("data/app/big.bin"), env.path("data/app/copy.bin")).unwrap();
    let again = env.snapshot(&["full"]);
    let sum = &again["snapshot"]["summary"];
    assert!(sum["bytes_read"].as_u64().unwrap() >= 3 << 20, "{sum}");
    assert!(sum["new_bytes"].as_u64().unwrap() < 100_000, "{sum}");
}

/// `rotate --reencrypt` in one go, and a repository copy holding only the
/// old slot no longer opens at all (its config is re-sealed).
#[test]
fn rotate_with_reencrypt_leaves_the_old_slot_useless() {
    let env = setup();
    let (id, m) = take(&env);
    let old_slot = current_slot_file(&env, PASSWORD);
    let saved = std::fs::read(&old_slot).unwrap();
    let v = env.json(&["key", "rotate", "--reencrypt"]);
    assert_eq!(v["reencrypt"]["generations"], serde_json::json!([1]), "{v}");
    assert_restores_with(&env, PASSWORD, &id, &m);
    // Someone who kept the old slot file and knows the old password:
    for f in crate::support::files_under(&env.repo.join("keys")) {
        std::fs::remove_file(f).unwrap();
    }
    std::fs::write(&old_slot, saved).unwrap();
    let a = env.cmd().arg("snapshots").assert().code(14);
    assert!(stderr_of(&a).contains("config"), "{}", stderr_of(&a));
}

/// Kills `key passwd` after the new slot is durable: both passwords open
/// the repository, and `key remove` tidies up.
#[test]
fn passwd_killed_after_the_new_slot_leaves_both_passwords_working() {
    let env = setup();
    let (id, m) = take(&env);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("opc-store"))
        .envs(env_of(&env))
        .env("OPC_NEW_PASSWORD", SECOND)
        .env("OPC_FAULT", "passwd-after-new-slot")
        .args(["key", "passwd"])
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    assert_restores_with(&env, PASSWORD, &id, &m);
    assert_restores_with(&env, SECOND, &id, &m);
    let old = key_list(&env, PASSWORD)["current"]
        .as_str()
        .unwrap()
        .to_string();
    env.cmd()
        .env("OPC_PASSWORD", SECOND)
        .args(["key", "remove", &old])
        .assert()
        .code(0);
    assert_wrong_password(&env, PASSWORD);
    assert_restores_with(&env, SECOND, &id, &m);
}

fn env_of(env: &Env) -> Vec<(String, String)> {
    vec![
        ("OPC_PASSWORD".into(), PASSWORD.into()),
        ("OPC_REPO".into(), env.repo.display().to_string()),
        ("OPC_CONFIG".into(), env.config.display().to_string()),
        (
            "OPC_CACHE_DIR".into(),
            env.path("cache").display().to_string(),
        ),
    ]
}

/// Kills `key reencrypt` at `point`; every snapshot restores, a second
/// run completes and leaves only the newest generation.
fn reencrypt_killed_at(point: &str) {
    let env = setup();
    let (old_id, old_m) = take(&env);
    env.cmd().args(["key", "rotate"]).assert().code(0);
    change(&env, 9);
    let (new_id, new_m) = take(&env);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("opc-store"))
        .envs(env_of(&env))
        .env_remove("OPC_PASSWORD_FILE")
        .env("OPC_FAULT", point)
        .args(["key", "reencrypt"])
        .current_dir(env.tmp.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "not killed at {point}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_restores_with(&env, PASSWORD, &old_id, &old_m);
    assert_restores_with(&env, PASSWORD, &new_id, &new_m);
    let rep = env.json(&["key", "reencrypt"]);
    eprintln!("reencrypt after the kill at {point}: {rep}");
    assert_eq!(
        key_list(&env, PASSWORD)["generations"],
        serde_json::json!([1])
    );
    assert_eq!(slot_ids(&key_list(&env, PASSWORD)).len(), 1);
    assert_restores_with(&env, PASSWORD, &old_id, &old_m);
    assert_restores_with(&env, PASSWORD, &new_id, &new_m);
    env.cmd().args(["check", "--read-data"]).assert().code(0);
}

#[test]
fn reencrypt_killed_after_records() {
    reencrypt_killed_at("reencrypt-after-records");
}

#[test]
fn reencrypt_killed_after_first_new_pack() {
    reencrypt_killed_at("reencrypt-after-first-new-pack");
}

#[test]
fn reencrypt_killed_before_index_swap() {
    reencrypt_killed_at("reencrypt-before-index-swap");
}

#[test]
fn reencrypt_killed_after_index_swap() {
    reencrypt_killed_at("reencrypt-after-index-swap");
}

#[test]
fn reencrypt_killed_during_deletes() {
    reencrypt_killed_at("reencrypt-during-deletes");
}

#[test]
fn reencrypt_killed_before_drop() {
    reencrypt_killed_at("reencrypt-before-drop");
}

#[test]
fn reencrypt_killed_after_new_slot() {
    reencrypt_killed_at("keyring-after-new-slot");
}

#[test]
fn password_files_readable_by_others_are_warned_about() {
    let env = setup();
    let f = env.path("pw");
    std::fs::write(&f, PASSWORD).unwrap();
    for (mode, warned) in [(0o644, true), (0o640, true), (0o600, false), (0o400, false)] {
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        let a = env
            .cmd()
            .env_remove("OPC_PASSWORD")
            .args(["snapshots", "-q", "--password-file"])
            .arg(&f)
            .assert()
            .code(0);
        assert_eq!(
            stderr_of(&a).contains("warning: password file"),
            warned,
            "mode {mode:o}: {}",
            stderr_of(&a)
        );
    }
    // The new password's file too.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let a = env
        .cmd()
        .args(["key", "add", "--new-password-file"])
        .arg(&f)
        .assert()
        .code(0);
    assert!(stderr_of(&a).contains("chmod 600"), "{}", stderr_of(&a));
}

/// Scans every file of the repository and the cache, and everything the
/// commands printed with full logging, for the password bytes.
#[test]
fn no_password_is_stored_or_logged() {
    let env = setup();
    let mut printed = Vec::new();
    let mut run = |args: &[&str], pw: &str, new: Option<&str>| {
        let mut c = env.cmd();
        c.env("OPC_PASSWORD", pw).env("OPC_LOG", "trace").args(args);
        if let Some(n) = new {
            c.env("OPC_NEW_PASSWORD", n);
        }
        let out = c.assert().code(0).get_output().clone();
        printed.extend_from_slice(&out.stdout);
        printed.extend_from_slice(&out.stderr);
    };
    run(&["snapshot", "full"], PASSWORD, None);
    run(&["key", "add"], PASSWORD, Some(SECOND));
    run(&["key", "passwd"], SECOND, Some(THIRD));
    run(&["key", "rotate", "--remove-other-slots"], THIRD, None);
    run(&["snapshot", "full"], THIRD, None);
    run(&["key", "reencrypt"], THIRD, None);
    run(&["key", "list"], THIRD, None);
    let mut files = crate::support::files_under(&env.repo);
    files.extend(crate::support::files_under(&env.path("cache")));
    assert!(files.len() > 10, "{files:?}");
    for pw in [PASSWORD, SECOND, THIRD] {
        assert!(!contains(&printed, pw.as_bytes()), "{pw:?} printed");
        for f in &files {
            let data = std::fs::read(f).unwrap();
            assert!(!contains(&data, pw.as_bytes()), "{pw:?} in {}", f.display());
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
