//! `opc-store run TYPE [RETENTION_DAYS]` (the legacy `scheduled-backup.sh`)
//! and `opc-store status`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use opc_store::notify::{self, Event};
use opc_store::ops::{self, policy::Policy, ForgetRequest, PruneOptions};
use opc_store::profile::operations::{
    append_log, metrics_text, write_atomic, Outcome, RunRecord, RunState,
};
use opc_store::profile::{self, Config};
use opc_store::repo::LockKind;
use opc_store::util::human_bytes;

use crate::cli::args::{Global, RunArgs, StatusArgs};
use crate::cli::progress::Bar;
use crate::cli::{exit, load_config, open_repo, print_json, repo_path};

/// Exit code of `status` when a type is overdue or its last run failed.
pub const ALERT: u8 = exit::ALERT;

struct Taken {
    snapshot: String,
    bytes_added: u64,
    size: u64,
    warnings: Vec<String>,
    forgotten: u64,
    pruned: Option<u64>,
    repository_size: u64,
    hooks: Vec<opc_store::source::HookRun>,
    /// The copy's id in `copy_to:` and the bytes sent, when it succeeded.
    copied: Option<(String, u64)>,
}

/// The unattended job.
pub fn run(g: &Global, a: &RunArgs) -> Result<u8> {
    let started = Instant::now();
    let kind = a
        .kind
        .clone()
        .or_else(|| std::env::var("BACKUP_TYPE").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "full".into());
    let Some(cfg) = load_config(g)? else {
        bail!("no configuration: run needs --config FILE or OPC_CONFIG (see docs/CONFIG.md)");
    };
    let mut ops_cfg = cfg.operations.clone();
    if let Some(f) = &a.log_file {
        ops_cfg.log_file = f.clone();
    }
    // From here on every failure is logged, recorded and notified.
    let result = retention_days(a).and_then(|days| take(g, &cfg, &kind, days));
    let repo_size = result.as_ref().map(|t| t.repository_size).ok();
    let (outcome, error) = match &result {
        Ok(t) if t.warnings.is_empty() => (Outcome::Success, None),
        Ok(t) => (
            Outcome::Warning,
            Some(format!(
                "{} warnings, e.g. {}",
                t.warnings.len(),
                t.warnings[0]
            )),
        ),
        Err(e) => (Outcome::Failure, Some(format!("{e:#}"))),
    };
    let t = result.as_ref().ok();
    let record = RunRecord {
        time: chrono::Local::now().fixed_offset().to_rfc3339(),
        kind: kind.clone(),
        outcome,
        snapshot: t.map(|t| t.snapshot.clone()),
        bytes_added: t.map_or(0, |t| t.bytes_added),
        size: t.map_or(0, |t| t.size),
        repository_size: repo_size,
        duration_secs: started.elapsed().as_secs_f64(),
        forgotten: t.map_or(0, |t| t.forgotten),
        pruned_bytes: t.and_then(|t| t.pruned),
        error: error.clone(),
        warnings: t.map_or(0, |t| t.warnings.len() as u64),
        host: opc_store::hostname(),
        hooks: t.map(|t| t.hooks.clone()).unwrap_or_default(),
        copied_to: t.and_then(|t| t.copied.as_ref().map(|c| c.0.clone())),
        copy_bytes_sent: t.and_then(|t| t.copied.as_ref().map(|c| c.1)),
    };
    // Bookkeeping and notifications never fail the backup itself.
    let mut problems = Vec::new();
    if let Err(e) = append_log(&ops_cfg.log_file, &record) {
        problems.push(format!("log: {e}"));
    }
    match RunState::record(&ops_cfg.state_file, &record) {
        Ok(st) => {
            if let Some(m) = &ops_cfg.metrics_file {
                let due = profile::status::overdue_at(&cfg, &st, &profile::cron::next_after);
                if let Err(e) = write_atomic(m, metrics_text(&st, &due).as_bytes()) {
                    problems.push(format!("metrics: {e}"));
                }
            }
        }
        Err(e) => problems.push(format!("state: {e}")),
    }
    let mut event = Event::new(outcome, &cfg.environment, &kind);
    event.snapshot_id = record.snapshot.clone();
    event.bytes_added = record.bytes_added;
    event.size = record.size;
    event.duration_secs = record.duration_secs;
    event.error = error;
    event.log_path = Some(ops_cfg.log_file.display().to_string());
    for v in &cfg.unset_variables {
        problems.push(format!("{v}; the notifier using it is likely to fail"));
    }
    let sent = notify::notify(&profile::notifiers(&cfg), &event);
    for n in &sent {
        if let Err(e) = &n.result {
            problems.push(format!(
                "{} notification failed after {} attempt(s): {e}",
                n.channel, n.attempts
            ));
        }
    }
    for p in &problems {
        eprintln!("warning: {p}");
    }
    if g.json {
        print_json(
            &serde_json::json!({"record": record, "notifications": sent.len(), "problems": problems}),
        )?;
    } else if !g.quiet {
        match &record.outcome {
            Outcome::Failure => {}
            _ => println!(
                "run {kind}: snapshot {} ({}, {} added), {} forgotten{}{} in {:.1}s",
                record.snapshot.as_deref().map_or("-", |s| &s[..8]),
                human_bytes(record.size),
                human_bytes(record.bytes_added),
                record.forgotten,
                record
                    .pruned_bytes
                    .map(|b| format!(", prune freed {}", human_bytes(b)))
                    .unwrap_or_default(),
                record
                    .copied_to
                    .as_deref()
                    .zip(record.copy_bytes_sent)
                    .map(|(c, b)| format!(", copied as {} ({} sent)", &c[..8], human_bytes(b)))
                    .unwrap_or_default(),
                record.duration_secs
            ),
        }
    }
    match result {
        Ok(t) if t.warnings.is_empty() => Ok(exit::OK),
        Ok(t) => {
            for w in &t.warnings {
                eprintln!("warning: {w}");
            }
            Ok(exit::WARNINGS)
        }
        Err(e) => Err(e),
    }
}

