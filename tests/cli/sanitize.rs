//! Sanitization end to end: secrets in `.env`, YAML and JSON files and
//! secret files never reach the repository (scanned raw and decompressed,
//! in an unencrypted repository), restores and exports hold placeholders
//! and every other byte, the record and `--dry-run --show-sanitized` list
//! what was done, and turning sanitization off stores the secrets (the
//! control proving the scan would see a leak).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use opc_store::backend::LocalBackend;
use opc_store::Repository;
use serde_json::{json, Value};

use crate::support::{write, Env};

const SECRETS: &[&str] = &[
    "sk-live-4f1d9c2e",
    "pw-db-77a1",
    "xoxb-slack-93be",
    "yaml-nested-pw-1c",
    "yaml-list-key-2d",
    "yaml-block-line-3e",
    "json-api-key-4f",
    "PEM-BODY-5a6b",
    "SSH-KEY-7c8d",
    "compose-key-6a",
];

const ENV: &str = "# application settings\nOPENAI_API_KEY=sk-live-4f1d9c2e\nDB_PASSWORD=\"pw-db-77a1\" # rotated monthly\nexport SLACK_TOKEN=xoxb-slack-93be\nDB_HOST=postgres\n\nMAX_TOKENS=4096\n";
const ENV_OUT: &str = "# application settings\nOPENAI_API_KEY=\"<redacted by opc-store>\"\nDB_PASSWORD=\"<redacted by opc-store>\" # rotated monthly\nexport SLACK_TOKEN=\"<redacted by opc-store>\"\nDB_HOST=postgres\n\nMAX_TOKENS=4096\n";
const YAML: &str = "# service\na:\n  b:\n    db_password: yaml-nested-pw-1c   # inline\n    host: db\nproviders:\n  - name: openai\n    api_key: 'yaml-list-key-2d'\n  - name: local\ncert_secret: |\n  yaml-block-line-3e\n  second line\nflow: {x: 1, token: \"\"}\nenvironment:\n  - SERVICE_API_KEY=compose-key-6a\n  - LOG_LEVEL=info\n";
const YAML_OUT: &str = "# service\na:\n  b:\n    db_password: \"<redacted by opc-store>\"   # inline\n    host: db\nproviders:\n  - name: openai\n    api_key: '<redacted by opc-store>'\n  - name: local\ncert_secret: \"<redacted by opc-store>\"\nflow: {x: 1, token: \"\"}\nenvironment:\n  - SERVICE_API_KEY=<redacted by opc-store>\n  - LOG_LEVEL=info\n";
const JSON: &str =
    "{\n  \"x\": [{\"apiKey\": \"json-api-key-4f\", \"id\": 7}],\n  \"name\": \"chat\"\n}\n";
const JSON_OUT: &str = "{\n  \"x\": [{\"apiKey\": \"<redacted by opc-store>\", \"id\": 7}],\n  \"name\": \"chat\"\n}\n";

/// An unencrypted repository and an application tree full of secrets.
fn setup(sanitize: Option<Value>) -> (Env, PathBuf) {
    let env = Env::new();
    env.cmd()
        .args(["init", "--encryption", "none"])
        .assert()
        .code(0);
    let app = env.path("data/app");
    write(&app.join(".env"), ENV.as_bytes());
    write(&app.join("config/settings.yml"), YAML.as_bytes());
    write(&app.join("config/providers.json"), JSON.as_bytes());
    write(
        &app.join("certs/server.pem"),
        b"-----BEGIN-----\nPEM-BODY-5a6b\n",
    );
    write(&app.join("ssh/id_ed25519"), b"SSH-KEY-7c8d\n");
    write(
        &app.join("ssh/id_ed25519.pub"),
        b"ssh-ed25519 AAAA public\n",
    );
    write(&app.join("README.md"), b"not a secret\n");
    let mut cfg = json!({
        "repository": env.repo,
        "components": { "application": { "paths": [app] } },
    });
    if let Some(s) = sanitize {
        cfg["sanitize"] = s;
    }
    env.config_value(cfg);
    (env, app)
}

/// Every file under `dir` (path -> bytes).
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Secrets found in the repository and cache files, raw, and in every
/// blob decompressed and opened through the library.
fn leaked(env: &Env) -> Vec<String> {
    let mut found = Vec::new();
    for dir in [env.repo.clone(), env.path("cache")] {
        for (p, data) in files(&dir) {
            for s in SECRETS {
                if contains(&data, s) {
                    found.push(format!("{s} in {}", p.display()));
                }
            }
        }
    }
    let repo = Repository::open_backend(
        Box::new(LocalBackend::new(&env.repo)),
        &env.repo,
        None,
        &env.path("cache"),
    )
    .unwrap();
    for (id, _) in repo.index().all_blobs().unwrap() {
        let data = repo.read_blob(&id).unwrap();
        for s in SECRETS {
            if contains(&data, s) {
                found.push(format!("{s} in blob {}", id.short()));
            }
        }
    }
    found
}

