//! Walks source paths and stores them as trees and data blobs.
//!
//! Unchanged files (same size, mtime, ctime and inode as in the parent
//! snapshot, with all their blobs still indexed) are not read again.
//! Unreadable entries are reported and skipped; they never abort the walk.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use super::file::{store_file, store_stream, FileContent, FileError, StreamError};
use super::sanitize::{Redaction, SanitizeCtx};
use super::scan::join_rel;
use super::Progress;
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};
use crate::repo::{Packer, Repository};
use crate::snapshot::{
    for_each_segment, Content, Node, NodeKind, PartPath, PartSanitize, Summary, Tree,
};
use crate::source::dbpage::PageStream;
use crate::source::sanitize::Sanitizer;
use crate::source::sqlite::{consistent_copy, scratch_dir, sidecars_quiet, CaptureGuard};
use crate::source::{list_dir, stat_node, Excludes, SqliteCapture};

/// Reads of a file that keeps changing while it is read, before it is
/// stored as last read and flagged.
const READ_ATTEMPTS: u32 = 3;

/// What archiving one part produced.
#[derive(Debug)]
pub struct ArchiveResult {
    /// Root tree: one entry per source path.
    pub tree: Id,
    /// The source paths and their entry names in the root tree.
    pub paths: Vec<PartPath>,
    /// Counters (blob counters are filled in by the caller from the packer).
    pub summary: Summary,
    /// Non-fatal problems, one line each.
    pub warnings: Vec<String>,
    /// What sanitization did, when it was on.
    pub sanitize: Option<PartSanitize>,
}

/// Stores filesystem trees into a repository through a shared packer.
pub struct Archiver<'a> {
    repo: &'a Repository,
    packer: &'a Packer<'a>,
    excludes: Excludes,
    sqlite: SqliteCapture,
    progress: &'a dyn Progress,
    summary: Mutex<Summary>,
    warnings: Mutex<Vec<String>>,
    // The first repository error: it ends the walk and fails the snapshot.
    fatal: Mutex<Option<Error>>,
    // Content of multiply-linked inodes already stored in this run.
    hardlinks: Mutex<HashMap<(u64, u64), Content>>,
    sanitize: Option<SanitizeCtx>,
    // Where database copies go; made (and cleaned) at the first database.
    scratch: std::sync::OnceLock<PathBuf>,
    // The parent's blobs are known to be indexed (see index::trust).
    trusted_parent: bool,
}