/// The retention argument, else `RETENTION_DAYS`, else none (the
/// configuration's).
fn retention_days(a: &RunArgs) -> Result<Option<u32>> {
    if let Some(d) = a.retention_days {
        return Ok(Some(d));
    }
    match std::env::var("RETENTION_DAYS") {
        Ok(v) if !v.trim().is_empty() => {
            Ok(Some(v.trim().parse().with_context(|| {
                format!("RETENTION_DAYS={v:?} is not a number of days")
            })?))
        }
        _ => Ok(None),
    }
}

fn take(g: &Global, cfg: &Config, kind: &str, retention: Option<u32>) -> Result<Taken> {
    let mut req = profile::snapshot_request(cfg, kind)?;
    if let Some(d) = retention {
        req.retention_days = Some(d);
    }
    let path = repo_path(g, Some(cfg))?;
    if crate::cli::is_encrypted(g, &path)?
        && std::env::var_os("OPC_PASSWORD").is_none()
        && g.password_file.is_none()
    {
        bail!("run never prompts: set OPC_PASSWORD_FILE (or OPC_PASSWORD) for the repository password");
    }
    let repo = open_repo(g, &path)?;
    let wait = if g.lock_wait.is_zero() {
        Duration::from_secs(cfg.operations.lock_wait_seconds)
    } else {
        g.lock_wait
    };
    let quiet = |_: &opc_store::repo::LockInfo| {};
    let rep = {
        let _l = repo.lock(LockKind::Shared, "run", wait, &quiet)?;
        ops::snapshot(&repo, &req, &opc_store::pipeline::NoProgress)
            .context("taking the snapshot")?
    };
    // Retention of this type, then prune when it is due.
    let l = repo.lock(LockKind::Exclusive, "run (retention)", wait, &quiet)?;
    let freq = ForgetRequest {
        policy: Policy {
            rules: Default::default(),
            retention_days: crate::cli::cmd::retention::retention_map(&repo, Some(cfg))?,
            // As `scheduled-backup.sh TYPE DAYS`: DAYS applies to every
            // snapshot of the type, not only to the one taken now.
            override_days: retention
                .map(|d| (kind.to_string(), d))
                .into_iter()
                .collect(),
        },
        kind: Some(kind.to_string()),
        ids: vec![],
        dry_run: false,
    };
    let f = ops::forget(&repo, &l, &freq, chrono::Local::now().fixed_offset())?;
    let state = RunState::load(&cfg.operations.state_file).unwrap_or_default();
    let due = state
        .last_prune
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_none_or(|t| {
            chrono::Local::now().fixed_offset() - t
                >= chrono::Duration::days(cfg.operations.prune_every_days.into())
        });
    let pruned = if due {
        let bar = Bar::new(true, "prune");
        Some(ops::prune(&repo, &l, &PruneOptions::default(), &bar)?.bytes_freed)
    } else {
        None
    };
    drop(l);
    let repository_size = repo.index().packs()?.iter().map(|p| p.1).sum();
    let mut warnings = rep.warnings;
    let mut copied_to = None;
    if let Some(target) = &cfg.copy_to {
        // The snapshot is safe here: a failed copy is a warning, and the
        // next run catches up.
        let prune = pruned.is_some();
        match crate::cli::cmd::copy::after_run(g, cfg, target, &repo, rep.id, &freq, prune, wait) {
            Ok(c) => copied_to = c,
            Err(e) => warnings.insert(
                0,
                format!(
                    "copy to {} failed: {e:#}; the snapshot is kept here and the next run copies it",
                    target.repository.display()
                ),
            ),
        }
    }
    Ok(Taken {
        snapshot: rep.id.to_hex(),
        bytes_added: rep.snapshot.summary.stored_bytes,
        size: rep.snapshot.summary.bytes,
        warnings,
        forgotten: f.removed.len() as u64,
        pruned,
        repository_size,
        hooks: rep.hooks,
        copied: copied_to,
    })
}

