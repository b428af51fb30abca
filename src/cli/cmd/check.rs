//! `opc-store check`.

use anyhow::{Context, Result};
use opc_store::ops::{self, ReadData};
use opc_store::repo::LockKind;
use opc_store::util::human_bytes;

use crate::cli::args::{CheckArgs, DrillArgs, Global};
use crate::cli::progress::Bar;
use crate::cli::{exit, lock, open_from, print_json};

/// Most affected paths listed per problem in text output (all in JSON).
const SHOWN: usize = 20;

/// Checks the repository.
pub fn run(g: &Global, a: &CheckArgs) -> Result<u8> {
    let (repo, _) = open_from(g)?;
    // Shared: a prune must not delete packs under a running check.
    let _lock = lock(g, &repo, LockKind::Shared, "check")?;
    let read = match (&a.read_data, &a.read_data_subset) {
        (true, _) => ReadData::All,
        (false, Some(s)) => ReadData::parse_subset(s)?,
        (false, None) => ReadData::None,
    };
    let bar = Bar::new(g.quiet || g.json, "check");
    let r = ops::check(&repo, &read, &bar);
    bar.finish();
    let rep = r.context("checking")?;
    if g.json {
        let mut v = serde_json::to_value(&rep)?;
        v["ok"] = rep.ok().into();
        print_json(&v)?;
    } else {
        for n in &rep.notes {
            eprintln!("note: {n}");
        }
        for p in &rep.problems {
            println!("DAMAGE: {}", p.problem);
            if p.affected.is_empty() {
                println!("  no snapshot uses it");
            }
            for a in p.affected.iter().take(SHOWN) {
                println!("  snapshot {}: {}", &a.snapshot[..8], a.path);
            }
            if p.affected.len() > SHOWN {
                println!("  ... and {} more (see --json)", p.affected.len() - SHOWN);
            }
        }
        if !g.quiet {
            println!(
                "{}: {} snapshots, {} packs, {} blobs, {} trees checked{} in {:.1}s",
                if rep.ok() { "no damage" } else { "DAMAGED" },
                rep.snapshots,
                rep.packs,
                rep.blobs,
                rep.trees,
                if rep.packs_read > 0 {
                    format!(
                        "; {} packs ({}) read and verified",
                        rep.packs_read,
                        human_bytes(rep.bytes_read)
                    )
                } else {
                    String::new()
                },
                rep.seconds
            );
            if !rep.ok() {
                println!("next: `opc-store repair snapshots` keeps what can be read; see docs/RUNBOOK.md, \"When check finds damage\"");
            }
        }
    }
    Ok(if rep.ok() { exit::OK } else { exit::INTEGRITY })
}

/// Runs a restore drill.
pub fn drill(g: &Global, a: &DrillArgs) -> Result<u8> {
    let (repo, _) = open_from(g)?;
    let _lock = lock(g, &repo, LockKind::Shared, "drill")?;
    let req = ops::DrillRequest {
        part: a.component.clone(),
        scratch: a.scratch.clone(),
    };
    let bar = Bar::new(g.quiet || g.json, "drill");
    let r = ops::drill(&repo, &req, &bar);
    bar.finish();
    let rep = r.context("restore drill failed")?;
    if g.json {
        let mut v = serde_json::to_value(&rep)?;
        v["ok"] = rep.ok().into();
        print_json(&v)?;
    } else {
        for d in &rep.databases {
            println!(
                "{} {}: integrity_check {}",
                if d.result == "ok" { "ok  " } else { "FAIL" },
                d.path,
                d.result
            );
        }
        if !g.quiet {
            println!(
                "drill {}: snapshot {} ({}) restored to a temporary folder, {} files ({}) read back and verified, {} SQLite databases checked, in {:.1}s; folder removed",
                if rep.ok() { "passed" } else { "FAILED" },
                &rep.snapshot[..8],
                rep.components.join(", "),
                rep.files,
                human_bytes(rep.bytes),
                rep.databases.len(),
                rep.seconds
            );
        }
    }
    for w in &rep.warnings {
        eprintln!("warning: {w}");
    }
    Ok(if !rep.ok() {
        exit::INTEGRITY
    } else if rep.warnings.is_empty() {
        exit::OK
    } else {
        exit::WARNINGS
    })
}