impl<'a> Archiver<'a> {
    /// An archiver writing through `packer`; `sqlite` says which files are
    /// databases to copy through SQLite.
    pub fn new(
        repo: &'a Repository,
        packer: &'a Packer<'a>,
        excludes: Excludes,
        sqlite: SqliteCapture,
        progress: &'a dyn Progress,
    ) -> Archiver<'a> {
        Archiver {
            repo,
            packer,
            excludes,
            sqlite,
            progress,
            summary: Mutex::new(Summary::default()),
            warnings: Mutex::new(Vec::new()),
            fatal: Mutex::new(None),
            hardlinks: Mutex::new(HashMap::new()),
            sanitize: None,
            scratch: std::sync::OnceLock::new(),
            trusted_parent: false,
        }
    }

    /// Sanitizes what is stored with `rules`; `parent` is what the parent
    /// snapshot recorded for this part (see `pipeline::sanitize`).
    /// `part` names the part in the recorded paths.
    /// `rules` is `None` when sanitization is off; the parent's record is
    /// still needed then, to re-read files it stored redacted.
    pub fn with_sanitizer(
        mut self,
        rules: Option<Sanitizer>,
        parent: Option<&PartSanitize>,
        part: &str,
    ) -> Self {
        self.sanitize = Some(SanitizeCtx::new(rules, parent, part));
        self
    }

    fn warn(&self, msg: String) {
        self.progress.warn(&msg);
        self.summary
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .warnings += 1;
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(msg);
    }

    /// Records a repository error as the one that ends the walk and
    /// returns what the entry reports meanwhile.
    fn stop(&self, e: Error) -> Error {
        let msg = e.to_string();
        self.fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
        Error::Invalid(msg)
    }

    fn count(&self, f: impl FnOnce(&mut Summary)) {
        f(&mut self.summary.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Archives `paths` as one part. `parent` is the same part's root tree
    /// in the previous snapshot, used to skip unchanged files.
    pub fn archive(mut self, paths: &[PathBuf], parent: Option<Id>) -> Result<ArchiveResult> {
        self.trusted_parent = parent.is_some_and(|id| self.repo.index().is_trusted(&id));
        let parent_tree = parent.and_then(|id| self.parent_tree(&id));
        let mut root = Tree::default();
        let mut part_paths = Vec::new();
        for (path, name) in paths.iter().zip(super::entry_names(paths)) {
            let parent_node = parent_tree.as_ref().and_then(|t| t.get(&name));
            if let Some(s) = &self.sanitize {
                s.set_root(&name, paths.len() == 1);
            }
            let entry = self.entry(path, Vec::new(), &name, parent_node);
            if let Some(e) = self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(e);
            }
            match entry {
                Some(node) => {
                    if node.kind == NodeKind::Symlink {
                        self.warn(format!(
                            "{} is a symlink: only the link is stored, not what it points to; configure the target path instead",
                            path.display()
                        ));
                    }
                    root.nodes.push(node)
                }
                None => {
                    return Err(Error::NotFound(format!(
                        "{} could not be read (see the warnings above); nothing was stored for it",
                        path.display()
                    )))
                }
            }
            part_paths.push(PartPath {
                path: path.to_string_lossy().into_owned(),
                entry: String::from_utf8_lossy(&name).into_owned(),
            });
        }
        let tree = self.packer.add(BlobKind::Tree, &root.encode())?;
        Ok(ArchiveResult {
            tree,
            paths: part_paths,
            summary: self.summary.into_inner().unwrap_or_else(|p| p.into_inner()),
            warnings: self
                .warnings
                .into_inner()
                .unwrap_or_else(|p| p.into_inner()),
            sanitize: self.sanitize.and_then(SanitizeCtx::finish),
        })
    }

    fn load_tree(&self, id: &Id) -> Result<Tree> {
        Tree::decode(&self.repo.read_blob(id)?)
    }

    /// A folder of the parent snapshot, without the files whose content
    /// is no longer all in the index (a damaged pack dropped by repair or
    /// a pack deleted elsewhere): those must be read and stored again. One
    /// index transaction per folder, not one per file.
    fn parent_tree(&self, id: &Id) -> Option<Tree> {
        let mut tree = self.load_tree(id).ok()?;
        if self.trusted_parent {
            return Some(tree);
        }
        let ids: Vec<Id> = tree
            .nodes
            .iter()
            .filter(|n| n.kind == NodeKind::File)
            .flat_map(|n| n.content.iter().copied())
            .collect();
        let mut lost: HashSet<Id> = HashSet::new();
        if !ids.is_empty() {
            let known = self.repo.index().contains_many(&ids).ok()?;
            lost.extend(
                ids.into_iter()
                    .zip(known)
                    .filter_map(|(id, k)| (!k).then_some(id)),
            );
        }
        // Files stored in lists are checked a list at a time, so memory
        // stays at one list's ids whatever their size.
        tree.nodes.retain(|n| {
            if n.kind != NodeKind::File {
                return true;
            }
            if n.content.iter().any(|c| lost.contains(c)) {
                return false;
            }
            n.lists.is_empty() || self.all_indexed(n)
        });
        Some(tree)
    }

    /// Whether every blob of a file stored in lists is in the index.
    fn all_indexed(&self, n: &Node) -> bool {
        let index = self.repo.index();
        let lists = index.contains_many(&n.lists);
        if !lists.is_ok_and(|k| !k.contains(&false)) {
            return false;
        }
        for_each_segment(self.repo, n, |ids| {
            if index.contains_many(ids)?.contains(&false) {
                return Err(Error::MissingBlob("a blob of a content list".into()));
            }
            Ok(())
        })
        .is_ok()
    }

    /// One entry; `None` when it was skipped with a warning. `rel` is the
    /// path relative to the source root (empty for the root itself).
    fn failed(&self) -> bool {
        self.fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn entry(&self, path: &Path, rel: Vec<u8>, name: &[u8], parent: Option<&Node>) -> Option<Node> {
        if self.failed() {
            return None;
        }
        let mut node = match stat_node(path, name, parent) {
            Ok(n) => n,
            Err(e) => {
                self.warn(format!("skipped: {e}"));
                return None;
            }
        };
        let res = match node.kind {
            NodeKind::File => self.file(path, &rel, &mut node, parent),
            NodeKind::Dir => self.dir(path, &rel, &mut node, parent),
            NodeKind::Socket => {
                self.warn(format!(
                    "skipped socket {}: sockets cannot be restored",
                    path.display()
                ));
                return None;
            }
            _ => {
                self.count(|s| s.others += 1);
                Ok(())
            }
        };
        match res {
            Ok(()) => Some(node),
            Err(_) if self.failed() => None,
            Err(e) => {
                self.warn(format!("skipped: {e}"));
                None
            }
        }
    }

    fn dir(&self, path: &Path, rel: &[u8], node: &mut Node, parent: Option<&Node>) -> Result<()> {
        let names = list_dir(path)?;
        let parent_tree = parent
            .filter(|p| p.kind == NodeKind::Dir)
            .and_then(|p| p.subtree)
            .and_then(|id| self.parent_tree(&id));
        let children: Vec<Option<Node>> = names
            .par_iter()
            .map(|(name, is_dir)| {
                let child_rel = join_rel(rel, name);
                if self.excludes.is_excluded(&child_rel, name, *is_dir) {
                    return None;
                }
                if let Some(s) = &self.sanitize {
                    if s.excluded_entry(&child_rel, name, *is_dir) {
                        return None;
                    }
                }
                let child_path = path.join(std::ffi::OsStr::from_bytes(name));
                if !*is_dir && self.sqlite.is_sidecar_of_captured(&child_path, &child_rel) {
                    // Its committed content is in the database's copy.
                    return None;
                }
                let pnode = parent_tree.as_ref().and_then(|t| t.get(name));
                self.entry(&child_path, child_rel, name, pnode)
            })
            .collect();
        let encoded = Tree {
            nodes: children.into_iter().flatten().collect(),
        }
        .encode();
        // The nodes are gone before the encoded tree is sealed: a folder
        // holding a large database would otherwise hold its id list twice.
        match self.packer.add(BlobKind::Tree, &encoded) {
            Ok(id) => node.subtree = Some(id),
            Err(e) => return Err(self.stop(e)),
        }
        self.count(|s| s.dirs += 1);
        Ok(())
    }

    fn unchanged(&self, node: &Node, parent: Option<&Node>) -> Option<Content> {
        let p = parent?;
        let same = p.kind == NodeKind::File
            && p.size == node.size
            && p.mtime_ns == node.mtime_ns
            && p.ctime_ns == node.ctime_ns
            && p.inode == node.inode;
        // Entries whose blobs are lost were dropped from the parent tree
        // when it was loaded (see `parent_tree`).
        same.then(|| Content::of(p))
    }

    /// Stores a database read page by page at one commit; `None` when that
    /// cannot start or fails midway (the caller copies it instead; blobs of
    /// a half-read stream are unreferenced and pruned).
    fn store_pages(
        &self,
        path: &Path,
        rel: &[u8],
    ) -> std::result::Result<Option<FileContent>, FileError> {
        // A window's worth of pages read ahead (see `PageStream::open`).
        let ahead = super::file::WINDOW_BATCH * super::file::PAGE_BATCH_FACTOR;
        let mut pages = match PageStream::open(path, ahead) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("{e}; copying the database instead");
                return Ok(None);
            }
        };
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let stored = store_stream(
            &mut pages,
            size,
            rel,
            self.repo.chunker(),
            self.packer,
            &|n| self.progress.advance(0, n),
        );
        match stored {
            Ok((content, bytes)) => Ok(Some(FileContent {
                content,
                bytes,
                changed: false,
            })),
            Err(StreamError::Store(e)) => Err(FileError::Repo(e)),
            Err(StreamError::Read(e)) => {
                tracing::debug!("{}: {e}; copying the database instead", path.display());
                Ok(None)
            }
        }
    }

    /// Stores a file's content: a database as of one commit (its pages
    /// through SQLite, else a copy made with the backup API), anything else
    /// read directly, again when it changed while read.
    fn read_content(
        &self,
        path: &Path,
        rel: &[u8],
        sqlite: bool,
    ) -> std::result::Result<super::file::FileContent, FileError> {
        let store = |p: &Path| {
            store_file(p, rel, self.repo.chunker(), self.packer, &|n| {
                self.progress.advance(0, n)
            })
        };
        if sqlite {
            let scratch = self
                .scratch
                .get_or_init(|| scratch_dir(self.repo.cache_dir()));
            // Until both ways below have closed the database.
            let _guard = CaptureGuard::new(path);
            if let Some(fc) = self.store_pages(path, rel)? {
                self.count(|s| s.sqlite_captured += 1);
                return Ok(fc);
            }
            match consistent_copy(path, scratch) {
                Ok(copy) => {
                    let mut fc = store(copy.path())?;
                    // Nobody writes the copy; the source may move on.
                    fc.changed = false;
                    self.count(|s| s.sqlite_captured += 1);
                    return Ok(fc);
                }
                Err(e) => self.warn(e.to_string()),
            }
        }
        let mut attempt = 1;
        loop {
            let fc = store(path)?;
            if !fc.changed || attempt == READ_ATTEMPTS {
                if fc.changed {
                    self.warn(format!(
                        "{} changed while it was read ({READ_ATTEMPTS} attempts); the stored copy may be inconsistent",
                        path.display()
                    ));
                }
                return Ok(fc);
            }
            // Blobs of the discarded read are unreferenced; prune drops them.
            attempt += 1;
        }
    }

    fn file(&self, path: &Path, rel: &[u8], node: &mut Node, parent: Option<&Node>) -> Result<()> {
        // A configured path that is itself a file has an empty relative
        // path; its name is what chunking rules match.
        let name = node.name.clone();
        let rel = if rel.is_empty() { name.as_slice() } else { rel };
        let key = (node.dev, node.inode);
        // Checked before the shortcuts below: their content may be the
        // unredacted source.
        if let Some((s, format)) = self
            .sanitize
            .as_ref()
            .and_then(|s| Some((s, s.format(rel, &name)?)))
        {
            return self.redacted_file(s, format, path, rel, node, parent);
        }
        let stale = self
            .sanitize
            .as_ref()
            .is_some_and(|s| s.stored_differs(rel));
        let sqlite = self.sqlite.wants_file(path, rel, Some(node.size));
        let unchanged = (!stale)
            .then(|| self.unchanged(node, parent))
            .flatten()
            .filter(|_| !sqlite || sidecars_quiet(path, node.mtime_ns));
        if let Some(c) = unchanged {
            c.store_in(node);
        } else if let Some(c) = (node.nlink > 1)
            .then(|| {
                self.hardlinks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&key)
                    .cloned()
            })
            .flatten()
        {
            c.store_in(node);
        } else {
            let fc = match self.read_content(path, rel, sqlite) {
                Ok(fc) => fc,
                Err(FileError::Source(e)) => return Err(e),
                Err(FileError::Repo(e)) => return Err(self.stop(e)),
            };
            node.size = fc.bytes;
            fc.content.store_in(node);
            self.count(|s| {
                s.files_read += 1;
                s.bytes_read += fc.bytes;
            });
            if node.nlink > 1 {
                self.hardlinks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, Content::of(node));
            }
            self.progress.advance(1, 0);
            self.count(|s| {
                s.files += 1;
                s.bytes += node.size;
            });
            return Ok(());
        }
        self.progress.advance(1, node.size);
        self.count(|s| {
            s.files += 1;
            s.bytes += node.size;
        });
        Ok(())
    }

    fn redacted_file(
        &self,
        s: &SanitizeCtx,
        format: crate::source::sanitize::Format,
        path: &Path,
        rel: &[u8],
        node: &mut Node,
        parent: Option<&Node>,
    ) -> Result<()> {
        let progress = |n| self.progress.advance(0, n);
        match s.store(
            self.repo,
            self.packer,
            path,
            rel,
            format,
            node,
            parent,
            &progress,
        ) {
            Ok(Redaction::Reused) => self.progress.advance(1, node.size),
            Ok(Redaction::Stored { read, .. }) => {
                self.count(|s| {
                    s.files_read += 1;
                    s.bytes_read += read;
                });
                self.progress.advance(1, 0);
            }
            Err(FileError::Source(e)) => return Err(e),
            Err(FileError::Repo(e)) => return Err(self.stop(e)),
        }
        self.count(|s| {
            s.files += 1;
            s.bytes += node.size;
        });
        Ok(())
    }
}
