//! Unattended operation: where `run` logs, records outcomes and writes
//! metrics, and how often it prunes (`operations:` in the configuration).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `operations:` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Operations {
    /// JSON-lines log, reopened and appended per run (logrotate-safe).
    pub log_file: PathBuf,
    /// Outcome of the last runs per type, read by `status`.
    pub state_file: PathBuf,
    /// Prometheus textfile-collector file, written atomically; none when
    /// absent.
    pub metrics_file: Option<PathBuf>,
    /// `run` prunes when the last prune is older than this many days.
    pub prune_every_days: u32,
    /// A type is overdue when its next scheduled run after the last
    /// success is more than this many minutes in the past.
    pub overdue_grace_minutes: u32,
    /// How long `run` waits for a lock held by another process, seconds.
    pub lock_wait_seconds: u64,
}

impl Default for Operations {
    fn default() -> Self {
        Operations {
            log_file: PathBuf::from(super::defaults::LOG_FILE),
            state_file: Path::new(super::defaults::STATE_DIR).join("state.json"),
            metrics_file: None,
            prune_every_days: 7,
            overdue_grace_minutes: 60,
            lock_wait_seconds: 3600,
        }
    }
}

/// The `copy_to:` section: a second repository (off-site) to which `run`
/// copies each new snapshot after it is taken.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CopyTo {
    /// The target repository folder.
    pub repository: PathBuf,
    /// File holding the target's password (needed when it is encrypted:
    /// `run` never prompts).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Also apply the run's retention (forget, and prune when the source
    /// prunes) to the copy target.
    #[serde(default)]
    pub retention: bool,
}

impl CopyTo {
    /// Checks the paths: scheduled runs start in another folder, so they
    /// must be absolute.
    pub fn validate(&self) -> Result<()> {
        // An `s3:` location is not a path on this host.
        let repository = Some(&self.repository).filter(|r| !crate::backend::is_remote(r));
        for (key, p) in [
            ("repository", repository),
            ("password_file", self.password_file.as_ref()),
        ] {
            if let Some(p) = p.filter(|p| !p.is_absolute()) {
                return Err(Error::Config(format!(
                    "copy_to.{key}: {} must be absolute",
                    p.display()
                )));
            }
        }
        Ok(())
    }
}

pub use crate::notify::Outcome;

/// One run, as logged and recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// When it ended (RFC 3339).
    pub time: String,
    /// Snapshot type.
    #[serde(rename = "type")]
    pub kind: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Snapshot id (hex), when one was taken.
    pub snapshot: Option<String>,
    /// Bytes added to the repository.
    pub bytes_added: u64,
    /// Logical size of the snapshot.
    pub size: u64,
    /// Repository size after the run (packs), when known.
    pub repository_size: Option<u64>,
    /// Wall time in seconds.
    pub duration_secs: f64,
    /// Snapshots removed by retention.
    pub forgotten: u64,
    /// Bytes freed by prune, when it ran.
    pub pruned_bytes: Option<u64>,
    /// The error, for failures; warnings' count otherwise.
    pub error: Option<String>,
    /// Warnings.
    pub warnings: u64,
    /// Host.
    pub host: String,
    /// With `copy_to:`: the id of the snapshot's copy there, when the copy
    /// succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_to: Option<String>,
    /// With `copy_to:`: bytes sent to the copy target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_bytes_sent: Option<u64>,
    /// Hooks the snapshot ran, with the end of their output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<crate::source::HookRun>,
}

/// What `status` reads: the last success and failure per type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Per type.
    pub types: BTreeMap<String, TypeState>,
    /// Last prune (RFC 3339).
    pub last_prune: Option<String>,
}

/// One type's last outcomes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TypeState {
    /// Last run that took a snapshot (success or warnings).
    pub last_success: Option<RunRecord>,
    /// Last run that failed.
    pub last_failure: Option<RunRecord>,
    /// The very last run.
    pub last_run: Option<RunRecord>,
}

impl RunState {
    /// Reads the state file; an absent file is an empty state.
    pub fn load(path: &Path) -> Result<RunState> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                Error::corrupt(
                    format!("state file {}", path.display()),
                    format!("{e}; delete it to start over (only run history is lost)"),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RunState::default()),
            Err(e) => Err(Error::io("reading", path, e)),
        }
    }

    /// Records `r` and writes the state file atomically.
    pub fn record(path: &Path, r: &RunRecord) -> Result<RunState> {
        let mut st = RunState::load(path).unwrap_or_default();
        let t = st.types.entry(r.kind.clone()).or_default();
        match r.outcome {
            Outcome::Failure => t.last_failure = Some(r.clone()),
            _ => t.last_success = Some(r.clone()),
        }
        t.last_run = Some(r.clone());
        if r.pruned_bytes.is_some() {
            st.last_prune = Some(r.time.clone());
        }
        let json = serde_json::to_vec_pretty(&st).expect("state serializes");
        write_atomic(path, &json)?;
        Ok(st)
    }
}

/// Appends `r` as one JSON line to the log, opening and closing the file
/// so a rotated log is never written through an old descriptor.
pub fn append_log(path: &Path, r: &RunRecord) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io("creating", d, e))?;
    }
    let mut line = serde_json::to_value(r).expect("record serializes");
    line["level"] = match r.outcome {
        Outcome::Success => "info",
        Outcome::Warning => "warn",
        Outcome::Failure => "error",
    }
    .into();
    let mut text = serde_json::to_vec(&line).expect("serializes");
    text.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("opening log", path, e))?;
    // One write of a whole line: concurrent runs never interleave lines.
    f.write_all(&text)
        .map_err(|e| Error::io("writing log", path, e))
}

