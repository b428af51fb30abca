//! `snapshot --dry-run` and `--show-sanitized`: what sanitization redacted
//! or left out, per component.

use anyhow::Result;
use opc_store::ops::SnapshotRequest;
use opc_store::snapshot::{PartSanitize, SanitizeAction};
use opc_store::util::human_bytes;

use crate::cli::args::Global;
use crate::cli::{exit, print_json};

/// Prints the sanitized files of each part (path, action, keys or reason).
pub fn print_list<'a>(parts: impl Iterator<Item = (&'a str, Option<&'a PartSanitize>)>) {
    for (name, s) in parts {
        match s {
            None => println!("{name}: sanitization off"),
            Some(s) if s.entries.is_empty() => println!("{name}: nothing to sanitize"),
            Some(s) => {
                println!("{name}:");
                for e in &s.entries {
                    match e.action {
                        SanitizeAction::Redacted => {
                            println!("  redacted  {}  keys: {}", e.path, e.keys.join(", "))
                        }
                        SanitizeAction::Excluded => println!(
                            "  excluded  {}  ({})",
                            e.path,
                            e.reason.as_deref().unwrap_or("")
                        ),
                    }
                }
            }
        }
    }
}

/// One line counting redacted and excluded files, if any.
pub fn summary_line<'a>(parts: impl Iterator<Item = Option<&'a PartSanitize>>) -> Option<String> {
    let (mut red, mut exc) = (0, 0);
    for e in parts.flatten().flat_map(|s| &s.entries) {
        match e.action {
            SanitizeAction::Redacted => red += 1,
            SanitizeAction::Excluded => exc += 1,
        }
    }
    (red + exc > 0).then(|| {
        format!(
            "  sanitized: {red} files redacted, {exc} left out (list them with --show-sanitized)"
        )
    })
}

/// `snapshot --dry-run`: walks the sources, stores nothing.
pub fn dry_run(g: &Global, req: &SnapshotRequest, show: bool) -> Result<u8> {
    let parts = opc_store::ops::dry_run(req)?;
    let warnings: Vec<&String> = parts.iter().flat_map(|p| &p.preview.warnings).collect();
    if g.json {
        let v: Vec<_> = parts
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "files": p.preview.files,
                    "dirs": p.preview.dirs,
                    "bytes": p.preview.bytes,
                    "sanitize": p.preview.sanitize,
                })
            })
            .collect();
        print_json(&serde_json::json!({
            "dry_run": true,
            "type": req.kind,
            "parts": v,
            "warnings": warnings,
        }))?;
    } else if !g.quiet {
        for p in &parts {
            println!(
                "{}: would capture {} files, {} dirs, {}",
                p.name,
                p.preview.files,
                p.preview.dirs,
                human_bytes(p.preview.bytes)
            );
        }
        if show {
            print_list(
                parts
                    .iter()
                    .map(|p| (p.name.as_str(), p.preview.sanitize.as_ref())),
            );
        } else if let Some(l) = summary_line(parts.iter().map(|p| p.preview.sanitize.as_ref())) {
            println!("{l}");
        }
        println!("dry run: nothing was stored");
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    Ok(if warnings.is_empty() {
        exit::OK
    } else {
        exit::WARNINGS
    })
}
