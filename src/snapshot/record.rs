//! Snapshot records: what was captured, when, where, and the root tree of
//! each part. Stored sealed as JSON at `snapshots/<id>`. Format:
//! `docs/FORMAT.md` §8.

use serde::{Deserialize, Serialize};

use crate::id::Id;

/// Version of the record layout.
pub const SNAPSHOT_VERSION: u32 = 1;

/// One source path of a part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartPath {
    /// The absolute path that was captured.
    pub path: String,
    /// Name of its entry in the part's root tree (the path's last
    /// component, with `-2`, `-3`, ... appended when two paths share it).
    pub entry: String,
}

/// A named part of a snapshot (one component, for One-Place-Chat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Part name.
    pub name: String,
    /// Root tree.
    pub tree: Id,
    /// Captured paths.
    pub paths: Vec<PartPath>,
    /// Counters for this part.
    pub summary: Summary,
    /// What sanitization redacted or left out; absent when it was off (or
    /// in records written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanitize: Option<super::PartSanitize>,
}

/// Counters of a snapshot or part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Other entries (symlinks, FIFOs, devices).
    pub others: u64,
    /// Logical bytes of file content.
    pub bytes: u64,
    /// Files whose content was read (the rest matched the parent snapshot).
    pub files_read: u64,
    /// Bytes read from files.
    pub bytes_read: u64,
    /// New blobs stored.
    pub new_blobs: u64,
    /// Plaintext bytes of new blobs.
    pub new_bytes: u64,
    /// Bytes added to the repository (sealed, compressed, padded).
    pub stored_bytes: u64,
    /// Entries skipped with a warning.
    pub warnings: u64,
    /// SQLite databases copied through SQLite's backup API (consistent
    /// while written); their `-wal`/`-shm`/`-journal` files are not stored.
    #[serde(default)]
    pub sqlite_captured: u64,
}

/// A snapshot record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Record layout version.
    pub version: u32,
    /// The snapshot's time (RFC 3339), used for ordering and retention.
    pub time: String,
    /// When capture started (RFC 3339).
    pub start: String,
    /// When capture ended (RFC 3339).
    pub end: String,
    /// Host that took it.
    pub host: String,
    /// Deployment environment (`ENVIRONMENT`, e.g. `production`).
    pub environment: String,
    /// Snapshot type: `full` or a part name.
    #[serde(rename = "type")]
    pub kind: String,
    /// User tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Retention asked for at capture time, in days.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// opc-store version that wrote it.
    pub tool_version: String,
    /// File name of the archive it was imported from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
    /// For a snapshot copied from another repository (`opc-store copy`):
    /// the id of the snapshot first captured, kept along chains of copies,
    /// so a snapshot already copied is recognised and not copied twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Id>,
    /// Parts captured.
    pub parts: Vec<Part>,
    /// Totals over all parts.
    pub summary: Summary,
}

impl Snapshot {
    /// The part named `name`.
    pub fn part(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }

    /// Parsed time; the Unix epoch when unparsable.
    pub fn datetime(&self) -> chrono::DateTime<chrono::FixedOffset> {
        chrono::DateTime::parse_from_rfc3339(&self.time).unwrap_or_default()
    }
}

impl Summary {
    /// Adds another summary's counters.
    pub fn add(&mut self, o: &Summary) {
        self.files += o.files;
        self.dirs += o.dirs;
        self.others += o.others;
        self.bytes += o.bytes;
        self.files_read += o.files_read;
        self.bytes_read += o.bytes_read;
        self.new_blobs += o.new_blobs;
        self.new_bytes += o.new_bytes;
        self.stored_bytes += o.stored_bytes;
        self.warnings += o.warnings;
        self.sqlite_captured += o.sqlite_captured;
    }
}
