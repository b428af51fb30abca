//! `drill`: the legacy runbook's "test restore procedures weekly" as one
//! command. Restores the latest snapshot of a component into a temporary
//! folder, reads every file back against its blob ids, runs SQLite's
//! `integrity_check` on every database in it, and removes the folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::restore::{restore, RestoreDest, RestoreRequest};
use crate::error::{Error, Result};
use crate::pipeline::Progress;
use crate::repo::Repository;

/// What to drill.
#[derive(Clone, Debug, Default)]
pub struct DrillRequest {
    /// Component; empty means every component of the latest snapshot.
    pub part: Option<String>,
    /// Folder to restore under (a temporary folder is made inside it).
    pub scratch: Option<PathBuf>,
}

/// One SQLite database checked.
#[derive(Clone, Debug, Serialize)]
pub struct DatabaseCheck {
    /// Path below the restore folder.
    pub path: String,
    /// `ok`, or what `integrity_check` (or opening) said.
    pub result: String,
}

/// The result of a drill.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DrillReport {
    /// Snapshot restored (hex).
    pub snapshot: String,
    /// Components restored.
    pub components: Vec<String>,
    /// Files restored and verified.
    pub files: u64,
    /// Bytes restored.
    pub bytes: u64,
    /// SQLite databases checked.
    pub databases: Vec<DatabaseCheck>,
    /// Warnings of the restore.
    pub warnings: Vec<String>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl DrillReport {
    /// Whether every database passed (file verification failures are errors).
    pub fn ok(&self) -> bool {
        self.databases.iter().all(|d| d.result == "ok")
    }
}

/// Runs a restore drill.
pub fn drill(
    repo: &Repository,
    req: &DrillRequest,
    progress: &dyn Progress,
) -> Result<DrillReport> {
    let started = Instant::now();
    let base = req.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("opc-drill-")
        .tempdir_in(&base)
        .map_err(|e| Error::io("creating a drill folder in", &base, e))?;
    let rreq = RestoreRequest {
        snapshot: "latest".into(),
        parts: req.part.iter().cloned().collect(),
        dest: RestoreDest::Target(tmp.path().to_path_buf()),
        force: false,
        verify: true,
        run_hooks: false,
        hooks: Default::default(),
        part_hooks: Default::default(),
    };
    // The folder is removed when `tmp` drops, also on error.
    let r = restore(repo, &rreq, progress)?;
    let mut rep = DrillReport {
        snapshot: r.id.to_hex(),
        components: r.restored.iter().map(|(c, _)| c.clone()).collect(),
        files: r.stats.verified,
        bytes: r.stats.bytes,
        warnings: r.warnings,
        ..Default::default()
    };
    find_databases(tmp.path(), tmp.path(), &mut rep.databases)?;
    rep.seconds = started.elapsed().as_secs_f64();
    Ok(rep)
}

fn find_databases(root: &Path, dir: &Path, out: &mut Vec<DatabaseCheck>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            find_databases(root, &p, out)?;
        } else if ft.is_file() && is_sqlite(&p) {
            out.push(DatabaseCheck {
                path: p
                    .strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned(),
                result: integrity(&p),
            });
        }
    }
    Ok(())
}

fn is_sqlite(p: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"SQLite format 3\0"
}

fn integrity(p: &Path) -> String {
    use rusqlite::{Connection, OpenFlags};
    // Read-write is needed for a database in WAL mode to be opened at all;
    // the copy is ours and thrown away.
    let c = match Connection::open_with_flags(p, OpenFlags::SQLITE_OPEN_READ_WRITE) {
        Ok(c) => c,
        Err(e) => return format!("cannot open: {e}"),
    };
    let rows: rusqlite::Result<Vec<String>> = c
        .prepare("PRAGMA integrity_check")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect());
    match rows {
        Ok(r) if r == ["ok"] => "ok".into(),
        Ok(r) => r.join("; "),
        Err(e) => format!("integrity_check failed: {e}"),
    }
}
