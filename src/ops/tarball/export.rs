//! `export`: a snapshot as a legacy `opc_backup_<type>_<time>.tar.gz`.
//!
//! Two passes over the content, no temporary copy: the first hashes every
//! file (SHA-256 for the manifest, which comes first in the archive) and
//! finds holes, in parallel over files; the second streams the members
//! through a parallel gzip writer. Memory holds the entry list (metadata
//! only) and a bounded window of blobs, whatever the data size.

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use gzp::deflate::Gzip;
use gzp::par::compress::ParCompressBuilder;
use gzp::ZWriter;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::manifest::{Manifest, ManifestComponent, ManifestFile, ManifestPath, MANIFEST_FORMAT};
use super::name::backup_name;
use super::writer::{HoleFinder, Regions, TarWriter};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::pipeline::Progress;
use crate::repo::Repository;
use crate::snapshot::{self as snap, for_each_segment, Node, NodeKind, Snapshot, Tree};

/// Zero runs at least this long are written as holes.
const MIN_HOLE: u64 = 64 * 1024;
/// Blobs read ahead in parallel while a file is written.
const READ_AHEAD: usize = 8;

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    /// `latest` or a snapshot id prefix.
    pub snapshot: String,
    /// Components to export; empty means all of the snapshot's.
    pub parts: Vec<String>,
    /// gzip level, 1 (fastest) to 9 (smallest).
    pub gzip_level: u32,
}

/// A resolved export: what will be written and under which name.
#[derive(Clone, Debug)]
pub struct ExportPlan {
    /// Snapshot exported.
    pub id: Id,
    /// Its record.
    pub snapshot: Snapshot,
    /// `full` or the one component exported.
    pub kind: String,
    /// `opc_backup_<type>_<YYYYMMDD_HHMMSS>`: file stem and top folder.
    pub backup_name: String,
    parts: Vec<String>,
    gzip_level: u32,
}

/// Counters of an export.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExportReport {
    /// Archive name without `.tar.gz`.
    pub backup_name: String,
    /// Snapshot id.
    pub snapshot_id: String,
    /// `full` or the component.
    #[serde(rename = "type")]
    pub kind: String,
    /// Regular files written (hardlinks excluded).
    pub files: u64,
    /// Folders.
    pub dirs: u64,
    /// Symlinks, FIFOs, devices.
    pub others: u64,
    /// Hardlink members.
    pub hardlinks: u64,
    /// Files written as sparse members.
    pub sparse_files: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Bytes of the compressed archive.
    pub archive_bytes: u64,
    /// Entries left out, one line each.
    pub warnings: Vec<String>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Resolves the snapshot and names the archive.
pub fn plan_export(repo: &Repository, req: &ExportRequest) -> Result<ExportPlan> {
    let wanted: Vec<&str> = req.parts.iter().map(String::as_str).collect();
    let (id, snapshot) = snap::resolve_with(snap::list(repo)?, &req.snapshot, &wanted)?;
    let mut parts: Vec<String> = Vec::new();
    for w in &wanted {
        if snapshot.part(w).is_none() {
            let have: Vec<&str> = snapshot.parts.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::NotFound(format!(
                "snapshot {} has no component {w}; it has: {}",
                id.short(),
                have.join(", ")
            )));
        }
        if !parts.iter().any(|p| p == w) {
            parts.push(w.to_string());
        }
    }
    let all = parts.is_empty() || parts.len() == snapshot.parts.len();
    if parts.is_empty() {
        parts = snapshot.parts.iter().map(|p| p.name.clone()).collect();
    }
    let kind = if all && snapshot.parts.len() == 1 {
        snapshot.kind.clone()
    } else if all {
        "full".to_string()
    } else if parts.len() == 1 {
        parts[0].clone()
    } else {
        return Err(Error::Invalid(format!(
            "export either one component or all of them (the type in the archive name must say what it holds); run export once per component: {}",
            parts.join(", ")
        )));
    };
    let backup_name = backup_name(&kind, &snapshot.datetime());
    Ok(ExportPlan {
        id,
        snapshot,
        kind,
        backup_name,
        parts,
        gzip_level: req.gzip_level.clamp(1, 9),
    })
}