/// `status`.
pub fn status(g: &Global, a: &StatusArgs) -> Result<u8> {
    let Some(cfg) = load_config(g)? else {
        bail!("no configuration: status needs --config FILE or OPC_CONFIG");
    };
    let now = match &a.now {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("--now {t:?} is not RFC 3339"))?
            .with_timezone(&chrono::Local),
        None => chrono::Local::now(),
    };
    let state = RunState::load(&cfg.operations.state_file)?;
    let st = profile::status::status(&cfg, &state, now, &profile::cron::next_after);
    let alert = st.iter().any(|s| s.overdue || s.failing);
    if g.json {
        print_json(&serde_json::json!({"ok": !alert, "types": st}))?;
    } else {
        println!(
            "{:<12} {:<27} {:>10} {:<27} {:<17} state",
            "type", "last success (age)", "size", "last failure (age)", "next run"
        );
        let when = |r: &Option<RunRecord>| match r {
            Some(r) => {
                let age = chrono::DateTime::parse_from_rfc3339(&r.time)
                    .map(|t| crate::cli::render::age((now.fixed_offset() - t).num_seconds()))
                    .unwrap_or_default();
                format!("{} ({age})", crate::cli::render::minute_time(&r.time))
            }
            None => "never".into(),
        };
        for s in &st {
            println!(
                "{:<12} {:<27} {:>10} {:<27} {:<17} {}",
                s.kind,
                when(&s.last_success),
                s.last_success
                    .as_ref()
                    .map(|r| human_bytes(r.size))
                    .unwrap_or_default(),
                when(&s.last_failure),
                s.next_run
                    .as_deref()
                    .map(crate::cli::render::minute_time)
                    .unwrap_or_else(|| "-".into()),
                match (s.failing, s.overdue) {
                    (true, true) => "FAILING, OVERDUE",
                    (true, false) => "FAILING",
                    (false, true) => "OVERDUE",
                    _ => "ok",
                }
            );
        }
    }
    Ok(if alert { ALERT } else { exit::OK })
}
