//! `opc-store forget`, `prune` and `unlock`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use opc_store::ops::policy::{parse_span, KeepRules, Policy};
use opc_store::ops::{ForgetRequest, PruneOptions, PruneReport};
use opc_store::profile::{self, Config};
use opc_store::repo::{LockKind, Repository};
use opc_store::snapshot as snap;
use opc_store::util::human_bytes;

use crate::cli::args::{ForgetArgs, Global, PruneArgs, UnlockArgs};
use crate::cli::progress::Bar;
use crate::cli::render::snapshot_time;
use crate::cli::{exit, lock, open_from, print_json};

/// Retention days per type present in the repository: the configuration's,
/// else the legacy defaults.
pub fn retention_map(repo: &Repository, cfg: Option<&Config>) -> Result<BTreeMap<String, u32>> {
    let mut m = BTreeMap::new();
    for (_, s) in snap::list(repo)? {
        let days = match cfg {
            Some(c) => c.retention_days(&s.kind),
            None => profile::defaults::retention_days(&s.kind),
        };
        m.insert(s.kind.clone(), days);
    }
    Ok(m)
}

/// `forget`.
pub fn forget(g: &Global, a: &ForgetArgs) -> Result<u8> {
    let (repo, cfg) = open_from(g)?;
    let _lock = lock(g, &repo, LockKind::Exclusive, "forget")?;
    let now = match &a.now {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("--now {t:?} is not RFC 3339"))?,
        None => chrono::Local::now().fixed_offset(),
    };
    let rules = KeepRules {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
        within: a.keep_within.as_deref().map(parse_span).transpose()?,
        tags: a.keep_tags.clone(),
    };
    let req = ForgetRequest {
        policy: Policy {
            rules,
            retention_days: retention_map(&repo, cfg.as_ref())?,
            override_days: Default::default(),
        },
        kind: a.kind.clone(),
        ids: a.ids.clone(),
        dry_run: a.dry_run,
    };
    let rep = opc_store::ops::forget(&repo, &_lock, &req, now).context("forgetting")?;
    let pruned = if a.prune && !a.dry_run {
        Some(run_prune(g, &repo, &_lock, a.dry_run, a.max_unused)?)
    } else {
        None
    };
    if g.json {
        let mut v = serde_json::to_value(&rep)?;
        if let Some(p) = &pruned {
            v["prune"] = serde_json::to_value(p)?;
        }
        print_json(&v)?;
        return Ok(exit::OK);
    }
    if !g.quiet {
        for d in &rep.decisions {
            let verdict = if d.keep {
                format!("keep    ({})", d.reasons.join("; "))
            } else if a.dry_run {
                "would remove".to_string()
            } else {
                "removed".to_string()
            };
            println!(
                "{}  {}  {:<12}  {verdict}",
                &d.id[..8],
                snapshot_time(&d.time),
                d.kind
            );
        }
        let gone = rep.decisions.iter().filter(|d| !d.keep).count();
        println!(
            "{} snapshots {}, {} kept{}",
            gone,
            if a.dry_run {
                "would be removed"
            } else {
                "removed"
            },
            rep.decisions.len() - gone,
            if a.prune || a.dry_run {
                ""
            } else {
                "; run `opc-store prune` to free their space"
            }
        );
        if let Some(p) = &pruned {
            print_prune(p);
        }
    }
    Ok(exit::OK)
}

/// `prune`.
pub fn prune(g: &Global, a: &PruneArgs) -> Result<u8> {
    let (repo, _) = open_from(g)?;
    let l = lock(g, &repo, LockKind::Exclusive, "prune")?;
    let rep = run_prune(g, &repo, &l, a.dry_run, a.max_unused)?;
    if g.json {
        print_json(&rep)?;
    } else if !g.quiet {
        print_prune(&rep);
    }
    Ok(exit::OK)
}

fn run_prune(
    g: &Global,
    repo: &Repository,
    l: &opc_store::repo::RepoLock<'_>,
    dry_run: bool,
    max_unused_pct: f64,
) -> Result<PruneReport> {
    if !(0.0..=100.0).contains(&max_unused_pct) {
        anyhow::bail!("--max-unused must be a percentage between 0 and 100");
    }
    let opts = PruneOptions {
        dry_run,
        max_unused: max_unused_pct / 100.0,
    };
    let bar = Bar::new(g.quiet || g.json, "prune");
    let r = opc_store::ops::prune(repo, l, &opts, &bar);
    bar.finish();
    r.context("pruning")
}

fn print_prune(p: &PruneReport) {
    let verb = if p.dry_run { "would free" } else { "freed" };
    println!(
        "{} packs ({}) hold {} blobs used by {} snapshots ({}) and {} unused blobs",
        p.packs,
        human_bytes(p.bytes),
        p.used_blobs,
        p.snapshots,
        human_bytes(p.used_bytes),
        p.unused_blobs
    );
    println!(
        "{verb} {}: {} packs deleted, {} repacked ({} copied); {} unused left in packs under the threshold{}",
        human_bytes(p.bytes_freed),
        p.packs_deleted,
        p.packs_repacked,
        human_bytes(p.bytes_repacked),
        human_bytes(p.bytes_unused_kept),
        if p.temp_files_removed > 0 {
            format!("; {} stale temporary files removed", p.temp_files_removed)
        } else {
            String::new()
        }
    );
}

/// `unlock`.
pub fn unlock(g: &Global, a: &UnlockArgs) -> Result<u8> {
    let (repo, _) = open_from(g)?;
    let removed = repo.remove_locks(a.remove_all)?;
    let left = repo.locks()?;
    if g.json {
        print_json(&serde_json::json!({
            "removed": removed,
            "remaining": left.iter().map(|(_, i)| i).collect::<Vec<_>>(),
        }))?;
    } else if !g.quiet {
        for r in &removed {
            println!("removed {}", r.describe());
        }
        for (_, l) in &left {
            println!(
                "still locked: {} (pass --remove-all if it is not running)",
                l.describe()
            );
        }
        if removed.is_empty() && left.is_empty() {
            println!("no locks");
        }
    }
    Ok(exit::OK)
}