/// (path, action, keys) of a part's sanitize record.
fn entries(part: &Value) -> Vec<(String, String, Vec<String>)> {
    part["sanitize"]["entries"]
        .as_array()
        .expect("sanitize entries")
        .iter()
        .map(|e| {
            let keys = e["keys"]
                .as_array()
                .map(|k| k.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (
                e["path"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                keys,
            )
        })
        .collect()
}

fn expected_entries() -> Vec<(String, String, Vec<String>)> {
    let r = |p: &str, a: &str, k: &[&str]| {
        (
            p.to_string(),
            a.to_string(),
            k.iter().map(|s| s.to_string()).collect(),
        )
    };
    vec![
        r(
            "application/.env",
            "redacted",
            &["OPENAI_API_KEY", "DB_PASSWORD", "SLACK_TOKEN"],
        ),
        r("application/certs/server.pem", "excluded", &[]),
        r(
            "application/config/providers.json",
            "redacted",
            &["x[].apiKey"],
        ),
        r(
            "application/config/settings.yml",
            "redacted",
            &[
                "a.b.db_password",
                "providers[].api_key",
                "cert_secret",
                "environment[].SERVICE_API_KEY",
            ],
        ),
        r("application/ssh/id_ed25519", "excluded", &[]),
    ]
}

fn sorted(mut v: Vec<(String, String, Vec<String>)>) -> Vec<(String, String, Vec<String>)> {
    v.sort();
    v
}

#[test]
fn secrets_never_reach_the_repository_and_restores_hold_placeholders() {
    let (env, _app) = setup(None);
    let report = env.snapshot(&[]);
    let part = &report["snapshot"]["parts"][0];
    assert_eq!(sorted(entries(part)), expected_entries());
    assert_eq!(leaked(&env), Vec::<String>::new());

    // The record keeps it: `snapshots --json` shows the same list.
    let list = env.json(&["snapshots"]);
    assert_eq!(sorted(entries(&list[0]["parts"][0])), expected_entries());

    let out = env.path("restored");
    env.restore(&["latest", "--target", out.to_str().unwrap()]);
    let r = out.join("application");
    assert_eq!(std::fs::read_to_string(r.join(".env")).unwrap(), ENV_OUT);
    assert_eq!(
        std::fs::read_to_string(r.join("config/settings.yml")).unwrap(),
        YAML_OUT
    );
    assert_eq!(
        std::fs::read_to_string(r.join("config/providers.json")).unwrap(),
        JSON_OUT
    );
    assert_eq!(
        std::fs::read(r.join("README.md")).unwrap(),
        b"not a secret\n"
    );
    assert!(
        r.join("ssh/id_ed25519.pub").exists(),
        "public keys are kept"
    );
    assert!(!r.join("ssh/id_ed25519").exists() && !r.join("certs/server.pem").exists());

    // Redacted files are what the snapshot holds: nothing is damaged.
    env.cmd().args(["check", "--read-data"]).assert().code(0);
    env.cmd()
        .args(["drill", "--scratch"])
        .arg(env.path(""))
        .assert()
        .code(0);

    // The legacy export carries the sanitized content too.
    let tgz = env.path("export.tar.gz");
    env.cmd()
        .args(["export", "latest", "-o"])
        .arg(&tgz)
        .assert()
        .code(0);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&tgz).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    assert!(contains(&tar, "<redacted by opc-store>"));
    assert!(SECRETS.iter().all(|s| !contains(&tar, s)));
}

#[test]
fn dry_run_lists_the_same_and_writes_nothing() {
    let (env, _app) = setup(None);
    let before = (files(&env.repo), files(&env.path("cache")));
    let v = env.json(&["snapshot", "--dry-run", "--show-sanitized"]);
    assert_eq!(v["dry_run"], true);
    assert_eq!(sorted(entries(&v["parts"][0])), expected_entries());
    let human = env
        .cmd()
        .args(["snapshot", "--dry-run", "--show-sanitized"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let human = String::from_utf8(human).unwrap();
    assert!(
        human
            .contains("redacted  application/.env  keys: OPENAI_API_KEY, DB_PASSWORD, SLACK_TOKEN")
            && human.contains("excluded  application/certs/server.pem"),
        "{human}"
    );
    assert!(SECRETS.iter().all(|s| !human.contains(s)), "{human}");
    assert_eq!((files(&env.repo), files(&env.path("cache"))), before);
}

#[test]
fn unchanged_files_are_reused_and_changed_secrets_never_leak() {
    let (env, app) = setup(None);
    env.snapshot(&[]);
    // Unchanged: nothing is read, and the record still lists everything.
    let again = env.snapshot(&[]);
    assert_eq!(again["snapshot"]["summary"]["files_read"], 0, "{again}");
    assert_eq!(
        sorted(entries(&again["snapshot"]["parts"][0])),
        expected_entries()
    );
    // A new secret of the same length in the same file is read and redacted.
    let rotated = ENV.replace("sk-live-4f1d9c2e", "sk-live-ROTATED1");
    std::fs::write(app.join(".env"), rotated).unwrap();
    let third = env.snapshot(&[]);
    assert_eq!(third["snapshot"]["summary"]["files_read"], 1, "{third}");
    let mut found = leaked(&env);
    let repo_files = files(&env.repo);
    found.extend(
        repo_files
            .values()
            .filter(|d| contains(d, "sk-live-ROTATED1"))
            .map(|_| "rotated secret".to_string()),
    );
    assert_eq!(found, Vec::<String>::new());
    // Turned off, the redacted copies are not reused as "unchanged": the
    // snapshot holds the source as it is.
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&env.config).unwrap()).unwrap();
    cfg["sanitize"] = json!({ "enabled": false });
    env.config_value(cfg);
    let off = env.snapshot(&[]);
    // The three redacted files, and the two key files no longer left out.
    assert_eq!(off["snapshot"]["summary"]["files_read"], 5, "{off}");
    let out = env.path("restored");
    env.restore(&["latest", "--target", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("application/.env")).unwrap(),
        ENV.replace("sk-live-4f1d9c2e", "sk-live-ROTATED1")
    );
}

#[test]
fn turned_off_the_secrets_are_stored_and_turning_it_on_rereads_them() {
    let (env, _app) = setup(Some(json!({ "enabled": false })));
    let report = env.snapshot(&[]);
    assert!(report["snapshot"]["parts"][0].get("sanitize").is_none());
    let found = leaked(&env);
    for s in SECRETS {
        assert!(
            found.iter().any(|f| f.starts_with(s)),
            "{s} not found: {found:?}"
        );
    }
    // Turned on: the unchanged files are read again (their stored copies
    // hold secrets) and the new snapshot restores placeholders.
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&env.config).unwrap()).unwrap();
    cfg.as_object_mut().unwrap().remove("sanitize");
    env.config_value(cfg);
    let on = env.snapshot(&[]);
    assert_eq!(on["snapshot"]["summary"]["files_read"], 3, "{on}");
    let out = env.path("restored");
    env.restore(&["latest", "--target", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("application/.env")).unwrap(),
        ENV_OUT
    );
}

