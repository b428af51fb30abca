//! `verify FILE.tar.gz`: gzip and tar structure, safe member paths, and
//! every file against the SHA-256 in the manifest, without a repository.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::manifest::read_loose;
use super::reader::{for_each_member, open_archive, MemberKind};
use crate::error::Result;
use crate::pipeline::Progress;

/// The outcome of verifying an archive.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Archive path.
    pub archive: String,
    /// Its top folder.
    pub backup_name: String,
    /// Whether a manifest of ours (with digests) was found.
    pub has_digests: bool,
    /// Components (top folders below the backup folder).
    pub components: Vec<String>,
    /// Members read.
    pub members: u64,
    /// Bytes of file content read.
    pub bytes: u64,
    /// Files whose SHA-256 matched the manifest.
    pub verified_files: u64,
    /// What is wrong; empty when the archive is sound.
    pub problems: Vec<String>,
    /// What could not be checked, and why (not failures).
    pub notes: Vec<String>,
    /// Symlinks whose target leaves the folder they would be restored
    /// under (absolute, or too many `..`): data, but `restore FILE`
    /// refuses them.
    pub outward_symlinks: Vec<String>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl VerifyReport {
    /// Whether the archive passed.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the archive at `path`. Structural damage is reported as a
/// problem, not an error; errors are reserved for not being able to start.
pub fn verify_archive(path: &Path, progress: &dyn Progress) -> Result<VerifyReport> {
    let started = Instant::now();
    let mut rep = VerifyReport {
        archive: path.display().to_string(),
        ..Default::default()
    };
    let input = open_archive(path)?;
    let mut digests: HashMap<Vec<u8>, [u8; 32]> = HashMap::new();
    let mut manifest: Option<Vec<u8>> = None;
    let mut first = true;
    let mut manifest_first = false;
    let walked = for_each_member(input, &rep.archive.clone(), |m, r| {
        rep.members += 1;
        if m.rel.is_empty() {
            return Ok(());
        }
        if first {
            manifest_first = m.rel == b"manifest.json";
            first = false;
        }
        if let Some(c) = m.rel.split(|&b| b == b'/').next() {
            let c = String::from_utf8_lossy(c).into_owned();
            if c != "manifest.json" && !rep.components.contains(&c) {
                rep.components.push(c);
            }
        }
        if let MemberKind::Symlink(t) = &m.kind {
            if !super::reader::link_stays_inside(&m.rel, t) {
                rep.outward_symlinks.push(format!(
                    "{} -> {}",
                    String::from_utf8_lossy(&m.rel),
                    String::from_utf8_lossy(t)
                ));
            }
        }
        match &m.kind {
            MemberKind::File => {
                let mut sha = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut n_total = 0u64;
                let mut keep = Vec::new();
                loop {
                    let n = r.read(&mut buf).map_err(|e| {
                        crate::error::Error::corrupt(
                            format!("archive {}", rep.archive),
                            format!(
                                "{} cannot be read ({e}); it is truncated or damaged",
                                String::from_utf8_lossy(&m.rel)
                            ),
                        )
                    })?;
                    if n == 0 {
                        break;
                    }
                    sha.update(&buf[..n]);
                    if m.rel == b"manifest.json" && keep.len() < (256 << 20) {
                        keep.extend_from_slice(&buf[..n]);
                    }
                    n_total += n as u64;
                    progress.advance(0, n as u64);
                }
                rep.bytes += n_total;
                if m.rel == b"manifest.json" {
                    manifest = Some(keep);
                } else {
                    digests.insert(m.rel.clone(), sha.finalize().into());
                }
                progress.advance(1, 0);
            }
            // Hardlinks share their first file's manifest entry.
            MemberKind::Hardlink(t) if !digests.contains_key(t) => {
                rep.problems.push(format!(
                    "hardlink {} points at {}, which is not an earlier file",
                    String::from_utf8_lossy(&m.rel),
                    String::from_utf8_lossy(t)
                ));
            }
            _ => {}
        }
        Ok(())
    });
    match walked {
        Ok(top) => rep.backup_name = top,
        Err(e) => {
            rep.problems.push(e.to_string());
            rep.seconds = started.elapsed().as_secs_f64();
            return Ok(rep);
        }
    }
    let full = manifest
        .as_deref()
        .and_then(read_loose)
        .and_then(|l| l.full);
    match (&manifest, &full) {
        (None, _) => rep.notes.push(format!(
            "no {}/manifest.json: the structure is sound, but there are no checksums to check the content against",
            rep.backup_name
        )),
        (Some(_), None) => rep.notes.push(
            "the manifest has no checksums (written by the legacy scripts): structure checked only".into(),
        ),
        (Some(_), Some(_)) if !manifest_first => rep.problems.push(
            "manifest.json is not the first member (`tar -xzf X name/manifest.json -O` must find it without reading the whole archive)".into(),
        ),
        _ => {}
    }
    if let Some(full) = full {
        rep.has_digests = true;
        if full.backup_name != rep.backup_name {
            rep.problems.push(format!(
                "the manifest names the backup {}, the archive's folder is {}",
                full.backup_name, rep.backup_name
            ));
        }
        let mut listed = std::collections::HashSet::new();
        for f in &full.files {
            let p = f.path_bytes().unwrap_or_default();
            let shown = String::from_utf8_lossy(&p).into_owned();
            match digests.get(&p) {
                None => rep
                    .problems
                    .push(format!("{shown} is in the manifest but not in the archive")),
                Some(d) if hex::encode(d) != f.sha256 => rep.problems.push(format!(
                    "{shown} does not match its SHA-256 in the manifest"
                )),
                Some(_) => rep.verified_files += 1,
            }
            listed.insert(p);
        }
        for p in digests.keys() {
            if !listed.contains(p) {
                rep.problems.push(format!(
                    "{} is in the archive but not in the manifest",
                    String::from_utf8_lossy(p)
                ));
            }
        }
    }
    rep.seconds = started.elapsed().as_secs_f64();
    Ok(rep)
}
