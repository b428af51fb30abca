//! Restoring parts of a snapshot into a target folder or to their original
//! paths. In-place restores are written beside the original and swapped in
//! by rename; the previous content is kept as `<path>.pre-restore-<time>`,
//! never deleted, so a failed or mistaken restore loses nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::pipeline::{Progress, RestoreOptions, RestoreStats, Restorer};
use crate::repo::Repository;
use crate::snapshot::{self as snap, Snapshot, Tree};
use crate::source::{HookRun, HookSet};

use super::hooks::HookRunner;

/// Where restored data goes.
#[derive(Clone, Debug)]
pub enum RestoreDest {
    /// Under this folder: `<dir>/<part>/...`.
    Target(PathBuf),
    /// Back to the captured paths.
    InPlace,
}

/// What to restore.
#[derive(Clone, Debug)]
pub struct RestoreRequest {
    /// `latest` or an id prefix.
    pub snapshot: String,
    /// Parts to restore; empty means all.
    pub parts: Vec<String>,
    /// Destination.
    pub dest: RestoreDest,
    /// Overwrite existing data.
    pub force: bool,
    /// Read restored files back and check them.
    pub verify: bool,
    /// Run the restore hooks (`before_restore`, `after_restore`,
    /// `health_check`); meant for in-place restores.
    pub run_hooks: bool,
    /// Hooks of the restore as a whole.
    pub hooks: HookSet,
    /// Hooks per part.
    pub part_hooks: std::collections::BTreeMap<String, HookSet>,
}

/// The result of a restore.
#[derive(Clone, Debug)]
pub struct RestoreReport {
    /// Snapshot restored from.
    pub id: Id,
    /// Its record.
    pub snapshot: Snapshot,
    /// Parts restored, with where each went.
    pub restored: Vec<(String, PathBuf)>,
    /// In-place only: original content moved aside (from, to).
    pub moved_aside: Vec<(PathBuf, PathBuf)>,
    /// Counters.
    pub stats: RestoreStats,
    /// Non-fatal problems.
    pub warnings: Vec<String>,
    /// Hooks run, in order.
    pub hooks: Vec<HookRun>,
    /// Wall time in seconds.
    pub seconds: f64,
}

fn non_empty(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Err(_) => false,
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true),
        Ok(_) => true,
    }
}

/// Restores according to `req`, with its hooks when asked: every part's
/// and the whole restore's `before_restore` first (a failure stops before
/// anything is written), then the restore, then `after_restore` of all
/// that ran `before_restore` (also when the restore failed), then the
/// health checks (a failure fails the restore, whose data stays in place).
pub fn restore(
    repo: &Repository,
    req: &RestoreRequest,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let empty = req.hooks.is_empty() && req.part_hooks.values().all(HookSet::is_empty);
    if !req.run_hooks || empty {
        return restore_data(repo, req, progress);
    }
    let names = match req.parts.is_empty() {
        false => req.parts.clone(),
        true => {
            let (_, record) = snap::resolve_with(snap::list(repo)?, &req.snapshot, &[])?;
            record.parts.iter().map(|p| p.name.clone()).collect()
        }
    };
    let none = HookSet::default();
    let set = |n: &str| req.part_hooks.get(n).unwrap_or(&none);
    let mut hooks = HookRunner::new(vec![("OPC_SNAPSHOT", req.snapshot.clone())]);
    let rh = &req.hooks;
    let mut started: Vec<&str> = Vec::new();
    let mut stop = hooks
        .run(rh, "run", "before_restore", &rh.before_restore, None)
        .err();
    if stop.is_none() {
        for n in &names {
            if let Err(f) = hooks.run(set(n), n, "before_restore", &set(n).before_restore, None) {
                stop = Some(f);
                break;
            }
            started.push(n);
        }
    }
    let res = match &stop {
        Some(f) => Err(Error::Hook(format!("{f}; nothing was restored"))),
        None => restore_data(repo, req, progress),
    };
    let mut after_failures = Vec::new();
    for n in started.iter().rev() {
        if let Err(f) = hooks.run(set(n), n, "after_restore", &set(n).after_restore, None) {
            after_failures.push(f);
        }
    }
    if stop.is_none() || !started.is_empty() {
        if let Err(f) = hooks.run(rh, "run", "after_restore", &rh.after_restore, None) {
            after_failures.push(f);
        }
    }
    let mut report = res?;
    report.warnings.extend(after_failures);
    let mut unhealthy = Vec::new();
    for n in &names {
        if let Err(f) = hooks.run(set(n), n, "health_check", &set(n).health_check, None) {
            unhealthy.push(f);
        }
    }
    if let Err(f) = hooks.run(rh, "run", "health_check", &rh.health_check, None) {
        unhealthy.push(f);
    }
    if !unhealthy.is_empty() {
        return Err(Error::Hook(format!(
            "snapshot {} was restored, but the health check failed: {}",
            report.id.short(),
            unhealthy.join("; ")
        )));
    }
    report.hooks = hooks.ran;
    Ok(report)
}