// One archive member in walk order.
struct Item {
    path: Vec<u8>,
    node: Node,
    component: usize,
    // Index of the earlier item this one is a hardlink to.
    link_to: Option<usize>,
}

struct FileDigest {
    sha256: [u8; 32],
    regions: Option<Regions>,
}

/// Writes the archive for `plan` into `out` (a parallel gzip stream) and
/// returns the writer, so the caller can make it durable.
pub fn write_export<W: Write + Send + 'static>(
    repo: &Repository,
    plan: &ExportPlan,
    out: W,
    progress: &dyn Progress,
) -> Result<(ExportReport, W)> {
    let started = Instant::now();
    let mut report = ExportReport {
        backup_name: plan.backup_name.clone(),
        snapshot_id: plan.id.to_hex(),
        kind: plan.kind.clone(),
        ..Default::default()
    };
    let items = walk(repo, plan, &mut report)?;
    let files: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].node.kind == NodeKind::File && items[i].link_to.is_none())
        .collect();
    let total: u64 = files.iter().map(|&i| items[i].node.size).sum();
    progress.add_total(files.len() as u64 * 2, total * 2);
    let digests: Vec<FileDigest> = files
        .par_iter()
        .map(|&i| digest(repo, &items[i].node, progress))
        .collect::<Result<_>>()?;
    let by_item: HashMap<usize, &FileDigest> = files.iter().copied().zip(&digests).collect();
    let manifest = manifest(plan, &items, &by_item);
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");

    let counter = Counting { inner: out, n: 0 };
    let mut gz = ParCompressBuilder::<Gzip>::new()
        .compression_level(gzp::Compression::new(plan.gzip_level))
        .from_writer(counter);
    let io = |e: std::io::Error| Error::io("writing", &plan.backup_name, e);
    let top = |p: &[u8]| [plan.backup_name.as_bytes(), b"/", p].concat();
    {
        let mut tar = TarWriter::new(&mut gz);
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        tar.bytes_member(&top(b"manifest.json"), 0o600, now, &json)
            .map_err(io)?;
        for (i, item) in items.iter().enumerate() {
            let path = top(&item.path);
            match (item.node.kind, item.link_to) {
                (NodeKind::File, Some(first)) => {
                    tar.hardlink(&path, &top(&items[first].path), &item.node)
                        .map_err(io)?;
                    report.hardlinks += 1;
                }
                (NodeKind::File, None) => {
                    let d = by_item[&i];
                    report.sparse_files += u64::from(d.regions.is_some());
                    tar.begin_file(&path, &item.node, d.regions.clone())
                        .map_err(io)?;
                    for_each_blob(repo, &item.node, |data| {
                        progress.advance(0, data.len() as u64);
                        tar.content(data).map_err(io)
                    })?;
                    tar.end_file().map_err(io)?;
                    progress.advance(1, 0);
                    report.files += 1;
                    report.bytes += item.node.size;
                }
                (NodeKind::Dir, _) => {
                    tar.special(&path, &item.node).map_err(io)?;
                    report.dirs += 1;
                }
                _ => {
                    tar.special(&path, &item.node).map_err(io)?;
                    report.others += 1;
                }
            }
        }
        tar.finish().map_err(io)?;
    }
    let counter = gz
        .finish()
        .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    report.archive_bytes = counter.n;
    report.seconds = started.elapsed().as_secs_f64();
    Ok((report, counter.inner))
}

