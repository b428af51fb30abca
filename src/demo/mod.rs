//! `opc-store demo`: the whole tool on generated One-Place-Chat data, end to
//! end, through the same configuration and operations users run.

mod compare;
pub mod dataset;

pub use compare::compare_trees;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::ops::{self, RestoreDest, RestoreRequest};
use crate::pipeline::Progress;
use crate::profile::{self, Config};
use crate::repo::{InitOptions, Repository};

/// One step of the demo, for the report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DemoStep {
    /// What was done.
    pub what: String,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Free-form figures.
    pub detail: String,
}

/// Everything the demo measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DemoReport {
    /// Working folder.
    pub dir: PathBuf,
    /// Logical size of the data set.
    pub data_bytes: u64,
    /// Steps in order.
    pub steps: Vec<DemoStep>,
    /// Bytes stored by the first snapshot.
    pub first_stored: u64,
    /// Bytes of files touched by the simulated day.
    pub changed_file_bytes: u64,
    /// Bytes stored by the second snapshot.
    pub second_stored: u64,
    /// Logical bytes over stored bytes after both snapshots.
    pub total_ratio: f64,
    /// Files of the restored chromadb component checked against the source.
    pub verified_files: u64,
}

const PASSWORD: &[u8] = b"opc-store demo password";

/// Runs the demo in `dir` (created; should be empty) at `scale`.
pub fn run(dir: &Path, scale: f64, progress: &dyn Progress) -> Result<DemoReport> {
    let mut steps = Vec::new();
    let mut step = |what: &str, t: Instant, detail: String| {
        steps.push(DemoStep {
            what: what.into(),
            seconds: t.elapsed().as_secs_f64(),
            detail,
        });
    };
    let data = dir.join("data");
    let t = Instant::now();
    dataset::generate(&data, scale)?;
    let data_bytes = du(&data);
    step(
        "generate data set",
        t,
        format!(
            "{} in {}",
            crate::util::human_bytes(data_bytes),
            data.display()
        ),
    );

    let cfg_path = dir.join("backup-config.yml");
    let yaml = format!(
        "repository: {repo}\nenvironment: demo\ncomponents:\n  chromadb:    {{ paths: [{d}/chromadb] }}\n  application: {{ paths: [{d}/application], exclude: ['*.tmp'] }}\n  volumes:     {{ paths: [{d}/volumes/prometheus, {d}/volumes/grafana] }}\n",
        repo = dir.join("repo").display(),
        d = data.display()
    );
    std::fs::write(&cfg_path, yaml).map_err(|e| Error::io("writing", &cfg_path, e))?;
    let cfg = Config::load(&cfg_path)?;

    let t = Instant::now();
    // The cache (index) stays inside the demo folder, removed with it.
    let repo = Repository::init_in(
        &cfg.repository,
        Some(PASSWORD),
        &InitOptions::default(),
        &dir.join("cache"),
    )?;
    step(
        "init encrypted repository",
        t,
        "XChaCha20-Poly1305, Argon2id key slot".into(),
    );

    let req = profile::snapshot_request(&cfg, "full")?;
    let t = Instant::now();
    let first = ops::snapshot(&repo, &req, progress)?;
    let s = &first.snapshot.summary;
    step(
        "snapshot full",
        t,
        format!(
            "{} files, stored {} for {}",
            s.files,
            crate::util::human_bytes(s.stored_bytes),
            crate::util::human_bytes(s.bytes)
        ),
    );

    let t = Instant::now();
    let changed = dataset::mutate(&data, scale)?;
    step(
        "simulate a day of changes",
        t,
        format!("{} of files touched", crate::util::human_bytes(changed)),
    );

    let t = Instant::now();
    let second = ops::snapshot(&repo, &req, progress)?;
    let s2 = &second.snapshot.summary;
    step(
        "snapshot full again",
        t,
        format!(
            "read {} of {} files, stored {} new",
            s2.files_read,
            s2.files,
            crate::util::human_bytes(s2.stored_bytes)
        ),
    );

    let target = dir.join("restore");
    let t = Instant::now();
    let rr = ops::restore(
        &repo,
        &RestoreRequest {
            snapshot: "latest".into(),
            parts: vec!["chromadb".into()],
            dest: RestoreDest::Target(target.clone()),
            force: false,
            verify: true,
            run_hooks: false,
            hooks: Default::default(),
            part_hooks: Default::default(),
        },
        progress,
    )?;
    let verified = compare_trees(&data.join("chromadb"), &target.join("chromadb"))?;
    step(
        "restore chromadb and compare",
        t,
        format!(
            "{} files ({}), identical to the source",
            verified,
            crate::util::human_bytes(rr.stats.bytes)
        ),
    );
    let stats = ops::stats(&repo)?;
    Ok(DemoReport {
        dir: dir.to_path_buf(),
        data_bytes,
        steps,
        first_stored: s.stored_bytes,
        changed_file_bytes: changed,
        second_stored: s2.stored_bytes,
        total_ratio: stats.total_ratio,
        verified_files: verified,
    })
}

fn du(p: &Path) -> u64 {
    crate::pipeline::scan_totals(&[p], &Default::default()).1
}