/// The restore itself, without hooks.
fn restore_data(
    repo: &Repository,
    req: &RestoreRequest,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let all = snap::list(repo)?;
    let mut wanted: Vec<&str> = Vec::new();
    for p in &req.parts {
        if !wanted.contains(&p.as_str()) {
            wanted.push(p);
        }
    }
    let (id, record) = snap::resolve_with(all, &req.snapshot, &wanted)?;
    let names: Vec<String> = if wanted.is_empty() {
        record.parts.iter().map(|p| p.name.clone()).collect()
    } else {
        wanted.iter().map(|s| s.to_string()).collect()
    };
    let mut parts = Vec::new();
    for n in &names {
        let p = record.part(n).ok_or_else(|| {
            let have: Vec<_> = record.parts.iter().map(|p| p.name.as_str()).collect();
            Error::NotFound(format!(
                "snapshot {} has no component {n} (it has: {})",
                id.short(),
                have.join(", ")
            ))
        })?;
        parts.push(p.clone());
    }
    if progress.wants_totals() {
        for p in &parts {
            progress.add_total(p.summary.files, p.summary.bytes);
        }
    }
    let opts = RestoreOptions {
        overwrite: req.force,
        verify: req.verify,
    };
    let mut stats = RestoreStats::default();
    let mut warnings = Vec::new();
    let mut restored = Vec::new();
    let mut moved_aside = Vec::new();
    match &req.dest {
        RestoreDest::Target(dir) => {
            for p in &parts {
                let dest = dir.join(&p.name);
                if non_empty(&dest) && !req.force {
                    return Err(Error::Invalid(format!(
                        "{} is not empty; choose an empty --target or pass --force to overwrite",
                        dest.display()
                    )));
                }
            }
            crate::backend::LocalBackend::create_dir(dir)?;
            for p in &parts {
                let dest = dir.join(&p.name);
                // One restorer per part: hardlink groups never span parts,
                // so each component restores the same alone or together.
                let restorer = Restorer::new(repo, opts.clone(), progress);
                restorer.restore(&super::part_view(repo, &record, p)?, &dest)?;
                let (st, w) = restorer.finish()?;
                stats.add(&st);
                warnings.extend(w);
                restored.push((p.name.clone(), dest));
            }
        }
        RestoreDest::InPlace => {
            let stamp = chrono::Local::now().format("%Y%m%d_%H%M%S").to_string();
            for p in &parts {
                for pp in &p.paths {
                    let path = Path::new(&pp.path);
                    if !path.is_absolute() {
                        return Err(Error::Invalid(format!(
                            "component {} has no original path ({}: it was imported from an archive); restore it with --target",
                            p.name, pp.path
                        )));
                    }
                    if std::fs::symlink_metadata(path).is_ok() && !req.force {
                        return Err(Error::Invalid(format!(
                            "{} exists; pass --force to replace it (the current content is kept as {}.pre-restore-<time>)",
                            path.display(),
                            path.display()
                        )));
                    }
                }
            }
            for p in &parts {
                let root = Tree::decode(&repo.read_blob(&p.tree)?)?;
                // One restorer per part, finished before the renames: folder
                // metadata is applied while the copies still sit at their
                // temporary names, and hardlinks may span the part's paths.
                let restorer = Restorer::new(repo, opts.clone(), progress);
                let mut staged = Vec::new();
                for pp in &p.paths {
                    let path = PathBuf::from(&pp.path);
                    let node = root.get(pp.entry.as_bytes()).ok_or_else(|| {
                        Error::corrupt(format!("part {}", p.name), "root tree lacks an entry")
                    })?;
                    let tmp = unique_sibling(&path, &format!("opc-restore-{stamp}"));
                    staged.push((tmp.clone(), path));
                    if let Err(e) = restorer.restore(node, &tmp) {
                        remove_staged(&staged);
                        return Err(e);
                    }
                }
                let (st, w) = match restorer.finish() {
                    Ok(x) => x,
                    Err(e) => {
                        remove_staged(&staged);
                        return Err(e);
                    }
                };
                stats.add(&st);
                warnings.extend(w);
                for (tmp, path) in staged {
                    if std::fs::symlink_metadata(&path).is_ok() {
                        let aside = unique_sibling(&path, &format!("pre-restore-{stamp}"));
                        std::fs::rename(&path, &aside)
                            .map_err(|e| Error::io("moving aside", &path, e))?;
                        moved_aside.push((path.clone(), aside));
                    }
                    std::fs::rename(&tmp, &path)
                        .map_err(|e| Error::io("renaming into place", &path, e))?;
                    if let Some(parent) = path.parent() {
                        crate::backend::sync_dir(parent)?;
                    }
                    restored.push((p.name.clone(), path));
                }
            }
        }
    }
    Ok(RestoreReport {
        id,
        snapshot: record,
        restored,
        moved_aside,
        stats,
        warnings,
        hooks: Vec::new(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `<path>.<suffix>`, or `<path>.<suffix>-2`, `-3`, ... when taken: an
/// earlier restore's set-aside copy must never be overwritten.
fn unique_sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut k = 1;
    loop {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".{suffix}"));
        if k > 1 {
            s.push(format!("-{k}"));
        }
        let p = PathBuf::from(s);
        if std::fs::symlink_metadata(&p).is_err() {
            return p;
        }
        k += 1;
    }
}

/// Removes temporary copies after a failed in-place restore.
fn remove_staged(staged: &[(PathBuf, PathBuf)]) {
    for (tmp, _) in staged {
        let _ = match std::fs::symlink_metadata(tmp) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(tmp),
            Ok(_) => std::fs::remove_file(tmp),
            Err(_) => Ok(()),
        };
    }
}
