//! `key add --new-key-file`: a generated key file opens the repository
//! wherever a password file does, without the password; it is created
//! 0600 and never overwrites a file; only its own slot opens with it, and
//! removing that slot shuts it out.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

use crate::support::manifest::{assert_same, manifest};
use crate::support::{parse_json, random_bytes, write, Env};

/// A command that has only the key file `key` (no `OPC_PASSWORD`).
fn with_key(env: &Env, key: &Path) -> Command {
    let mut c = env.cmd();
    c.env_remove("OPC_PASSWORD").env("OPC_PASSWORD_FILE", key);
    c
}

fn add_key_file(env: &Env, key: &Path) -> Value {
    let out = env
        .cmd()
        .args(["key", "add", "--json", "--label", "timer", "--new-key-file"])
        .arg(key)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    parse_json(&out)
}

fn slot_count(env: &Env) -> usize {
    std::fs::read_dir(env.repo.join("keys")).unwrap().count()
}

#[test]
fn a_key_file_snapshots_and_restores_without_the_password() {
    let env = Env::with_repo();
    let src = env.path("data/app");
    write(&src.join("a.bin"), &random_bytes(7, 300_000));
    write(&src.join("b.txt"), b"key file\n");
    env.components(&[("app", &[src.as_path()])]);
    let key = env.path("opc.key");
    let added = add_key_file(&env, &key);
    let slot = added["added"].as_str().unwrap().to_string();

    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is the owner's only");
    let text = std::fs::read_to_string(&key).unwrap();
    let hex = text.strip_prefix("opc-store-key-v1:").unwrap().trim_end();
    assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));

    let snap = with_key(&env, &key)
        .args(["snapshot", "full", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let id = parse_json(&snap)["id"].as_str().unwrap().to_string();
    let target = env.path("out");
    with_key(&env, &key)
        .args(["restore", &id, "--target"])
        .arg(&target)
        .assert()
        .code(0);
    let (want, got) = (manifest(&src), manifest(&target.join("app")));
    if got != want {
        assert_same(&want, &got);
    }

    let list = with_key(&env, &key)
        .args(["key", "list", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let list = parse_json(&list);
    assert_eq!(
        list["current"],
        slot.as_str(),
        "the key file opened its slot"
    );
    let s = list["slots"].as_array().unwrap();
    let ours = s.iter().find(|x| x["id"] == slot.as_str()).unwrap();
    assert_eq!(
        (&ours["kdf"], &ours["params"]),
        (&"keyfile".into(), &Value::Null)
    );
    assert_eq!(ours["label"], "timer");
    // The secret is in the key file only: not in the slot, not in the log.
    let slot_json = std::fs::read_to_string(env.repo.join("keys").join(&slot)).unwrap();
    assert!(!slot_json.contains(hex));
}

#[test]
fn an_existing_file_is_never_overwritten() {
    let env = Env::with_repo();
    let key = env.path("opc.key");
    std::fs::write(&key, "precious\n").unwrap();
    let before = slot_count(&env);
    let out = env
        .cmd()
        .args(["key", "add", "--new-key-file"])
        .arg(&key)
        .assert()
        .code(3);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "precious\n");
    assert_eq!(slot_count(&env), before, "no slot without a key file");
    // Nor is a missing folder a panic: a clear error, no slot.
    let out = env
        .cmd()
        .args(["key", "add", "--new-key-file"])
        .arg(env.path("no/such/dir/opc.key"))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("writing key file"), "{err}");
    assert_eq!(slot_count(&env), before);
}

#[test]
fn only_its_own_slot_opens_and_removing_it_shuts_the_key_out() {
    let env = Env::with_repo();
    let key = env.path("opc.key");
    let slot = add_key_file(&env, &key)["added"]
        .as_str()
        .unwrap()
        .to_string();
    // One digit changed: the same form, another key. A wrong key is a
    // wrong password (exit 12), not a corrupt repository.
    let text = std::fs::read_to_string(&key).unwrap();
    let last = text.trim_end().chars().last().unwrap();
    let flipped = format!(
        "{}{}\n",
        &text.trim_end()[..text.trim_end().len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let wrong = env.path("wrong.key");
    std::fs::write(&wrong, flipped).unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    with_key(&env, &wrong).arg("snapshots").assert().code(12);
    // A key file of another repository does not open this one.
    let other = Env::with_repo();
    let other_key = other.path("other.key");
    add_key_file(&other, &other_key);
    with_key(&env, &other_key)
        .arg("snapshots")
        .assert()
        .code(12);

    with_key(&env, &key).arg("snapshots").assert().code(0);
    env.cmd().args(["key", "remove", &slot]).assert().code(0);
    with_key(&env, &key).arg("snapshots").assert().code(12);
    env.cmd().arg("snapshots").assert().code(0);
}
