//! Which files are excluded or redacted, and which keys are secret.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::{Class, Format};
use crate::error::{Error, Result};
use crate::source::Excludes;

/// Files left out by default: private keys, keystores and credential
/// files, which hold nothing but secrets. `id_*` is spelled out per key
/// type so data files such as `id_map.json` are not lost, and
/// public keys (`id_rsa.pub`) are kept.
pub const DEFAULT_EXCLUDE: &[&str] = &[
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
    "credentials",
    "credentials.json",
    ".netrc",
    ".pgpass",
    ".git-credentials",
    ".htpasswd",
];

/// Key names (case-insensitive globs) whose values are redacted.
pub const DEFAULT_REDACT_KEYS: &[&str] = &[
    "*password*",
    "*passwd*",
    "*token*",
    "*secret*",
    "*api_key*",
    "*apikey*",
    "*api-key*",
    "*private_key*",
];

/// Key names that match a redact pattern but hold no secret: LLM settings
/// such as `max_tokens` must survive a restore.
pub const DEFAULT_KEEP_KEYS: &[&str] = &["*max_tokens*", "*token_limit*", "*token_count*"];

/// What happens to `.env` files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvFiles {
    /// Secret values replaced, every other line kept (the default).
    #[default]
    Redact,
    /// Left out entirely.
    Exclude,
}

/// Sanitization settings of one part, as plain data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SanitizeRules {
    /// Name or path patterns (as for excludes) of files left out.
    pub exclude: Vec<String>,
    /// Patterns of files never sanitized (stored byte for byte).
    pub keep: Vec<String>,
    /// Key-name globs whose values are redacted (case-insensitive).
    pub redact_keys: Vec<String>,
    /// Key-name globs never redacted, even when a redact glob matches.
    pub keep_keys: Vec<String>,
    /// What happens to `.env` files.
    pub env_files: EnvFiles,
}

impl Default for SanitizeRules {
    /// The built-in defaults.
    fn default() -> Self {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        SanitizeRules {
            exclude: v(DEFAULT_EXCLUDE),
            keep: Vec::new(),
            redact_keys: v(DEFAULT_REDACT_KEYS),
            keep_keys: v(DEFAULT_KEEP_KEYS),
            env_files: EnvFiles::Redact,
        }
    }
}

/// Compiled [`SanitizeRules`].
#[derive(Clone, Debug)]
pub struct Sanitizer {
    exclude: Excludes,
    keep: Excludes,
    redact_keys: GlobSet,
    keep_keys: GlobSet,
    env_files: EnvFiles,
    fingerprint: String,
}

fn key_globs(list: &[String], what: &str) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in list {
        let g = GlobBuilder::new(p)
            .case_insensitive(true)
            .build()
            .map_err(|e| Error::Config(format!("sanitize.{what} pattern {p:?}: {e}")))?;
        b.add(g);
    }
    b.build()
        .map_err(|e| Error::Config(format!("sanitize.{what}: {e}")))
}

/// Bumped when the scanners change what they redact, so files stored by
/// an older version are read again rather than reused.
const SCANNER_VERSION: u32 = 1;

impl Sanitizer {
    /// Compiles `rules`; a bad pattern is a configuration error.
    pub fn new(rules: &SanitizeRules) -> Result<Sanitizer> {
        let json = serde_json::to_vec(&(SCANNER_VERSION, rules)).expect("rules serialize");
        let fingerprint = blake3::hash(&json).to_hex()[..16].to_string();
        Ok(Sanitizer {
            exclude: Excludes::new(&rules.exclude)
                .map_err(|e| Error::Config(format!("sanitize.exclude: {e}")))?,
            keep: Excludes::new(&rules.keep)
                .map_err(|e| Error::Config(format!("sanitize.keep: {e}")))?,
            redact_keys: key_globs(&rules.redact_keys, "redact_keys")?,
            keep_keys: key_globs(&rules.keep_keys, "keep_keys")?,
            env_files: rules.env_files,
            fingerprint,
        })
    }

    /// A short hash of the rules: a file reused from a parent snapshot
    /// must have been sanitized by the same rules.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether values under key `name` are secret.
    pub fn is_secret_key(&self, name: &str) -> bool {
        self.redact_keys.is_match(name) && !self.keep_keys.is_match(name)
    }

    /// What to do with the file at relative path `rel` named `name`.
    pub fn classify(&self, rel: &[u8], name: &[u8]) -> Class {
        if self.keep.is_excluded(rel, name, false) {
            return Class::Keep;
        }
        if self.exclude.is_excluded(rel, name, false) {
            return Class::Exclude("matches sanitize.exclude".into());
        }
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        let format = if lower == ".env" || lower.starts_with(".env.") || lower.ends_with(".env") {
            Format::Env
        } else if lower.ends_with(".yml") || lower.ends_with(".yaml") {
            Format::Yaml
        } else if lower.ends_with(".json") {
            Format::Json
        } else {
            return Class::Keep;
        };
        if format == Format::Env && self.env_files == EnvFiles::Exclude {
            return Class::Exclude("an .env file (sanitize.env_files: exclude)".into());
        }
        Class::Redact(format)
    }
}
