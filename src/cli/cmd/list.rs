//! Read-only listings: `snapshots`, `ls`, `stats`, `diff`.

use std::os::unix::ffi::OsStrExt;

use anyhow::Result;
use opc_store::snapshot::{self as snap, NodeKind};
use opc_store::util::human_bytes;

use crate::cli::args::{DiffArgs, Global, LsArgs, SnapshotsArgs};
use crate::cli::render::{mode_string, path as show_path, snapshot_time, time_ns};
use crate::cli::{exit, open_from, print_json};

/// `opc-store snapshots`.
pub fn snapshots(g: &Global, a: &SnapshotsArgs) -> Result<u8> {
    let (repo, cfg) = open_from(g)?;
    let every = snap::list(&repo)?;
    // Expiry under the standing policy (per-type retention days).
    let policy = opc_store::ops::policy::Policy {
        rules: Default::default(),
        retention_days: crate::cli::cmd::retention::retention_map(&repo, cfg.as_ref())?,
        override_days: Default::default(),
    };
    let verdicts =
        opc_store::ops::policy::apply(&every, &policy, chrono::Local::now().fixed_offset());
    let all: Vec<_> = every
        .into_iter()
        .zip(verdicts)
        .filter(|((_, s), _)| a.component.as_deref().is_none_or(|c| s.part(c).is_some()))
        .collect();
    if g.json {
        let v: Vec<_> = all
            .iter()
            .map(|((id, s), d)| {
                let mut v = serde_json::to_value(s).expect("serializes");
                v["id"] = id.to_hex().into();
                v["short_id"] = id.short().into();
                v["expires"] = d.expires.clone().into();
                v["retention_days_applied"] = d.retention_days.into();
                v["kept_by_policy"] = d.keep.into();
                v["keep_reasons"] = d.reasons.clone().into();
                v
            })
            .collect();
        return print_json(&v).map(|_| exit::OK);
    }
    println!(
        "{:<8}  {:<19}  {:<12}  {:<12}  {:>10}  {:>5}  tags",
        "id", "time", "type", "host", "size", "keep"
    );
    for ((id, s), _) in &all {
        println!(
            "{:<8}  {:<19}  {:<12}  {:<12}  {:>10}  {:>5}  {}",
            id.short(),
            snapshot_time(&s.time),
            s.kind,
            s.host,
            human_bytes(s.summary.bytes),
            s.retention_days
                .map(|d| format!("{d}d"))
                .unwrap_or_default(),
            s.tags.join(",")
        );
    }
    println!("{} snapshots", all.len());
    Ok(exit::OK)
}

/// `opc-store ls`.
pub fn ls(g: &Global, a: &LsArgs) -> Result<u8> {
    let (repo, _) = open_from(g)?;
    let p = a.path.as_ref().map(|p| p.as_os_str().as_bytes().to_vec());
    let (_, _, entries) = opc_store::ops::ls(&repo, &a.snapshot, p.as_deref())?;
    if g.json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "path": show_path(&e.path),
                    "type": e.node.kind,
                    "mode": format!("{:o}", e.node.mode),
                    "uid": e.node.uid,
                    "gid": e.node.gid,
                    "size": e.node.size,
                    "mtime_ns": e.node.mtime_ns,
                    "target": e.node.target.as_deref().map(show_path),
                })
            })
            .collect();
        return print_json(&v).map(|_| exit::OK);
    }
    for e in &entries {
        let link = match (&e.node.kind, &e.node.target) {
            (NodeKind::Symlink, Some(t)) => format!(" -> {}", show_path(t)),
            _ => String::new(),
        };
        println!(
            "{} {:>5}/{:<5} {:>12} {} {}{}",
            mode_string(&e.node),
            e.node.uid,
            e.node.gid,
            e.node.size,
            time_ns(e.node.mtime_ns),
            show_path(&e.path),
            link
        );
    }
    Ok(exit::OK)
}

/// `opc-store stats`.
pub fn stats(g: &Global) -> Result<u8> {
    let (repo, _) = open_from(g)?;
    let s = opc_store::ops::stats(&repo)?;
    if g.json {
        return print_json(&s).map(|_| exit::OK);
    }
    println!("snapshots:          {}", s.snapshots);
    println!(
        "logical size:       {} (all snapshots, as restored)",
        human_bytes(s.logical_bytes)
    );
    println!(
        "unique content:     {} (+ {} of folder listings) in {} blobs",
        human_bytes(s.unique_bytes),
        human_bytes(s.metadata_bytes),
        s.blobs
    );
    println!(
        "stored:             {} in {} packs",
        human_bytes(s.stored_bytes),
        s.packs
    );
    println!("dedup ratio:        {:.2}x", s.dedup_ratio);
    println!("compression ratio:  {:.2}x", s.compression_ratio);
    println!("total ratio:        {:.2}x", s.total_ratio);
    Ok(exit::OK)
}

/// `opc-store diff`.
pub fn diff(g: &Global, a: &DiffArgs) -> Result<u8> {
    let (repo, _) = open_from(g)?;
    let changes = opc_store::ops::diff(&repo, &a.a, &a.b)?;
    if g.json {
        let v: Vec<_> = changes
            .iter()
            .map(|c| serde_json::json!({"change": c.kind, "marker": c.kind.marker().to_string(), "path": show_path(&c.path)}))
            .collect();
        return print_json(&v).map(|_| exit::OK);
    }
    for c in &changes {
        println!("{}  {}", c.kind.marker(), show_path(&c.path));
    }
    if !g.quiet {
        eprintln!("{} changes", changes.len());
    }
    Ok(exit::OK)
}
