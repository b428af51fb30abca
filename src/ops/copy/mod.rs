//! `copy`: snapshots from one repository into another (an off-site copy).
//!
//! The two repositories have different keys, so a blob id of the source
//! means nothing in the target (ids are keyed BLAKE3, and the FastCDC gear
//! table is keyed too). Every file is therefore read from the source
//! (decrypted, decompressed, checked against its id) and cut again with the
//! target's chunker, exactly as `snapshot` would cut the same bytes there:
//! a copied snapshot deduplicates against earlier copies and against the
//! target's own snapshots of the same data. Only chunks the target's index
//! lacks (asked in batches) are sealed and sent. Trees are re-encoded with
//! the new ids; the record keeps everything else and names its `original`.
//!
//! Work already done is not repeated: a subtree or file met before in this
//! run, or present in the newest earlier copy from the same host (of the
//! same type, and of any type; found by walking that copy beside its
//! source), is mapped without reading its data. Write order as for `snapshot` (`docs/FORMAT.md` §10):
//! a copied snapshot's record is written only once its packs are durable.

mod mapper;

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::pipeline::Progress;
use crate::repo::Repository;
use crate::snapshot::{self as snap, Snapshot};

use mapper::Mapper;

/// Which snapshots of the source to copy.
#[derive(Clone, Debug, Default)]
pub struct CopyRequest {
    /// Exactly these source snapshots; empty: every snapshot passing the
    /// filters below.
    pub ids: Vec<Id>,
    /// Only snapshots of this type.
    pub kind: Option<String>,
    /// Only snapshots containing this part.
    pub part: Option<String>,
    /// With `ids`: also every snapshot of the same type newer than the
    /// newest copy of that type in the target, so that a scheduled copy
    /// after a failed one catches up. A type the target has no copy of yet
    /// adds nothing.
    pub catch_up: bool,
}

/// One snapshot written into the target.
#[derive(Clone, Debug, Serialize)]
pub struct CopiedSnapshot {
    /// Its id in the source.
    pub source: Id,
    /// Its new id in the target.
    pub target: Id,
    /// Snapshot type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Snapshot time (RFC 3339), as in the source.
    pub time: String,
    /// Blobs stored anew in the target for it.
    pub blobs_sent: u64,
    /// Their sealed bytes, as stored.
    pub bytes_sent: u64,
}

/// A snapshot the target already holds.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedSnapshot {
    /// Its id in the source.
    pub source: Id,
    /// The copy already in the target.
    pub target: Id,
    /// Snapshot type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Snapshot time (RFC 3339).
    pub time: String,
}

/// What a copy did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CopyReport {
    /// Snapshots written into the target, oldest first.
    pub copied: Vec<CopiedSnapshot>,
    /// Snapshots skipped because the target already holds them.
    pub skipped: Vec<SkippedSnapshot>,
    /// Blobs stored anew in the target.
    pub blobs_sent: u64,
    /// Their sealed bytes, as stored (what crossed to the target).
    pub bytes_sent: u64,
    /// Their plaintext bytes.
    pub raw_bytes_sent: u64,
    /// Chunks read and found already stored in the target.
    pub blobs_deduped: u64,
    /// Their plaintext bytes.
    pub bytes_deduped: u64,
    /// Packs written to the target.
    pub packs: u64,
    /// Files read from the source and cut again.
    pub files_read: u64,
    /// Their bytes.
    pub bytes_read: u64,
    /// Files mapped from an earlier copy without being read.
    pub files_reused: u64,
    /// Their bytes.
    pub bytes_reused: u64,
    /// Folders mapped whole from an earlier copy without being read.
    pub trees_reused: u64,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// The id a snapshot is known by across copies: the first capture's.
fn origin(id: &Id, s: &Snapshot) -> Id {
    s.original.unwrap_or(*id)
}

