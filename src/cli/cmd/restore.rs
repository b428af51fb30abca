//! `opc-store restore`.

use anyhow::{Context, Result};
use opc_store::ops::{RestoreDest, RestoreRequest};
use opc_store::util::human_bytes;

use crate::cli::args::{Global, RestoreArgs};
use crate::cli::progress::Bar;
use crate::cli::{exit, open_from, print_json};

/// Restores.
pub fn run(g: &Global, a: &RestoreArgs) -> Result<u8> {
    if crate::cli::cmd::tarball::is_archive(&a.snapshot) {
        return crate::cli::cmd::tarball::restore_archive(g, a);
    }
    let (repo, cfg) = open_from(g)?;
    let _lock = crate::cli::lock(g, &repo, opc_store::repo::LockKind::Shared, "restore")?;
    let req = RestoreRequest {
        snapshot: a.snapshot.clone(),
        parts: a.components.clone(),
        dest: match &a.target {
            Some(t) => RestoreDest::Target(t.clone()),
            None => RestoreDest::InPlace,
        },
        force: a.force,
        verify: a.verify,
        run_hooks: (a.in_place || a.hooks) && !a.no_hooks,
        hooks: cfg.as_ref().map(|c| c.hooks.to_set()).unwrap_or_default(),
        part_hooks: cfg
            .iter()
            .flat_map(|c| c.components.iter())
            .map(|(n, c)| (n.clone(), c.hooks.to_set()))
            .collect(),
    };
    let bar = Bar::new(g.quiet || g.json, "restore");
    let report = opc_store::ops::restore(&repo, &req, &bar);
    bar.finish();
    let report = report.context("restoring")?;
    if g.json {
        print_json(&serde_json::json!({
            "id": report.id.to_hex(),
            "short_id": report.id.short(),
            "restored": report.restored.iter().map(|(c, p)| serde_json::json!({"component": c, "path": p})).collect::<Vec<_>>(),
            "moved_aside": report.moved_aside.iter().map(|(f, t)| serde_json::json!({"from": f, "to": t})).collect::<Vec<_>>(),
            "stats": report.stats,
            "warnings": report.warnings,
            "hooks": report.hooks,
            "seconds": report.seconds,
        }))?;
    } else if !g.quiet {
        let st = &report.stats;
        println!(
            "restored snapshot {}: {} files ({}), {} dirs, {} links and specials, {} hardlinks in {:.1}s{}",
            report.id.short(),
            st.files,
            human_bytes(st.bytes),
            st.dirs,
            st.others,
            st.hardlinks,
            report.seconds,
            if st.verified > 0 { format!("; {} files read back and verified", st.verified) } else { String::new() }
        );
        for (c, p) in &report.restored {
            println!("  {c} -> {}", p.display());
        }
        for h in &report.hooks {
            println!("  {}", crate::cli::render::hook_run(h));
        }
        for (f, t) in &report.moved_aside {
            println!(
                "  previous content of {} kept at {}",
                f.display(),
                t.display()
            );
        }
    }
    if !report.warnings.is_empty() {
        eprintln!("completed with {} warnings", report.warnings.len());
        return Ok(exit::WARNINGS);
    }
    Ok(exit::OK)
}
