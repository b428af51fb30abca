//! `<backup_name>/manifest.json`: what an archive holds, with a SHA-256 per
//! file so it can be verified without the repository. Schema:
//! `docs/TARBALL.md`. Manifests written by the legacy scripts are read
//! leniently: every field is optional there.

use serde::{Deserialize, Serialize};

/// Value of [`Manifest::format`] for archives written by opc-store.
pub const MANIFEST_FORMAT: &str = "opc-store-tarball/1";

/// The manifest of an archive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version; absent in legacy manifests.
    #[serde(default)]
    pub format: String,
    /// Archive file name without `.tar.gz`, also its top folder.
    pub backup_name: String,
    /// `full` or a component name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Time of the backup (RFC 3339).
    pub timestamp: String,
    /// Deployment environment, e.g. `production`.
    #[serde(default)]
    pub environment: String,
    /// Host the data was captured on.
    #[serde(default)]
    pub host: String,
    /// Snapshot exported (hex id).
    #[serde(default)]
    pub snapshot_id: String,
    /// Tags of the snapshot.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Retention asked for when the snapshot was taken, in days.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Tool that wrote the archive.
    #[serde(default)]
    pub tool: String,
    /// Its version.
    #[serde(default)]
    pub tool_version: String,
    /// When the archive was written (RFC 3339).
    #[serde(default)]
    pub created: String,
    /// Components, in archive order.
    pub components: Vec<ManifestComponent>,
    /// Every regular file with its digest, in archive order.
    pub files: Vec<ManifestFile>,
}

/// One component (a top folder below `<backup_name>/`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestComponent {
    /// Component name, also its folder name.
    pub name: String,
    /// Where it was captured from, with its entry name below the folder
    /// when there are several paths.
    #[serde(default)]
    pub paths: Vec<ManifestPath>,
    /// Regular files (hardlinks counted once).
    #[serde(default)]
    pub files: u64,
    /// Folders, the component's own included.
    #[serde(default)]
    pub dirs: u64,
    /// Symlinks, FIFOs and devices.
    #[serde(default)]
    pub others: u64,
    /// Bytes of file content.
    #[serde(default)]
    pub size_bytes: u64,
}

/// A captured source path of a component.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPath {
    /// Absolute source path.
    pub path: String,
    /// Entry name in the component folder (with several paths).
    pub entry: String,
}

/// One regular file. Names that are not UTF-8 are given in `path_hex`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path below `<backup_name>/`, when it is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Path bytes in hex, when they are not valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// Content length.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

impl ManifestFile {
    /// A file entry for `path` (bytes below the top folder).
    pub fn new(path: &[u8], size: u64, sha256: &[u8]) -> ManifestFile {
        let (path, path_hex) = match std::str::from_utf8(path) {
            Ok(s) => (Some(s.to_string()), None),
            Err(_) => (None, Some(hex::encode(path))),
        };
        ManifestFile {
            path,
            path_hex,
            size,
            sha256: hex::encode(sha256),
        }
    }

    /// The path bytes, if the entry names one.
    pub fn path_bytes(&self) -> Option<Vec<u8>> {
        match (&self.path, &self.path_hex) {
            (Some(p), _) => Some(p.as_bytes().to_vec()),
            (None, Some(h)) => hex::decode(h).ok(),
            (None, None) => None,
        }
    }
}

/// What can be read from any manifest, ours or a legacy script's.
#[derive(Clone, Debug, Default)]
pub struct LooseManifest {
    /// Type, if given (`type` or `backup_type`).
    pub kind: Option<String>,
    /// Time, if given and parsable (`timestamp`, `time` or `date`).
    pub time: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Environment, if given.
    pub environment: Option<String>,
    /// Host, if given.
    pub host: Option<String>,
    /// Retention in days, if given.
    pub retention_days: Option<u32>,
    /// Tags, if given.
    pub tags: Vec<String>,
    /// Components with their source paths, if given.
    pub components: Vec<ManifestComponent>,
    /// The full manifest, when it is one of ours.
    pub full: Option<Manifest>,
}

/// Reads whatever a manifest offers; `None` when it is not JSON at all.
pub fn read_loose(bytes: &[u8]) -> Option<LooseManifest> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let obj = v.as_object()?;
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| obj.get(*k).and_then(|x| x.as_str()))
            .map(str::to_string)
            .filter(|s| !s.is_empty())
    };
    let time = text(&["timestamp", "time", "date"]).and_then(|t| parse_time(&t));
    let full = (obj.get("format").and_then(|f| f.as_str()) == Some(MANIFEST_FORMAT))
        .then(|| serde_json::from_value::<Manifest>(v.clone()).ok())
        .flatten();
    // Legacy manifests list components as names, objects or a map.
    let components = match obj.get("components") {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|c| match c {
                serde_json::Value::String(s) => Some(ManifestComponent {
                    name: s.clone(),
                    ..Default::default()
                }),
                other => serde_json::from_value(other.clone()).ok(),
            })
            .collect(),
        Some(serde_json::Value::Object(m)) => m
            .keys()
            .map(|k| ManifestComponent {
                name: k.clone(),
                ..Default::default()
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(LooseManifest {
        kind: text(&["type", "backup_type"]),
        time,
        environment: text(&["environment"]),
        host: text(&["host", "hostname"]),
        retention_days: obj
            .get("retention_days")
            .and_then(|r| r.as_u64().or_else(|| r.as_str()?.parse().ok()))
            .and_then(|r| u32::try_from(r).ok()),
        tags: obj
            .get("tags")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default(),
        components,
        full,
    })
}

/// RFC 3339, or the legacy `YYYYMMDD_HHMMSS` / `YYYY-MM-DD HH:MM:SS` in
/// local time.
fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    use chrono::TimeZone;
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(d);
    }
    ["%Y%m%d_%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(t, f).ok())
        .and_then(|n| chrono::Local.from_local_datetime(&n).earliest())
        .map(|d| d.fixed_offset())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_manifests_are_read_leniently() {
        let m = read_loose(
            br#"{"backup_type":"vectors","timestamp":"20241201_020000","components":["vectors"],"retention_days":"3"}"#,
        )
        .unwrap();
        assert_eq!(m.kind.as_deref(), Some("vectors"));
        assert_eq!(m.retention_days, Some(3));
        assert_eq!(m.components[0].name, "vectors");
        assert!(m.time.is_some());
        assert!(m.full.is_none());
        assert!(read_loose(b"not json").is_none());
    }

    #[test]
    fn non_utf8_paths_use_hex() {
        let f = ManifestFile::new(b"a/\xff", 1, &[0; 32]);
        assert_eq!(f.path, None);
        assert_eq!(f.path_bytes().unwrap(), b"a/\xff");
    }
}
