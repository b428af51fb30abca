//! `opc-store snapshot [TYPE]`.

use anyhow::{bail, Context, Result};
use opc_store::profile;
use opc_store::util::human_bytes;

use crate::cli::args::{Global, SnapshotArgs};
use crate::cli::progress::Bar;
use crate::cli::{exit, load_config, open_repo, print_json, repo_path};

/// Takes the snapshot.
pub fn run(g: &Global, a: &SnapshotArgs) -> Result<u8> {
    let Some(cfg) = load_config(g)? else {
        bail!("no configuration: pass --config FILE or set OPC_CONFIG (see docs/CONFIG.md); the components to back up are listed there");
    };
    let mut req = profile::snapshot_request(&cfg, &a.kind)?;
    if let Some(d) = a.retention_days {
        req.retention_days = Some(d);
    }
    req.tags = a.tags.clone();
    if let Some(t) = &a.time {
        req.time = Some(chrono::DateTime::parse_from_rfc3339(t).with_context(|| {
            format!("--time {t:?} is not RFC 3339 (e.g. 2024-12-01T02:00:00+00:00)")
        })?);
    }
    if a.dry_run {
        return crate::cli::cmd::sanitized::dry_run(g, &req, a.show_sanitized);
    }
    let path = repo_path(g, Some(&cfg))?;
    let repo = open_repo(g, &path)?;
    let _lock = crate::cli::lock(g, &repo, opc_store::repo::LockKind::Shared, "snapshot")?;
    let bar = Bar::new(g.quiet || g.json, "snapshot");
    let report = opc_store::ops::snapshot(&repo, &req, &bar);
    bar.finish();
    let report = report.context("taking the snapshot")?;
    let s = &report.snapshot.summary;
    if g.json {
        print_json(&serde_json::json!({
            "id": report.id.to_hex(),
            "short_id": report.id.short(),
            "snapshot": report.snapshot,
            "parents": report.parents.iter().map(|(p, id)| (p.clone(), id.to_hex())).collect::<std::collections::BTreeMap<_, _>>(),
            "warnings": report.warnings,
            "hooks": report.hooks,
            "seconds": report.seconds,
        }))?;
    } else if !g.quiet {
        println!(
            "snapshot {} ({}) saved: {} files, {} dirs, {} in {:.1}s",
            report.id.short(),
            a.kind,
            s.files,
            s.dirs,
            human_bytes(s.bytes),
            report.seconds
        );
        println!(
            "  read {} files ({}), {} unchanged; added {} new data, {} stored",
            s.files_read,
            human_bytes(s.bytes_read),
            s.files - s.files_read,
            human_bytes(s.new_bytes),
            human_bytes(s.stored_bytes)
        );
        if s.sqlite_captured > 0 {
            println!(
                "  {} SQLite databases copied consistently through SQLite's backup API",
                s.sqlite_captured
            );
        }
        for h in &report.hooks {
            println!("  {}", crate::cli::render::hook_run(h));
        }
        let parts = &report.snapshot.parts;
        if a.show_sanitized {
            crate::cli::cmd::sanitized::print_list(
                parts.iter().map(|p| (p.name.as_str(), p.sanitize.as_ref())),
            );
        } else if let Some(l) =
            crate::cli::cmd::sanitized::summary_line(parts.iter().map(|p| p.sanitize.as_ref()))
        {
            println!("{l}");
        }
    }
    if !report.warnings.is_empty() {
        eprintln!(
            "completed with {} warnings (see above); the snapshot holds everything else",
            report.warnings.len()
        );
        return Ok(exit::WARNINGS);
    }
    Ok(exit::OK)
}