/// Prometheus text exposition of the state, for node_exporter's textfile
/// collector. `overdue_at` holds, per type, the Unix time at which it
/// becomes overdue (see `status::overdue_at`).
pub fn metrics_text(st: &RunState, overdue_at: &BTreeMap<String, i64>) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (t, v) in rows {
            out.push_str(&format!("{name}{{type=\"{}\"}} {v}\n", t.replace('"', "")));
        }
    };
    let ts = |r: &RunRecord| {
        chrono::DateTime::parse_from_rfc3339(&r.time)
            .map(|d| d.timestamp() as f64)
            .unwrap_or(0.0)
    };
    let rows = |f: &dyn Fn(&TypeState) -> Option<f64>| -> Vec<(String, f64)> {
        st.types
            .iter()
            .filter_map(|(k, t)| f(t).map(|v| (k.clone(), v)))
            .collect()
    };
    metric(
        "opc_store_last_success_timestamp_seconds",
        "Unix time of the last successful snapshot run.",
        rows(&|t| t.last_success.as_ref().map(ts)),
    );
    metric(
        "opc_store_last_failure_timestamp_seconds",
        "Unix time of the last failed run.",
        rows(&|t| t.last_failure.as_ref().map(ts)),
    );
    metric(
        "opc_store_last_run_success",
        "1 if the last run took a snapshot, 0 if it failed.",
        rows(&|t| {
            t.last_run
                .as_ref()
                .map(|r| f64::from(u8::from(r.outcome != Outcome::Failure)))
        }),
    );
    metric(
        "opc_store_last_duration_seconds",
        "Wall time of the last successful run.",
        rows(&|t| t.last_success.as_ref().map(|r| r.duration_secs)),
    );
    metric(
        "opc_store_last_bytes_added",
        "Bytes the last successful run added to the repository.",
        rows(&|t| t.last_success.as_ref().map(|r| r.bytes_added as f64)),
    );
    metric(
        "opc_store_last_snapshot_size_bytes",
        "Logical size of the last snapshot.",
        rows(&|t| t.last_success.as_ref().map(|r| r.size as f64)),
    );
    metric(
        "opc_store_overdue_timestamp_seconds",
        "Unix time after which the type is overdue (its next scheduled run after the last success, plus the grace period).",
        overdue_at.iter().map(|(k, v)| (k.clone(), *v as f64)).collect(),
    );
    let repo = st
        .types
        .values()
        .filter_map(|t| t.last_run.as_ref())
        .max_by(|a, b| a.time.cmp(&b.time))
        .and_then(|r| r.repository_size);
    if let Some(size) = repo {
        out.push_str(&format!(
            "# HELP opc_store_repository_size_bytes Size of the repository's packs.\n# TYPE opc_store_repository_size_bytes gauge\nopc_store_repository_size_bytes {size}\n"
        ));
    }
    out
}

/// Writes `data` to `path` through a temporary sibling and a rename, so
/// readers (node_exporter, `status`) never see half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".opc-")
        .tempfile_in(&dir)
        .map_err(|e| Error::io("creating a temporary file in", &dir, e))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io("writing", tmp.path(), e))?;
    // Readable by the monitoring user (node_exporter), like the legacy log.
    crate::util::set_mode(tmp.path(), 0o644)?;
    tmp.persist(path)
        .map_err(|e| Error::io("replacing", path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: &str, outcome: Outcome, time: &str) -> RunRecord {
        RunRecord {
            time: time.into(),
            kind: kind.into(),
            outcome,
            snapshot: None,
            bytes_added: 10,
            size: 20,
            repository_size: Some(30),
            duration_secs: 1.5,
            forgotten: 0,
            pruned_bytes: None,
            error: None,
            warnings: 0,
            host: "h".into(),
            copied_to: None,
            copy_bytes_sent: None,
            hooks: vec![],
        }
    }

    #[test]
    fn state_records_success_and_failure_and_metrics_render() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s/state.json");
        RunState::record(
            &p,
            &rec("full", Outcome::Success, "2024-12-01T02:00:00+00:00"),
        )
        .unwrap();
        let st = RunState::record(
            &p,
            &rec("full", Outcome::Failure, "2024-12-02T02:00:00+00:00"),
        )
        .unwrap();
        assert_eq!(RunState::load(&p).unwrap(), st);
        let t = &st.types["full"];
        assert!(t.last_success.is_some() && t.last_failure.is_some());
        let m = metrics_text(&st, &BTreeMap::from([("full".to_string(), 1733108400)]));
        assert!(
            m.contains("opc_store_last_success_timestamp_seconds{type=\"full\"} 1733018400"),
            "{m}"
        );
        assert!(
            m.contains("opc_store_last_run_success{type=\"full\"} 0"),
            "{m}"
        );
        assert!(m.contains("opc_store_repository_size_bytes 30"), "{m}");
        assert!(
            m.contains("opc_store_overdue_timestamp_seconds{type=\"full\"} 1733108400"),
            "{m}"
        );
    }
}
