//! Helpers shared by the CLI tests: a per-test sandbox that builds
//! `opc-store` commands (this file), a generator of trees holding every
//! kind of entry (`tree`), and an entry-by-entry tree comparison
//! (`manifest`).

#![allow(dead_code)] // each test module uses a different subset

pub mod garage;
pub mod manifest;
pub mod tree;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// Password of every test repository.
pub const PASSWORD: &str = "correct horse battery staple";

/// Argon2 at its cheapest: these tests exercise the tool, not the KDF.
pub const INIT_FAST: [&str; 5] = [
    "init",
    "--argon2-memory-kib",
    "1024",
    "--argon2-iterations",
    "1",
];

/// A temporary folder holding a repository (`repo`), a configuration file
/// (`backup-config.yml`) and source data; commands run inside it with
/// `OPC_REPO`, `OPC_CONFIG` and `OPC_PASSWORD` pointing there.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub config: PathBuf,
    /// More variables for every command (S3 credentials).
    pub vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("repo");
        let config = tmp.path().join("backup-config.yml");
        Env {
            tmp,
            repo,
            config,
            vars: Vec::new(),
        }
    }

    /// A new sandbox with an initialised repository.
    pub fn with_repo() -> Env {
        let env = Env::new();
        env.init();
        env
    }

    /// The folder of the local cache holding this repository's index.
    pub fn index_dir(&self) -> PathBuf {
        let marker: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.repo.join("repo.json")).unwrap()).unwrap();
        self.path("cache").join(marker["id"].as_str().unwrap())
    }

    /// `<sandbox>/<rel>`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// The binary with the sandbox's environment. Variables that could leak
    /// in from the developer's shell are removed, and the working folder is
    /// the sandbox so no `./backup-config.yml` elsewhere is picked up.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("opc-store").expect("binary built");
        c.env("OPC_PASSWORD", PASSWORD)
            .env("OPC_REPO", &self.repo)
            .env("OPC_CONFIG", &self.config)
            .env("OPC_CACHE_DIR", self.tmp.path().join("cache"))
            .env_remove("OPC_PASSWORD_FILE")
            .env_remove("OPC_LOG")
            .env_remove("ENVIRONMENT")
            .env_remove("SLACK_WEBHOOK")
            .env_remove("BACKUP_TYPE")
            .env_remove("RETENTION_DAYS")
            .env_remove("EMAIL_PASSWORD")
            .current_dir(self.tmp.path());
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "OPC_S3_PATH_STYLE",
            "OPC_S3_MAX_RETRIES",
        ] {
            c.env_remove(k);
        }
        c.envs(self.vars.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn init(&self) {
        self.cmd().args(INIT_FAST).assert().code(0);
    }

    /// Writes the configuration: one component per `(name, paths)`.
    /// JSON is valid YAML, which spares us quoting rules.
    pub fn components(&self, comps: &[(&str, &[&Path])]) {
        let mut c = serde_json::Map::new();
        for (name, paths) in comps {
            c.insert(name.to_string(), serde_json::json!({ "paths": paths }));
        }
        self.config_value(serde_json::json!({ "repository": self.repo, "components": c }));
    }

    pub fn config_value(&self, v: Value) {
        self.config_text(&serde_json::to_string_pretty(&v).expect("json"));
    }

    pub fn config_text(&self, text: &str) {
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Runs `args` plus `--json`, expects exit 0 and returns the parsed
    /// stdout (failing when it is not JSON).
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self
            .cmd()
            .args(args)
            .arg("--json")
            .assert()
            .code(0)
            .get_output()
            .clone();
        parse_json(&out.stdout)
    }

    /// `snapshot ARGS --json`, which must complete without warnings.
    pub fn snapshot(&self, args: &[&str]) -> Value {
        let mut all = vec!["snapshot"];
        all.extend_from_slice(args);
        self.json(&all)
    }

    /// `restore ARGS`, which must complete without warnings.
    pub fn restore(&self, args: &[&str]) {
        self.cmd().arg("restore").args(args).assert().code(0);
    }
}

pub fn parse_json(stdout: &[u8]) -> Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(stdout)
        )
    })
}

/// The `short_id` of a `snapshot --json` report.
pub fn short_id(report: &Value) -> String {
    report["short_id"].as_str().expect("short_id").to_string()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// An unprivileged user that can read nothing it is not given.
pub const NOBODY: u32 = 65534;

/// The binary run as `nobody` when we are root (root reads any file
/// whatever its mode, so a 0000 file would not be unreadable), else as
/// ourselves. Same environment as `Env::cmd`, with the cache in
/// `cache-nobody` (which the caller creates, owned by `nobody` when root).
pub fn unprivileged(env: &Env) -> Command {
    let bin = env!("CARGO_BIN_EXE_opc-store");
    let mut c = if is_root() {
        let mut c = Command::new("setpriv");
        let id = NOBODY.to_string();
        c.args([
            format!("--reuid={id}"),
            format!("--regid={id}"),
            "--clear-groups".into(),
            bin.into(),
        ]);
        c
    } else {
        Command::new(bin)
    };
    c.env("OPC_PASSWORD", PASSWORD)
        .env("OPC_REPO", &env.repo)
        .env("OPC_CONFIG", &env.config)
        .env("OPC_CACHE_DIR", env.path("cache-nobody"))
        .env_remove("OPC_PASSWORD_FILE")
        .current_dir(env.tmp.path());
    c
}

/// Total bytes of the files under `dir`.
pub fn du(dir: &Path) -> u64 {
    let mut total = 0;
    for ent in std::fs::read_dir(dir).expect("read_dir") {
        let ent = ent.expect("entry");
        let md = ent.path().symlink_metadata().expect("metadata");
        total += if md.is_dir() {
            du(&ent.path())
        } else {
            md.len()
        };
    }
    total
}

/// Deterministic incompressible bytes (SplitMix64).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `data` to `path`, creating parent folders.
pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("create parents");
    }
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Every file below `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for ent in std::fs::read_dir(&d).expect("read_dir") {
            let p = ent.expect("entry").path();
            if p.symlink_metadata().expect("metadata").is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
