//! `forget`: removes snapshot records by policy or by id. Data stays until
//! `prune`; a snapshot record is deleted from the repository first, then
//! from the local cache, so a crash leaves at worst a cached record that
//! the next open drops.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use super::policy::{apply, Decision, Policy};
use crate::error::Result;
use crate::repo::{RepoLock, Repository};
use crate::snapshot as snap;

/// What to forget.
#[derive(Clone, Debug, Default)]
pub struct ForgetRequest {
    /// The policy applied to every snapshot.
    pub policy: Policy,
    /// Only snapshots of this type.
    pub kind: Option<String>,
    /// Forget exactly these snapshots (id prefixes) instead of applying
    /// the policy.
    pub ids: Vec<String>,
    /// Only report.
    pub dry_run: bool,
}

/// What forget decided and did.
#[derive(Clone, Debug, Serialize)]
pub struct ForgetReport {
    /// One verdict per snapshot considered, oldest first.
    pub decisions: Vec<Decision>,
    /// Ids removed (empty with `dry_run`).
    pub removed: Vec<String>,
    /// Whether nothing was changed.
    pub dry_run: bool,
}

/// Forgets under the exclusive lock, with `now` as the reference time.
pub fn forget(
    repo: &Repository,
    lock: &RepoLock<'_>,
    req: &ForgetRequest,
    now: DateTime<FixedOffset>,
) -> Result<ForgetReport> {
    lock.require_exclusive()?;
    repo.sync_snapshot_cache()?;
    let mut all = snap::list(repo)?;
    if let Some(k) = &req.kind {
        all.retain(|(_, s)| &s.kind == k);
    }
    let decisions = if req.ids.is_empty() {
        apply(&all, &req.policy, now)
    } else {
        let mut chosen = Vec::new();
        for spec in &req.ids {
            chosen.push(snap::resolve(all.clone(), spec, None)?.0);
        }
        all.iter()
            .filter(|(id, _)| chosen.contains(id))
            .map(|(id, s)| Decision {
                id: id.to_hex(),
                kind: s.kind.clone(),
                time: s.time.clone(),
                keep: false,
                reasons: vec![],
                expires: None,
                retention_days: s.retention_days,
            })
            .collect()
    };
    let mut removed = Vec::new();
    if !req.dry_run {
        for d in decisions.iter().filter(|d| !d.keep) {
            let id = crate::id::Id::from_hex(&d.id).expect("hex from our own id");
            repo.backend().delete(&format!("snapshots/{}", d.id))?;
            repo.index().remove_snapshot(&id)?;
            removed.push(d.id.clone());
        }
    }
    Ok(ForgetReport {
        decisions,
        removed,
        dry_run: req.dry_run,
    })
}
