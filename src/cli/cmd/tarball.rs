//! `opc-store export`, `import`, `verify`, and `restore FILE.tar.gz`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use opc_store::ops::tarball::{
    self, already_imported, parse_backup_name, ExportRequest, ExtractRequest, ImportRequest,
};
use opc_store::snapshot as snap;
use opc_store::util::human_bytes;

use crate::cli::args::{ExportArgs, Global, ImportArgs, RestoreArgs, VerifyArgs};
use crate::cli::progress::Bar;
use crate::cli::{exit, open_from, print_json};

/// Whether a restore argument names an archive rather than a snapshot.
pub fn is_archive(arg: &str) -> bool {
    arg.ends_with(".tar.gz") || arg.ends_with(".tgz") || Path::new(arg).is_file()
}

/// Exports a snapshot.
pub fn export(g: &Global, a: &ExportArgs) -> Result<u8> {
    let (repo, _) = open_from(g)?;
    let _lock = crate::cli::lock(g, &repo, opc_store::repo::LockKind::Shared, "export")?;
    let req = ExportRequest {
        snapshot: a.snapshot.clone(),
        parts: a.components.clone(),
        gzip_level: a.gzip_level,
    };
    let plan = tarball::plan_export(&repo, &req).context("exporting")?;
    let file_name = format!("{}.tar.gz", plan.backup_name);
    let to_stdout = a.output.as_deref() == Some(Path::new("-"));
    let bar = Bar::new(g.quiet || g.json, "export");
    let (report, dest) = if to_stdout {
        let r = tarball::write_export(&repo, &plan, std::io::stdout(), &bar);
        bar.finish();
        let (rep, mut out) = r.context("exporting")?;
        out.flush().context("writing to stdout")?;
        (rep, None)
    } else {
        let dest = match &a.output {
            Some(f) => f.clone(),
            None => a
                .output_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("."))
                .join(&file_name),
        };
        if dest.exists() {
            bail!(
                "{} exists; remove it or choose another --output-dir / -o",
                dest.display()
            );
        }
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Written under a temporary name (mode 0600) and renamed once
        // durable: a crash never leaves a half archive under the real name.
        let tmp = tempfile::Builder::new()
            .prefix(".opc-export-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        let file = tmp.as_file().try_clone()?;
        let r = tarball::write_export(&repo, &plan, file, &bar);
        bar.finish();
        let (rep, file) = r.context("exporting")?;
        file.sync_all()
            .with_context(|| format!("syncing {}", dest.display()))?;
        tmp.persist_noclobber(&dest)
            .map_err(|e| e.error)
            .with_context(|| format!("moving the archive to {}", dest.display()))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
        (rep, Some(dest))
    };
    if g.json {
        let mut v = serde_json::to_value(&report)?;
        v["path"] = serde_json::json!(dest);
        print_json(&v)?;
    } else if !g.quiet {
        let mb = report.bytes as f64 / 1e6 / report.seconds.max(1e-9);
        eprintln!(
            "exported snapshot {} ({}) as {}: {} files ({}), {} dirs, {} links and specials, {} hardlinks, {} sparse; {} compressed in {:.1}s ({mb:.0} MB/s)",
            &report.snapshot_id[..8],
            report.kind,
            dest.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "stdout".into()),
            report.files,
            human_bytes(report.bytes),
            report.dirs,
            report.others,
            report.hardlinks,
            report.sparse_files,
            human_bytes(report.archive_bytes),
            report.seconds,
        );
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    Ok(if report.warnings.is_empty() {
        exit::OK
    } else {
        exit::WARNINGS
    })
}

