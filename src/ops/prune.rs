//! `prune`: frees the space of data no snapshot references.
//!
//! Mark: every tree of every snapshot is walked (each distinct tree once)
//! and the blobs it references are collected. Sweep: packs with no used
//! blob are deleted; packs whose unused share exceeds the threshold are
//! repacked (see `repo::repack` for the crash-safe order). Memory is a set
//! of blob ids (about 80 bytes per distinct blob), never file data.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};
use crate::pipeline::Progress;
use crate::repo::{RepoLock, Repository};
use crate::snapshot::{self as snap, read_list, NodeKind, Tree};

/// How to prune.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Only report what would be done.
    pub dry_run: bool,
    /// Repack packs with more than this fraction (0..1) of unused bytes.
    pub max_unused: f64,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            dry_run: false,
            max_unused: 0.10,
        }
    }
}

/// What prune found and did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Snapshots whose data was kept.
    pub snapshots: u64,
    /// Packs before.
    pub packs: u64,
    /// Bytes in packs before.
    pub bytes: u64,
    /// Blobs referenced by snapshots.
    pub used_blobs: u64,
    /// Stored bytes of referenced blobs.
    pub used_bytes: u64,
    /// Indexed blobs no snapshot references.
    pub unused_blobs: u64,
    /// Packs deleted whole (nothing in them used).
    pub packs_deleted: u64,
    /// Packs rewritten to drop their unused blobs.
    pub packs_repacked: u64,
    /// Bytes copied while repacking.
    pub bytes_repacked: u64,
    /// Bytes freed (or that would be, with `dry_run`).
    pub bytes_freed: u64,
    /// Unused bytes left in packs below the repack threshold.
    pub bytes_unused_kept: u64,
    /// Interrupted writers' temporary files removed.
    pub temp_files_removed: u64,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Prunes under the exclusive lock `lock`.
pub fn prune(
    repo: &Repository,
    lock: &RepoLock<'_>,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    lock.require_exclusive()?;
    let started = Instant::now();
    // The repository may have changed between opening and locking.
    repo.sync_packs()?;
    repo.sync_snapshot_cache()?;
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let used = mark(repo, &mut report)?;
    let packs = repo.index().pack_contents()?;
    report.packs = packs.len() as u64;
    report.bytes = packs.iter().map(|p| p.1).sum();
    let mut used_in: HashMap<Id, u64> = HashMap::new();
    for (id, loc) in repo.index().all_blobs()? {
        if used.contains(&id) {
            *used_in.entry(loc.pack).or_default() += loc.stored_share();
            report.used_blobs += 1;
            report.used_bytes += loc.stored_share();
        } else {
            report.unused_blobs += 1;
        }
    }
    let mut delete = Vec::new();
    let mut repack = Vec::new();
    for (pack, size, content) in &packs {
        let u = used_in.get(pack).copied().unwrap_or(0);
        // Unused = whatever the pack stores that no used row points at:
        // blobs nobody references, and copies another pack was indexed
        // for first (concurrent writers storing the same data). Header and
        // trailer are not waste.
        let unused = content.saturating_sub(u);
        if u == 0 {
            delete.push(*pack);
            report.bytes_freed += size;
        } else if *size > 0 && unused as f64 / *size as f64 > opts.max_unused {
            repack.push(*pack);
            report.bytes_freed += unused;
            report.bytes_repacked += u;
        } else {
            report.bytes_unused_kept += unused;
        }
    }
    delete.sort();
    repack.sort();
    report.packs_deleted = delete.len() as u64;
    report.packs_repacked = repack.len() as u64;
    if !opts.dry_run {
        progress.add_total(delete.len() as u64 + repack.len() as u64, 0);
        if !repack.is_empty() || !delete.is_empty() {
            let st = repo.repack(&repack, &delete, &used, &|| progress.advance(1, 0))?;
            report.bytes_repacked = st.bytes_copied;
        }
        report.temp_files_removed = repo.remove_stale_temp_files()?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Every blob id referenced by a snapshot. Refuses to go on when a
/// referenced blob is missing: pruning a damaged repository could make
/// things worse, so `check` and `repair` come first.
fn mark(repo: &Repository, report: &mut PruneReport) -> Result<HashSet<Id>> {
    let mut used: HashSet<Id> = HashSet::new();
    let snaps = snap::list(repo)?;
    report.snapshots = snaps.len() as u64;
    let missing = |id: &Id, s: &Id| {
        Error::corrupt(
            format!("snapshot {}", s.short()),
            format!(
                "it references blob {} which is not stored; nothing was pruned. Run `opc-store repair index`, and if the blob stays missing, forget that snapshot first",
                id.short()
            ),
        )
    };
    for (sid, s) in &snaps {
        let mut stack: Vec<Id> = s.parts.iter().map(|p| p.tree).collect();
        while let Some(tree_id) = stack.pop() {
            if !used.insert(tree_id) {
                continue; // this subtree was walked already
            }
            if repo.blob_kind(&tree_id)? != Some(BlobKind::Tree) {
                return Err(missing(&tree_id, sid));
            }
            let tree = Tree::decode(&repo.read_blob(&tree_id)?)?;
            for n in tree.nodes {
                if let Some(st) = n.subtree {
                    stack.push(st);
                }
                if n.kind == NodeKind::File {
                    for id in &n.content {
                        if used.insert(*id) && !repo.has_blob(id)? {
                            return Err(missing(id, sid));
                        }
                    }
                    // A list already marked was walked with the file that
                    // first named it: its blobs are marked.
                    for list in &n.lists {
                        if !used.insert(*list) {
                            continue;
                        }
                        if repo.blob_kind(list)? != Some(BlobKind::Tree) {
                            return Err(missing(list, sid));
                        }
                        for id in read_list(repo, list)? {
                            if used.insert(id) && !repo.has_blob(&id)? {
                                return Err(missing(&id, sid));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(used)
}
