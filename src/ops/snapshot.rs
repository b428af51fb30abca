//! Taking a snapshot of named parts. Write order (`docs/FORMAT.md` §10):
//! every pack is durable and indexed (packer flush) before the snapshot
//! record is written, so a visible snapshot never references missing data.

use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, FixedOffset};

use super::hooks::HookRunner;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::pipeline::{preview, scan_totals, Archiver, Preview, Progress};
use crate::repo::Repository;
use crate::snapshot::{self as snap, Part, Snapshot, Summary, SNAPSHOT_VERSION};
use crate::source::sanitize::{SanitizeRules, Sanitizer};
use crate::source::{Excludes, HookRun, HookSet, SqliteCapture};

/// One part to capture.
#[derive(Clone, Debug)]
pub struct PartSource {
    /// Part name, recorded opaque.
    pub name: String,
    /// Absolute source paths.
    pub paths: Vec<PathBuf>,
    /// Exclude patterns.
    pub excludes: Vec<String>,
    /// Which files are SQLite databases to copy consistently.
    pub sqlite: SqliteCapture,
    /// Commands around this part's capture.
    pub hooks: HookSet,
    /// Sanitization rules; `None` stores files as they are.
    pub sanitize: Option<SanitizeRules>,
}

/// What to capture and how to label it.
#[derive(Clone, Debug)]
pub struct SnapshotRequest {
    /// Snapshot type (`full` or a part name).
    pub kind: String,
    /// Parts to capture, in order.
    pub parts: Vec<PartSource>,
    /// User tags.
    pub tags: Vec<String>,
    /// Retention asked for, in days.
    pub retention_days: Option<u32>,
    /// Snapshot time; now when absent.
    pub time: Option<DateTime<FixedOffset>>,
    /// Deployment environment label.
    pub environment: String,
    /// Commands around the whole snapshot.
    pub hooks: HookSet,
}

/// The result of a snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotReport {
    /// New snapshot id.
    pub id: Id,
    /// The record as stored.
    pub snapshot: Snapshot,
    /// Parent snapshot per part, when one was used.
    pub parents: Vec<(String, Id)>,
    /// Entries skipped or changed while read, parts whose `before` hook
    /// failed, hooks that failed after capture.
    pub warnings: Vec<String>,
    /// Hooks run, in order.
    pub hooks: Vec<HookRun>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Captures `req.parts` into a new snapshot.