/// Imports one archive or a folder of them.
pub fn import(g: &Global, a: &ImportArgs) -> Result<u8> {
    let (repo, cfg) = open_from(g)?;
    let _lock = crate::cli::lock(g, &repo, opc_store::repo::LockKind::Shared, "import")?;
    let mut req = ImportRequest {
        environment: cfg.map(|c| c.environment).unwrap_or_default(),
        tags: a.tags.clone(),
        ..Default::default()
    };
    if let Some(t) = &a.time {
        req.time = Some(chrono::DateTime::parse_from_rfc3339(t).with_context(|| {
            format!("--time {t:?} is not RFC 3339 (e.g. 2024-12-01T02:00:00+00:00)")
        })?);
    }
    let files = match (&a.file, &a.all) {
        (Some(f), _) => vec![f.clone()],
        (None, Some(dir)) => archives_in(dir)?,
        (None, None) => bail!("give an archive, or --all DIR"),
    };
    let mut reports = Vec::new();
    let mut failed = 0;
    let mut skipped = Vec::new();
    let mut code = exit::OK;
    let existing = snap::list(&repo)?;
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if a.all.is_some() && already_imported(&existing, &name) {
            skipped.push(name);
            continue;
        }
        let bar = Bar::new(g.quiet || g.json, "import");
        let r = tarball::import(&repo, f, &req, &bar);
        bar.finish();
        match r {
            Ok(rep) => {
                if !g.json && !g.quiet {
                    println!(
                        "imported {} as snapshot {} ({}, {}): {} files ({}), {} new; {} files checked against the manifest, in {:.1}s",
                        rep.archive,
                        &rep.snapshot_id[..8],
                        rep.kind,
                        rep.time,
                        rep.summary.files,
                        human_bytes(rep.summary.bytes),
                        human_bytes(rep.summary.stored_bytes),
                        rep.verified_files,
                        rep.seconds
                    );
                }
                for w in &rep.warnings {
                    eprintln!("warning: {w}");
                }
                if !rep.warnings.is_empty() {
                    code = code.max(exit::WARNINGS);
                }
                reports.push(rep);
            }
            Err(e) if a.all.is_some() => {
                // One bad archive must not stop the others.
                let e = anyhow::Error::new(e).context(format!("importing {}", f.display()));
                eprintln!("error: {e:#}");
                code = code.max(exit::code_for(&e));
                failed += 1;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("importing {}", f.display())))
            }
        }
    }
    if g.json {
        print_json(&serde_json::json!({
            "imported": reports,
            "skipped": skipped,
            "failed": failed,
        }))?;
    } else if a.all.is_some() && !g.quiet {
        println!(
            "{} imported, {} already imported and skipped, {} failed",
            reports.len(),
            skipped.len(),
            failed
        );
    }
    Ok(code)
}

/// Archives in `dir`, oldest first (by the time in their names, else mtime).
fn archives_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut found = Vec::new();
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".tar.gz") || name.ends_with(".tgz")) || !e.file_type()?.is_file() {
            continue;
        }
        let when = match parse_backup_name(&name) {
            Some((_, t)) => t.timestamp(),
            None => e
                .metadata()?
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        };
        found.push((when, name, e.path()));
    }
    found.sort();
    Ok(found.into_iter().map(|x| x.2).collect())
}

/// Verifies an archive.
pub fn verify(g: &Global, a: &VerifyArgs) -> Result<u8> {
    let bar = Bar::new(g.quiet || g.json, "verify");
    let r = tarball::verify_archive(&a.file, &bar);
    bar.finish();
    let rep = r.with_context(|| format!("verifying {}", a.file.display()))?;
    if g.json {
        let mut v = serde_json::to_value(&rep)?;
        v["ok"] = serde_json::json!(rep.ok());
        print_json(&v)?;
    } else {
        for n in &rep.notes {
            eprintln!("note: {n}");
        }
        for p in &rep.problems {
            println!("FAIL: {p}");
        }
        if rep.ok() && !g.quiet {
            println!(
                "ok: {} ({}): {} members, {} of content, {} files match the manifest's SHA-256, in {:.1}s",
                a.file.display(),
                rep.components.join(", "),
                rep.members,
                human_bytes(rep.bytes),
                rep.verified_files,
                rep.seconds
            );
        }
    }
    Ok(if rep.ok() { exit::OK } else { exit::INTEGRITY })
}

/// `restore FILE.tar.gz --target DIR`.
pub fn restore_archive(g: &Global, a: &RestoreArgs) -> Result<u8> {
    let Some(target) = &a.target else {
        bail!("restoring from an archive needs --target DIR (the archive does not say reliably where its data lived)");
    };
    let req = ExtractRequest {
        parts: a.components.clone(),
        target: target.clone(),
        force: a.force,
        verify: !a.no_verify,
    };
    let file = PathBuf::from(&a.snapshot);
    let bar = Bar::new(g.quiet || g.json, "restore");
    let r = tarball::extract(&file, &req, &bar);
    bar.finish();
    let rep = r.with_context(|| format!("restoring from {}", file.display()))?;
    if g.json {
        print_json(&rep)?;
    } else if !g.quiet {
        println!(
            "restored {} from {}: {} files ({}), {} dirs, {} links and specials, {} hardlinks in {:.1}s{}",
            rep.components.join(", "),
            file.display(),
            rep.files,
            human_bytes(rep.bytes),
            rep.dirs,
            rep.others,
            rep.hardlinks,
            rep.seconds,
            if rep.verified_files > 0 {
                format!("; {} files matched the manifest before writing", rep.verified_files)
            } else {
                String::new()
            }
        );
        for c in &rep.components {
            println!("  {c} -> {}", target.join(c).display());
        }
    }
    for w in &rep.warnings {
        eprintln!("warning: {w}");
    }
    Ok(if rep.warnings.is_empty() {
        exit::OK
    } else {
        exit::WARNINGS
    })
}
