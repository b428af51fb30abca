//! What sanitization did to a part: recorded in the snapshot record so an
//! operator can see which files were left out or redacted, and so the next
//! snapshot knows which stored files differ from their source. Paths and
//! key names only, never values. Format: `docs/FORMAT.md` §8.

use serde::{Deserialize, Serialize};

/// Sanitization of one part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartSanitize {
    /// Fingerprint of the rules used; files are reused from a parent
    /// snapshot only when it was sanitized by the same rules.
    pub rules: String,
    /// Files redacted or excluded, in walk order.
    #[serde(default)]
    pub entries: Vec<SanitizedEntry>,
}

/// What happened to one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SanitizeAction {
    /// Stored with the values of secret keys replaced.
    Redacted,
    /// Not stored.
    Excluded,
}

/// One sanitized file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SanitizedEntry {
    /// Path inside the part: the root entry name, then the path below it.
    pub path: String,
    /// What was done.
    pub action: SanitizeAction,
    /// Dotted paths of the redacted keys (`db.password`, `x[].apiKey`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Why a file was excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Size of the source file of a redacted entry (its stored size
    /// differs), to recognise it unchanged next time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_size: Option<u64>,
}
