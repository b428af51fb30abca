//! `opc-store repair index`.

use anyhow::{Context, Result};

use crate::cli::args::{Global, RepairCommand};
use crate::cli::{exit, open_from, print_json};

/// Runs a repair.
pub fn run(g: &Global, r: &RepairCommand) -> Result<u8> {
    match r {
        RepairCommand::Index => {
            let (repo, _) = open_from(g)?;
            let _lock = crate::cli::lock(
                g,
                &repo,
                opc_store::repo::LockKind::Exclusive,
                "repair index",
            )?;
            let rep = repo.rebuild_index().context("rebuilding the index")?;
            if g.json {
                print_json(&serde_json::json!({
                    "packs": rep.packs, "blobs": rep.blobs, "snapshots": rep.snapshots,
                    "bad_packs": rep.bad_packs.iter().map(|(p, e)| serde_json::json!({"pack": p, "error": e})).collect::<Vec<_>>(),
                }))?;
            } else if !g.quiet {
                println!(
                    "index rebuilt: {} packs, {} blobs, {} snapshots",
                    rep.packs, rep.blobs, rep.snapshots
                );
            }
            for (p, e) in &rep.bad_packs {
                eprintln!("unreadable pack {p}: {e}");
            }
            Ok(if rep.bad_packs.is_empty() {
                exit::OK
            } else {
                exit::INTEGRITY
            })
        }
        RepairCommand::Snapshots => {
            let (repo, _) = open_from(g)?;
            let _lock = crate::cli::lock(
                g,
                &repo,
                opc_store::repo::LockKind::Exclusive,
                "repair snapshots",
            )?;
            let bar = crate::cli::progress::Bar::new(g.quiet || g.json, "repair");
            let r = opc_store::ops::repair_snapshots(&repo, &_lock, &bar);
            bar.finish();
            let rep = r.context("repairing snapshots")?;
            if g.json {
                print_json(&rep)?;
            } else if !g.quiet {
                println!(
                    "{} damaged blobs found, {} healed from intact copies",
                    rep.damaged_blobs, rep.healed_blobs
                );
                for s in &rep.snapshots {
                    println!(
                        "snapshot {} rewritten as {} (tagged repaired) without {} unreadable paths:",
                        &s.original[..8],
                        &s.repaired[..8],
                        s.removed.len()
                    );
                    for p in &s.removed {
                        println!("  {p}");
                    }
                }
                if !rep.snapshots.is_empty() {
                    println!("the originals are kept; `opc-store forget <id>` them once the repaired ones are checked");
                }
            }
            Ok(exit::OK)
        }
    }
}
