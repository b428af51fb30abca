//! `import`: a legacy archive (ours or the old scripts') becomes a snapshot.
//!
//! Content is chunked and stored while the archive streams by; the tree is
//! kept as metadata in memory and written bottom-up at the end. The
//! snapshot record is written last, after every pack is durable, so a
//! damaged or hostile archive imports nothing (its packs are unreferenced
//! and go with the next prune). When the manifest carries SHA-256 digests,
//! every file is checked against them before the snapshot is committed.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::manifest::{read_loose, LooseManifest};
use super::name::{parse_backup_name, strip_archive_suffix};
use super::reader::{for_each_member, open_archive, Member, MemberKind};
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};
use crate::pipeline::{store_stream, Progress};
use crate::repo::{Packer, Repository};
use crate::snapshot::{
    self as snap, Content, Node, NodeKind, Part, PartPath, Snapshot, Summary, Tree,
};

/// Largest manifest read into memory.
const MAX_MANIFEST: u64 = 256 << 20;

/// How to import.
#[derive(Clone, Debug, Default)]
pub struct ImportRequest {
    /// Snapshot time, overriding the manifest and the file name.
    pub time: Option<DateTime<FixedOffset>>,
    /// Environment label when the manifest has none.
    pub environment: String,
    /// Extra tags.
    pub tags: Vec<String>,
}

/// What an import produced.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    /// Archive file name.
    pub archive: String,
    /// New snapshot id.
    pub snapshot_id: String,
    /// Snapshot type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Snapshot time (RFC 3339).
    pub time: String,
    /// Components found.
    pub components: Vec<String>,
    /// Counters.
    pub summary: Summary,
    /// Files checked against the manifest's SHA-256.
    pub verified_files: u64,
    /// Things left out or assumed, one line each.
    pub warnings: Vec<String>,
    /// Wall time in seconds.
    pub seconds: f64,
}

// The tree being rebuilt from members.
#[derive(Default)]
struct DirBuild {
    node: Option<Node>,
    children: BTreeMap<Vec<u8>, Entry>,
}

enum Entry {
    Dir(DirBuild),
    Leaf(Node),
}

struct State<'a> {
    repo: &'a Repository,
    packer: &'a Packer<'a>,
    what: String,
    file_name: String,
    root: DirBuild,
    manifest: Option<Vec<u8>>,
    digests: HashMap<Vec<u8>, [u8; 32]>,
    // Hardlink groups: synthetic inode -> members so far.
    links: HashMap<u64, u64>,
    next_inode: u64,
    summary: Summary,
    warnings: Vec<String>,
    progress: &'a dyn Progress,
}