/// Copies the snapshots `req` selects from `src` to `dst`, oldest first,
/// skipping those `dst` already holds. The caller holds shared locks on
/// both repositories.
pub fn copy(
    src: &Repository,
    dst: &Repository,
    req: &CopyRequest,
    progress: &dyn Progress,
) -> Result<CopyReport> {
    let started = Instant::now();
    if src.config().id == dst.config().id {
        return Err(Error::Invalid(
            "the source and the target are the same repository; give another --to".into(),
        ));
    }
    let sources = snap::list(src)?;
    for id in &req.ids {
        if !sources.iter().any(|(s, _)| s == id) {
            return Err(Error::NotFound(format!(
                "no snapshot {} in the source; see `opc-store snapshots` there",
                id.short()
            )));
        }
    }
    let mut targets = snap::list(dst)?;
    let mut ids = req.ids.clone();
    if req.catch_up {
        for (id, s) in &sources {
            let last = targets
                .iter()
                .filter(|(_, t)| t.original.is_some() && t.kind == s.kind)
                .map(|(_, t)| t.datetime())
                .max();
            let wanted = req
                .ids
                .iter()
                .any(|w| sources.iter().any(|(i, x)| i == w && x.kind == s.kind));
            if wanted && last.is_some_and(|l| s.datetime() > l) && !ids.contains(id) {
                ids.push(*id);
            }
        }
    }
    let selected: Vec<&(Id, Snapshot)> = sources
        .iter()
        .filter(|(id, s)| {
            (ids.is_empty() || ids.contains(id))
                && req.kind.as_ref().is_none_or(|k| &s.kind == k)
                && req.part.as_deref().is_none_or(|p| s.part(p).is_some())
        })
        .collect();
    // Origin -> the target snapshot holding it.
    let mut present: HashMap<Id, Id> = targets.iter().map(|(t, s)| (origin(t, s), *t)).collect();
    let by_origin: HashMap<Id, &(Id, Snapshot)> =
        sources.iter().map(|x| (origin(&x.0, &x.1), x)).collect();
    let mut report = CopyReport::default();
    let mapper = Mapper::new(src, dst, progress);
    for (id, s) in selected {
        let o = origin(id, s);
        if let Some(t) = present.get(&o) {
            report.skipped.push(SkippedSnapshot {
                source: *id,
                target: *t,
                kind: s.kind.clone(),
                time: s.time.clone(),
            });
            continue;
        }
        // The newest earlier copies from the same host, of the same type
        // and of any type, whose sources are still here: their trees map
        // unchanged folders and files without reading them.
        let copies = targets.iter().rev().filter_map(|(_, ts)| {
            let from = by_origin.get(&ts.original?)?;
            (ts.host == s.host).then_some((&from.1, ts))
        });
        let same_kind = copies.clone().find(|(_, ts)| ts.kind == s.kind);
        for (ps, ts) in same_kind.into_iter().chain(copies.take(1)) {
            for part in &s.parts {
                if let (Some(p), Some(t)) = (ps.part(&part.name), ts.part(&part.name)) {
                    mapper.seed(p.tree, t.tree);
                }
            }
        }
        progress.add_total(0, s.summary.bytes);
        let before = mapper.stats();
        let mut record = s.clone();
        record.original = Some(o);
        for part in &mut record.parts {
            part.tree = mapper.root(part.tree)?;
        }
        mapper.flush()?;
        crate::util::fault_point("copy-before-record");
        let new_id = super::snapshot::commit_record(dst, &record)?;
        let after = mapper.stats();
        report.copied.push(CopiedSnapshot {
            source: *id,
            target: new_id,
            kind: s.kind.clone(),
            time: s.time.clone(),
            blobs_sent: after.new_blobs - before.new_blobs,
            bytes_sent: after.new_stored_bytes - before.new_stored_bytes,
        });
        present.insert(o, new_id);
        targets.push((new_id, record));
    }
    let st = mapper.stats();
    report.blobs_sent = st.new_blobs;
    report.bytes_sent = st.new_stored_bytes;
    report.raw_bytes_sent = st.new_raw_bytes;
    report.blobs_deduped = st.dup_blobs;
    report.bytes_deduped = st.dup_raw_bytes;
    report.packs = st.packs;
    let c = mapper.counters();
    report.files_read = c.files_read;
    report.bytes_read = c.bytes_read;
    report.files_reused = c.files_reused;
    report.bytes_reused = c.bytes_reused;
    report.trees_reused = c.trees_reused;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