#[test]
fn per_component_override_and_unparsable_files() {
    let env = Env::with_repo();
    let db = env.path("data/db");
    let app = env.path("data/app");
    write(&db.join("meta.json"), b"{\"token\": \"kept\"}");
    write(&db.join("server.pem"), b"kept");
    write(&app.join("broken.yaml"), b"password: [unclosed\n");
    env.config_value(json!({
        "repository": env.repo,
        "components": {
            "db": { "paths": [db], "sanitize": { "enabled": false } },
            "app": { "paths": [app], "sanitize": { "keep": ["notes/*.json"] } },
        },
    }));
    let out = env
        .cmd()
        .args(["snapshot", "--json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let v = crate::support::parse_json(&out.stdout);
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains("app/broken.yaml") && warnings.contains("sanitize.keep"),
        "{warnings}"
    );
    let app_part = v["snapshot"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "app")
        .unwrap();
    assert_eq!(entries(app_part)[0].1, "excluded");
    let target = env.path("r");
    env.restore(&["latest", "--target", target.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(target.join("db/meta.json")).unwrap(),
        b"{\"token\": \"kept\"}"
    );
    assert!(target.join("db/server.pem").exists());
    assert!(!target.join("app/broken.yaml").exists());
    // Unknown keys are configuration errors.
    env.config_value(json!({
        "repository": env.repo,
        "components": { "db": { "paths": [db] } },
        "sanitize": { "enable": false },
    }));
    env.cmd().args(["snapshot"]).assert().code(15);
}