/// Imports the archive at `path` as one snapshot.
pub fn import(
    repo: &Repository,
    path: &Path,
    req: &ImportRequest,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let started = Instant::now();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let packer = repo.packer();
    let mut st = State {
        repo,
        packer: &packer,
        what: path.display().to_string(),
        file_name: file_name.clone(),
        root: DirBuild::default(),
        manifest: None,
        digests: HashMap::new(),
        links: HashMap::new(),
        next_inode: 1,
        summary: Summary::default(),
        warnings: Vec::new(),
        progress,
    };
    let input = open_archive(path)?;
    let what = st.what.clone();
    let top = for_each_member(input, &what, |m, r| st.member(m, r))?;
    let loose = st
        .manifest
        .as_deref()
        .and_then(read_loose)
        .unwrap_or_default();
    if st.manifest.is_none() {
        st.warnings.push(format!(
            "{file_name} has no {top}/manifest.json: type and time come from its name"
        ));
    }
    let verified = st.check_digests(&loose)?;
    let from_name = parse_backup_name(&file_name).or_else(|| parse_backup_name(&top));
    let time = req
        .time
        .or(loose.time)
        .or(from_name.as_ref().map(|x| x.1))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "cannot tell when {file_name} was taken (no manifest timestamp, no opc_backup_<type>_<YYYYMMDD_HHMMSS> name); pass --time"
            ))
        })?;
    let parts = st.parts(&loose)?;
    if parts.is_empty() {
        return Err(Error::corrupt(
            format!("archive {}", st.what),
            "it holds no component folders",
        ));
    }
    let kind = loose
        .kind
        .clone()
        .or(from_name.map(|x| x.0))
        .unwrap_or_else(|| {
            if parts.len() == 1 {
                parts[0].name.clone()
            } else {
                "full".into()
            }
        });
    packer.flush()?;
    let stats = packer.stats();
    let mut summary = st.summary.clone();
    summary.new_blobs = stats.new_blobs;
    summary.new_bytes = stats.new_raw_bytes;
    summary.stored_bytes = stats.new_stored_bytes;
    summary.warnings = st.warnings.len() as u64;
    let mut tags = loose.tags.clone();
    tags.extend(req.tags.iter().cloned());
    if !tags.iter().any(|t| t == "imported") {
        tags.push("imported".into());
    }
    let now = chrono::Local::now().fixed_offset().to_rfc3339();
    let record = Snapshot {
        version: snap::SNAPSHOT_VERSION,
        time: time.to_rfc3339(),
        start: now.clone(),
        end: now,
        host: loose.host.clone().unwrap_or_else(crate::hostname),
        environment: loose
            .environment
            .clone()
            .unwrap_or_else(|| req.environment.clone()),
        kind: kind.clone(),
        tags,
        retention_days: loose.retention_days,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        imported_from: Some(file_name.clone()),
        original: None,
        parts,
        summary: summary.clone(),
    };
    let id = super::super::snapshot::commit_record(repo, &record)?;
    Ok(ImportReport {
        archive: file_name,
        snapshot_id: id.to_hex(),
        kind,
        time: record.time,
        components: record.parts.iter().map(|p| p.name.clone()).collect(),
        summary,
        verified_files: verified,
        warnings: st.warnings,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether a snapshot imported from an archive named `file_name` exists.
pub fn already_imported(all: &[(Id, Snapshot)], file_name: &str) -> bool {
    all.iter()
        .any(|(_, s)| s.imported_from.as_deref() == Some(file_name))
}

impl State<'_> {
    fn bad(&self, reason: String) -> Error {
        Error::corrupt(format!("archive {}", self.what), reason)
    }

    fn member(&mut self, m: &Member, r: &mut dyn Read) -> Result<()> {
        if m.rel.is_empty() {
            self.root.node = Some(self.node(m, b"", NodeKind::Dir));
            return Ok(());
        }
        if m.rel == b"manifest.json" && m.kind == MemberKind::File {
            if m.size > MAX_MANIFEST {
                return Err(self.bad("manifest.json is implausibly large".into()));
            }
            let mut buf = Vec::new();
            r.take(MAX_MANIFEST)
                .read_to_end(&mut buf)
                .map_err(|e| self.bad(format!("manifest.json cannot be read: {e}")))?;
            self.manifest = Some(buf);
            return Ok(());
        }
        let (parent, name) = match m.rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&m.rel[..i], &m.rel[i + 1..]),
            None => {
                let listed = self
                    .manifest
                    .as_deref()
                    .and_then(read_loose)
                    .is_some_and(|l| l.components.iter().any(|c| c.name.as_bytes() == m.rel));
                if m.kind != MemberKind::Dir && !listed {
                    self.warnings.push(format!(
                        "left out {}: it lies beside the component folders, not in one",
                        String::from_utf8_lossy(&m.rel)
                    ));
                    return Ok(());
                }
                (&[][..], &m.rel[..])
            }
        };
        let node = match &m.kind {
            MemberKind::Dir => {
                let node = self.node(m, name, NodeKind::Dir);
                let dir = self.dir_mut(&m.rel)?;
                dir.node = Some(node);
                return Ok(());
            }
            MemberKind::File => self.file(m, name, r)?,
            MemberKind::Hardlink(target) => self.hardlink(m, name, target)?,
            MemberKind::Symlink(t) => {
                let mut n = self.node(m, name, NodeKind::Symlink);
                n.size = t.len() as u64;
                n.target = Some(t.clone());
                self.summary.others += 1;
                n
            }
            MemberKind::Fifo => self.other(m, name, NodeKind::Fifo),
            MemberKind::Chardev => self.other(m, name, NodeKind::Chardev),
            MemberKind::Blockdev => self.other(m, name, NodeKind::Blockdev),
        };
        let rel = m.rel.clone();
        let dir = self.dir_mut(parent)?;
        if let Some(Entry::Dir(_)) = dir.children.get(name) {
            return Err(self.bad(format!(
                "{} is both a folder and a file",
                String::from_utf8_lossy(&rel)
            )));
        }
        // A later member of the same name replaces the earlier, as with tar.
        dir.children.insert(name.to_vec(), Entry::Leaf(node));
        Ok(())
    }

    fn other(&mut self, m: &Member, name: &[u8], kind: NodeKind) -> Node {
        self.summary.others += 1;
        self.node(m, name, kind)
    }

    fn node(&mut self, m: &Member, name: &[u8], kind: NodeKind) -> Node {
        let inode = self.next_inode;
        self.next_inode += 1;
        Node {
            name: name.to_vec(),
            kind,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            mtime_ns: m.mtime_ns,
            ctime_ns: 0,
            inode,
            dev: 0,
            nlink: 1,
            size: 0,
            content: vec![],
            lists: vec![],
            subtree: None,
            target: None,
            rdev: m.rdev,
            xattrs: m.xattrs.clone(),
        }
    }

    fn file(&mut self, m: &Member, name: &[u8], r: &mut dyn Read) -> Result<Node> {
        let mut node = self.node(m, name, NodeKind::File);
        let mut hashing = Hashing {
            inner: r,
            sha: Sha256::new(),
        };
        let progress = self.progress;
        let (content, bytes) = store_stream(
            &mut hashing,
            m.size,
            &m.rel,
            self.repo.chunker(),
            self.packer,
            &|n| progress.advance(0, n),
        )
        .map_err(|e| {
            e.map_err(|io| {
                self.bad(format!(
                    "{} cannot be read ({io}); the archive is truncated or damaged",
                    String::from_utf8_lossy(&m.rel)
                ))
            })
        })?;
        if bytes != m.size {
            return Err(self.bad(format!(
                "{} holds {bytes} bytes, its header says {}",
                String::from_utf8_lossy(&m.rel),
                m.size
            )));
        }
        self.digests
            .insert(m.rel.clone(), hashing.sha.finalize().into());
        node.size = bytes;
        content.store_in(&mut node);
        self.summary.files += 1;
        self.summary.files_read += 1;
        self.summary.bytes += bytes;
        self.summary.bytes_read += bytes;
        progress.advance(1, 0);
        Ok(node)
    }

    fn hardlink(&mut self, m: &Member, name: &[u8], target: &[u8]) -> Result<Node> {
        let first = self.leaf_mut(target).filter(|n| n.kind == NodeKind::File);
        let Some(first) = first else {
            return Err(self.bad(format!(
                "hardlink {} points at {}, which is not an earlier file of the archive",
                String::from_utf8_lossy(&m.rel),
                String::from_utf8_lossy(target)
            )));
        };
        let (inode, content, size) = (first.inode, Content::of(first), first.size);
        *self.links.entry(inode).or_insert(1) += 1;
        let mut node = self.node(m, name, NodeKind::File);
        node.inode = inode;
        content.store_in(&mut node);
        node.size = size;
        self.summary.files += 1;
        self.summary.bytes += size;
        if let Some(d) = self.digests.get(target).copied() {
            self.digests.insert(m.rel.clone(), d);
        }
        Ok(node)
    }

    /// The folder at `rel`, created (implicitly) when missing.
    fn dir_mut(&mut self, rel: &[u8]) -> Result<&mut DirBuild> {
        let what = self.what.clone();
        let mut dir = &mut self.root;
        if rel.is_empty() {
            return Ok(dir);
        }
        for (i, c) in rel.split(|&b| b == b'/').enumerate() {
            let entry = dir
                .children
                .entry(c.to_vec())
                .or_insert_with(|| Entry::Dir(DirBuild::default()));
            dir = match entry {
                Entry::Dir(d) => d,
                Entry::Leaf(_) => {
                    let upto: Vec<&[u8]> = rel.split(|&b| b == b'/').take(i + 1).collect();
                    return Err(Error::corrupt(
                        format!("archive {what}"),
                        format!(
                            "{} lies below {}, which is not a folder (extracting it would write through a link); refusing the archive",
                            String::from_utf8_lossy(rel),
                            String::from_utf8_lossy(&upto.join(&b'/'))
                        ),
                    ));
                }
            };
        }
        Ok(dir)
    }

    fn leaf_mut(&mut self, rel: &[u8]) -> Option<&mut Node> {
        let mut dir = &mut self.root;
        let parts: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
        let (last, parents) = parts.split_last()?;
        for p in parents {
            dir = match dir.children.get_mut(*p)? {
                Entry::Dir(d) => d,
                Entry::Leaf(_) => return None,
            };
        }
        match dir.children.get_mut(*last)? {
            Entry::Leaf(n) => Some(n),
            Entry::Dir(_) => None,
        }
    }

    fn check_digests(&self, loose: &LooseManifest) -> Result<u64> {
        let Some(full) = &loose.full else {
            return Ok(0);
        };
        let mut checked = 0;
        for f in &full.files {
            let path = f.path_bytes().unwrap_or_default();
            let shown = String::from_utf8_lossy(&path);
            match self.digests.get(&path) {
                None => {
                    return Err(self.bad(format!(
                        "{shown} is listed in the manifest but missing from the archive"
                    )))
                }
                Some(d) if hex::encode(d) != f.sha256 => {
                    return Err(self.bad(format!(
                        "{shown} does not match its SHA-256 in the manifest: the archive is damaged"
                    )))
                }
                Some(_) => checked += 1,
            }
        }
        Ok(checked)
    }

    /// Writes the trees and returns one part per component folder.
    fn parts(&mut self, loose: &LooseManifest) -> Result<Vec<Part>> {
        let children = std::mem::take(&mut self.root.children);
        let mut parts = Vec::new();
        // Manifest order first, then any other folders by name.
        let mut names: Vec<Vec<u8>> = loose
            .components
            .iter()
            .map(|c| c.name.as_bytes().to_vec())
            .filter(|n| children.contains_key(n))
            .collect();
        for k in children.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        let mut children = children;
        for name_bytes in names {
            let dir = match children.remove(&name_bytes) {
                Some(Entry::Dir(d)) => d,
                // A component captured from a single file.
                Some(Entry::Leaf(n)) => {
                    let mut d = DirBuild::default();
                    d.children.insert(name_bytes.clone(), Entry::Leaf(n));
                    let name = String::from_utf8_lossy(&name_bytes).into_owned();
                    let listed = loose.components.iter().find(|c| c.name == name);
                    let entry = listed
                        .and_then(|c| c.paths.first())
                        .map(|p| p.entry.clone())
                        .unwrap_or_else(|| name.clone());
                    let path = listed
                        .and_then(|c| c.paths.first())
                        .map(|p| p.path.clone())
                        .unwrap_or_else(|| {
                            format!("archive:{}/{name}", strip_archive_suffix(&self.file_name))
                        });
                    let mut summary = Summary::default();
                    let mut kids = d.children;
                    if let Some(Entry::Leaf(n)) = kids.get_mut(&name_bytes) {
                        n.name = entry.as_bytes().to_vec();
                    }
                    let renamed: BTreeMap<Vec<u8>, Entry> = kids
                        .into_values()
                        .map(|e| (entry.as_bytes().to_vec(), e))
                        .collect();
                    let tree = self.store_children(renamed, &mut summary)?;
                    parts.push(Part {
                        name,
                        tree,
                        paths: vec![PartPath { path, entry }],
                        summary,
                        sanitize: None,
                    });
                    continue;
                }
                None => continue,
            };
            let name = String::from_utf8(name_bytes.clone())
                .map_err(|_| self.bad("a component folder name is not UTF-8".into()))?;
            let listed = loose.components.iter().find(|c| c.name == name);
            let paths: Vec<PartPath> = listed
                .map(|c| {
                    c.paths
                        .iter()
                        .map(|p| PartPath {
                            path: p.path.clone(),
                            entry: p.entry.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut summary = Summary::default();
            let (tree, paths) = if paths.len() > 1 {
                // Several source paths: the folder holds one entry each.
                let t = self.store_children(dir.children, &mut summary)?;
                (t, paths)
            } else {
                let entry = paths
                    .first()
                    .map(|p| p.entry.clone())
                    .unwrap_or_else(|| name.clone());
                let path = paths.first().map(|p| p.path.clone()).unwrap_or_else(|| {
                    format!("archive:{}/{name}", strip_archive_suffix(&self.file_name))
                });
                let mut node = self.store_dir(entry.as_bytes(), dir, &mut summary)?;
                node.name = entry.as_bytes().to_vec();
                let mut root = Tree { nodes: vec![node] };
                let t = self.packer.add(BlobKind::Tree, &root.encode())?;
                (t, vec![PartPath { path, entry }])
            };
            parts.push(Part {
                name,
                tree,
                paths,
                summary,
                sanitize: None,
            });
        }
        Ok(parts)
    }

    fn store_children(
        &mut self,
        children: BTreeMap<Vec<u8>, Entry>,
        summary: &mut Summary,
    ) -> Result<Id> {
        let mut tree = Tree::default();
        for (name, e) in children {
            let node = match e {
                Entry::Leaf(mut n) => {
                    if let Some(k) = self.links.get(&n.inode) {
                        n.nlink = *k;
                    }
                    match n.kind {
                        NodeKind::File => {
                            summary.files += 1;
                            summary.bytes += n.size;
                        }
                        _ => summary.others += 1,
                    }
                    n
                }
                Entry::Dir(d) => self.store_dir(&name, d, summary)?,
            };
            tree.nodes.push(node);
        }
        self.packer.add(BlobKind::Tree, &tree.encode())
    }

    fn store_dir(&mut self, name: &[u8], d: DirBuild, summary: &mut Summary) -> Result<Node> {
        let mut node = d.node.unwrap_or_else(|| implicit_dir(name));
        node.name = name.to_vec();
        node.subtree = Some(self.store_children(d.children, summary)?);
        summary.dirs += 1;
        self.summary.dirs += 1;
        Ok(node)
    }
}

// A folder the archive implies but does not list.
fn implicit_dir(name: &[u8]) -> Node {
    Node {
        name: name.to_vec(),
        kind: NodeKind::Dir,
        mode: 0o755,
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        mtime_ns: 0,
        ctime_ns: 0,
        inode: 0,
        dev: 0,
        nlink: 1,
        size: 0,
        content: vec![],
        lists: vec![],
        subtree: None,
        target: None,
        rdev: 0,
        xattrs: vec![],
    }
}

struct Hashing<'a> {
    inner: &'a mut dyn Read,
    sha: Sha256,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}