pub fn snapshot(
    repo: &Repository,
    req: &SnapshotRequest,
    progress: &dyn Progress,
) -> Result<SnapshotReport> {
    let started = Instant::now();
    let start = chrono::Local::now().fixed_offset();
    // Fail before anything runs when a path is missing, unless a `before`
    // hook might still create it (a mount, say): then it is checked after.
    for p in req.parts.iter().filter(|p| p.hooks.before.is_none()) {
        check_paths(p)?;
    }
    let host = crate::hostname();
    let previous = snap::list(repo)?;
    let removals = repo.index().blob_removals()?;
    let packer = repo.packer();
    let mut parts = Vec::new();
    let mut parents = Vec::new();
    let mut warnings = Vec::new();
    let mut total = Summary::default();
    if progress.wants_totals() {
        for p in &req.parts {
            let ex = Excludes::new(&p.excludes)?;
            let paths: Vec<_> = p.paths.iter().map(PathBuf::as_path).collect();
            let (files, bytes) = scan_totals(&paths, &ex);
            progress.add_total(files, bytes);
        }
    }
    let mut hooks = HookRunner::new(vec![("OPC_SNAPSHOT_TYPE", req.kind.clone())]);
    let rh = &req.hooks;
    if let Err(f) = hooks.run(rh, "run", "before", &rh.before, None) {
        let _ = hooks.run(rh, "run", "on_error", &rh.on_error, Some(&f));
        return Err(Error::Hook(format!("{f}; nothing was captured")));
    }
    let captured = (|| -> Result<()> {
        for p in &req.parts {
            let h = &p.hooks;
            if let Err(f) = hooks.run(h, &p.name, "before", &h.before, None) {
                let _ = hooks.run(h, &p.name, "on_error", &h.on_error, Some(&f));
                let m = format!("{} was not captured: {f}", p.name);
                progress.warn(&m);
                warnings.push(m);
                continue;
            }
            let res = capture_part(repo, &packer, p, &previous, &host, progress);
            let after = hooks.run(h, &p.name, "after", &h.after, None);
            let failure = match (&res, &after) {
                (Err(e), _) => Some(e.to_string()),
                (Ok(_), Err(f)) => Some(f.clone()),
                _ => None,
            };
            if let Some(f) = &failure {
                let _ = hooks.run(h, &p.name, "on_error", &h.on_error, Some(f));
            }
            let (part, parent, part_warnings) = res?;
            if let Err(f) = after {
                progress.warn(&f);
                warnings.push(f);
            }
            if let Some(id) = parent {
                parents.push((p.name.clone(), id));
            }
            total.add(&part.summary);
            warnings.extend(part_warnings);
            parts.push(part);
        }
        if parts.is_empty() && !req.parts.is_empty() {
            return Err(Error::Hook(format!(
                "nothing was captured: {}",
                warnings.join("; ")
            )));
        }
        Ok(())
    })();
    let after = hooks.run(rh, "run", "after", &rh.after, None);
    let failure = match (&captured, &after) {
        (Err(e), _) => Some(e.to_string()),
        (Ok(()), Err(f)) => Some(f.clone()),
        _ => None,
    };
    if let Some(f) = &failure {
        let _ = hooks.run(rh, "run", "on_error", &rh.on_error, Some(f));
    }
    captured?;
    if let Err(f) = after {
        progress.warn(&f);
        warnings.push(f);
    }
    packer.flush()?;
    let end = chrono::Local::now().fixed_offset();
    let record = Snapshot {
        version: SNAPSHOT_VERSION,
        time: req.time.unwrap_or(start).to_rfc3339(),
        start: start.to_rfc3339(),
        end: end.to_rfc3339(),
        host,
        environment: req.environment.clone(),
        kind: req.kind.clone(),
        tags: req.tags.clone(),
        retention_days: req.retention_days,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        imported_from: None,
        original: None,
        parts,
        summary: total,
    };
    let id = commit_record(repo, &record)?;
    // Nothing left the index while this snapshot ran: every blob it names
    // is indexed, and the next one may skip checking them (index::trust).
    if repo.index().blob_removals()? == removals {
        for part in &record.parts {
            repo.index().trust_tree(&part.tree, removals)?;
        }
    }
    Ok(SnapshotReport {
        id,
        snapshot: record,
        parents,
        warnings,
        hooks: hooks.ran,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn check_paths(p: &PartSource) -> Result<()> {
    for path in &p.paths {
        if std::fs::symlink_metadata(path).is_err() {
            return Err(Error::NotFound(format!(
                "{} (part {}) does not exist; fix the path in the configuration",
                path.display(),
                p.name
            )));
        }
    }
    Ok(())
}

/// Captures one part: its record, the parent snapshot used, warnings.
fn capture_part(
    repo: &Repository,
    packer: &crate::repo::Packer<'_>,
    p: &PartSource,
    previous: &[(Id, Snapshot)],
    host: &str,
    progress: &dyn Progress,
) -> Result<(Part, Option<Id>, Vec<String>)> {
    check_paths(p)?;
    let paths: Vec<String> = p
        .paths
        .iter()
        .map(|x| x.to_string_lossy().into_owned())
        .collect();
    // Parent: the newest snapshot from this host with the same part
    // captured from the same paths.
    let parent = previous.iter().rev().find_map(|(id, s)| {
        let part = s.part(&p.name)?;
        let same = s.host == host && part.paths.iter().map(|x| &x.path).eq(paths.iter());
        same.then_some((*id, part.tree, part.sanitize.as_ref()))
    });
    let before = packer.stats();
    let mut archiver = Archiver::new(
        repo,
        packer,
        Excludes::new(&p.excludes)?,
        p.sqlite.clone(),
        progress,
    );
    let prev = parent.and_then(|x| x.2);
    if p.sanitize.is_some() || prev.is_some() {
        let rules = p.sanitize.as_ref().map(Sanitizer::new).transpose()?;
        archiver = archiver.with_sanitizer(rules, prev, &p.name);
    }
    let res = archiver.archive(&p.paths, parent.map(|x| x.1))?;
    let after = packer.stats();
    let mut summary = res.summary;
    summary.new_blobs = after.new_blobs - before.new_blobs;
    summary.new_bytes = after.new_raw_bytes - before.new_raw_bytes;
    summary.stored_bytes = after.new_stored_bytes - before.new_stored_bytes;
    let part = Part {
        name: p.name.clone(),
        tree: res.tree,
        paths: res.paths,
        summary,
        sanitize: res.sanitize,
    };
    Ok((part, parent.map(|x| x.0), res.warnings))
}

/// What a dry run of one part would capture.
#[derive(Clone, Debug)]
pub struct DryRunPart {
    /// Part name.
    pub name: String,
    /// What the walk found.
    pub preview: Preview,
}

/// Walks every part of `req` as [`snapshot`] would, applying excludes and
/// sanitization, and stores nothing: no repository is needed.
pub fn dry_run(req: &SnapshotRequest) -> Result<Vec<DryRunPart>> {
    let mut out = Vec::new();
    for p in &req.parts {
        let sanitizer = p.sanitize.as_ref().map(Sanitizer::new).transpose()?;
        out.push(DryRunPart {
            name: p.name.clone(),
            preview: preview(&p.name, &p.paths, &Excludes::new(&p.excludes)?, sanitizer),
        });
    }
    Ok(out)
}

/// Writes a snapshot record, making the snapshot visible. Call only once
/// everything it references is durable (after the packer's flush).
pub(crate) fn commit_record(repo: &Repository, record: &Snapshot) -> Result<Id> {
    let id = Id::random();
    let json = serde_json::to_string(record).expect("snapshot serializes");
    let sealed = repo.write_object("snapshots", &id, json.as_bytes())?;
    repo.index().put_snapshot(&id, &sealed)?;
    Ok(id)
}