/// Every member below the exported components, parents before children.
fn walk(repo: &Repository, plan: &ExportPlan, report: &mut ExportReport) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for (c, name) in plan.parts.iter().enumerate() {
        // Hardlink groups stay within a component, so each component
        // restores on its own (`restore FILE --component X`).
        let mut first_link: HashMap<(u64, u64), usize> = HashMap::new();
        let part = plan.snapshot.part(name).expect("checked in plan");
        let view = super::super::part_view(repo, &plan.snapshot, part)?;
        let mut stack = vec![(name.as_bytes().to_vec(), view)];
        while let Some((path, node)) = stack.pop() {
            if node.kind == NodeKind::Socket {
                report.warnings.push(format!(
                    "left out socket {}: tar cannot hold sockets",
                    String::from_utf8_lossy(&path)
                ));
                continue;
            }
            let mut link_to = None;
            if node.kind == NodeKind::File && node.nlink > 1 {
                let key = (node.dev, node.inode);
                match first_link.get(&key) {
                    Some(&first) => link_to = Some(first),
                    None => {
                        first_link.insert(key, items.len());
                    }
                }
            }
            if let (NodeKind::Dir, Some(id)) = (node.kind, node.subtree) {
                let tree = Tree::decode(&repo.read_blob(&id)?)?;
                // Reversed onto the stack so members come out sorted.
                for child in tree.nodes.into_iter().rev() {
                    let p = [path.as_slice(), b"/", &child.name].concat();
                    stack.push((p, child));
                }
            }
            items.push(Item {
                path,
                node,
                component: c,
                link_to,
            });
        }
    }
    Ok(items)
}

fn digest(repo: &Repository, node: &Node, progress: &dyn Progress) -> Result<FileDigest> {
    let mut sha = Sha256::new();
    let mut holes = HoleFinder::new(MIN_HOLE);
    let mut len = 0u64;
    for_each_segment(repo, node, |ids| {
        for id in ids {
            let data = repo.read_blob(id)?;
            sha.update(&data);
            holes.feed(&data);
            len += data.len() as u64;
            progress.advance(0, data.len() as u64);
        }
        Ok(())
    })?;
    if len != node.size {
        return Err(Error::corrupt(
            "snapshot",
            format!(
                "a file's stored content is {len} bytes, the snapshot records {}",
                node.size
            ),
        ));
    }
    progress.advance(1, 0);
    Ok(FileDigest {
        sha256: sha.finalize().into(),
        regions: holes.finish(),
    })
}

/// Calls `f` with each blob of `ids` in order, reading a few ahead in
/// parallel so decryption overlaps compression.
fn for_each_blob(
    repo: &Repository,
    node: &Node,
    mut f: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    for_each_segment(repo, node, |ids| {
        for window in ids.chunks(READ_AHEAD) {
            let blobs: Vec<Vec<u8>> = window
                .par_iter()
                .map(|id| repo.read_blob(id))
                .collect::<Result<_>>()?;
            for b in &blobs {
                f(b)?;
            }
        }
        Ok(())
    })
}

fn manifest(plan: &ExportPlan, items: &[Item], digests: &HashMap<usize, &FileDigest>) -> Manifest {
    let s = &plan.snapshot;
    let mut components: Vec<ManifestComponent> = plan
        .parts
        .iter()
        .map(|name| {
            let part = s.part(name).expect("checked in plan");
            ManifestComponent {
                name: name.clone(),
                paths: part
                    .paths
                    .iter()
                    .map(|p| ManifestPath {
                        path: p.path.clone(),
                        entry: p.entry.clone(),
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect();
    let mut files = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let c = &mut components[item.component];
        match item.node.kind {
            NodeKind::File if item.link_to.is_none() => {
                c.files += 1;
                c.size_bytes += item.node.size;
                let d = digests[&i];
                files.push(ManifestFile::new(&item.path, item.node.size, &d.sha256));
            }
            NodeKind::File => {}
            NodeKind::Dir => c.dirs += 1,
            _ => c.others += 1,
        }
    }
    Manifest {
        format: MANIFEST_FORMAT.to_string(),
        backup_name: plan.backup_name.clone(),
        kind: plan.kind.clone(),
        timestamp: s.time.clone(),
        environment: s.environment.clone(),
        host: s.host.clone(),
        snapshot_id: plan.id.to_hex(),
        tags: s.tags.clone(),
        retention_days: s.retention_days,
        tool: "opc-store".to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        created: chrono::Local::now().fixed_offset().to_rfc3339(),
        components,
        files,
    }
}

struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
