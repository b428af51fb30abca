//! `opc-store copy`, and the copy `run` makes to `copy_to:`.

use std::time::Duration;

use anyhow::{Context, Result};
use opc_store::id::Id;
use opc_store::ops::{self, CopyReport, CopyRequest, ForgetRequest, PruneOptions};
use opc_store::pipeline::NoProgress;
use opc_store::profile::operations::CopyTo;
use opc_store::profile::Config;
use opc_store::repo::{LockKind, Repository};
use opc_store::snapshot as snap;
use opc_store::util::human_bytes;

use crate::cli::args::{CopyArgs, Global};
use crate::cli::cmd::retention::retention_map;
use crate::cli::progress::Bar;
use crate::cli::{exit, load_config, lock, open_repo, open_repo_as, print_json, repo_path, Secret};

/// Copies snapshots from `--from` to `--to` (by default the repository of
/// `--repo` / the configuration).
pub fn run(g: &Global, a: &CopyArgs) -> Result<u8> {
    let to = match &a.to {
        Some(p) => p.clone(),
        None => {
            let cfg = if g.repo.is_some() {
                None
            } else {
                load_config(g)?
            };
            repo_path(g, cfg.as_ref())?
        }
    };
    let (src, _) = open_repo_as(g, &a.from, Secret::From(a.from_password_file.as_deref()))
        .context("opening the source repository (password from --from-password-file, OPC_FROM_PASSWORD_FILE or OPC_FROM_PASSWORD)")?;
    let dst = open_repo(g, &to).context("opening the target repository")?;
    let _src_lock = lock(g, &src, LockKind::Shared, "copy (source)")?;
    let _dst_lock = lock(g, &dst, LockKind::Shared, "copy (target)")?;
    let all = snap::list(&src)?;
    let mut ids = Vec::new();
    for spec in &a.snapshots {
        let (id, _) = snap::resolve(all.clone(), spec, a.component.as_deref())
            .with_context(|| format!("in the source repository {}", a.from.display()))?;
        ids.push(id);
    }
    let req = CopyRequest {
        ids,
        kind: a.kind.clone(),
        part: a.component.clone(),
        catch_up: false,
    };
    let bar = Bar::new(g.quiet || g.json, "copy");
    let r = ops::copy(&src, &dst, &req, &bar);
    bar.finish();
    let rep = r.with_context(|| format!("copying to {}", to.display()))?;
    if g.json {
        print_json(&rep)?;
    } else if !g.quiet {
        for c in &rep.copied {
            println!(
                "copied {} -> {}  {:<12} {}  ({} sent)",
                c.source.short(),
                c.target.short(),
                c.kind,
                c.time,
                human_bytes(c.bytes_sent)
            );
        }
        println!("{}", summary(&rep));
    }
    Ok(exit::OK)
}

/// One line about a copy.
pub fn summary(rep: &CopyReport) -> String {
    format!(
        "{} snapshots copied, {} already there; {} blobs ({}) sent, {} deduplicated, {} of files reused from earlier copies, in {:.1}s",
        rep.copied.len(),
        rep.skipped.len(),
        rep.blobs_sent,
        human_bytes(rep.bytes_sent),
        human_bytes(rep.bytes_deduped),
        human_bytes(rep.bytes_reused),
        rep.seconds
    )
}

/// `run`'s copy of snapshot `id` of `src` (and of any newer of its type
/// the target misses) to the configuration's `copy_to:` repository, under
/// shared locks on both (waiting up to `wait`); then, with
/// `copy_to.retention`, the run's `forget` there, and a prune when `prune`.
/// Returns the copy's id there and the bytes sent.
#[allow(clippy::too_many_arguments)]
pub fn after_run(
    g: &Global,
    cfg: &Config,
    target: &CopyTo,
    src: &Repository,
    id: Id,
    forget: &ForgetRequest,
    prune: bool,
    wait: Duration,
) -> Result<Option<(String, u64)>> {
    let path = &target.repository;
    let dst = open_repo_as(g, path, Secret::File(target.password_file.as_deref()))?.0;
    let quiet = |_: &opc_store::repo::LockInfo| {};
    let rep = {
        let _s = src.lock(LockKind::Shared, "run (copy source)", wait, &quiet)?;
        let _d = dst.lock(LockKind::Shared, "run (copy)", wait, &quiet)?;
        let req = CopyRequest {
            ids: vec![id],
            catch_up: true,
            ..Default::default()
        };
        ops::copy(src, &dst, &req, &NoProgress)?
    };
    if target.retention {
        let l = dst.lock(LockKind::Exclusive, "run (copy retention)", wait, &quiet)?;
        let mut freq = forget.clone();
        freq.policy.retention_days = retention_map(&dst, Some(cfg))?;
        ops::forget(&dst, &l, &freq, chrono::Local::now().fixed_offset())?;
        if prune {
            ops::prune(&dst, &l, &PruneOptions::default(), &NoProgress)?;
        }
    }
    let here = rep.copied.iter().map(|x| (x.source, x.target));
    let there = rep.skipped.iter().map(|x| (x.source, x.target));
    Ok(here
        .chain(there)
        .find(|x| x.0 == id)
        .map(|x| (x.1.to_hex(), rep.bytes_sent)))
}
