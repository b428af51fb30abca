//! Sanitization during capture: which directory entries are left out, and
//! storing redacted copies of `.env`, YAML and JSON files.
//!
//! The unchanged-file fast path compares a file's metadata with its node in
//! the parent snapshot. A redacted file's stored size differs from its
//! source, so the parent's record keeps the source size; and a stored copy
//! is reused only when the parent was sanitized by the same rules, so a
//! rule change (or turning sanitization on) re-reads every candidate and a
//! secret stored before can never be carried forward.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, RwLock};

use super::file::{store_stream, FileError, StreamError};
use crate::error::Error;
use crate::id::Id;
use crate::repo::{Packer, Repository};
use crate::snapshot::{
    for_each_segment, Content, Node, NodeKind, PartSanitize, SanitizeAction, SanitizedEntry,
};
use crate::source::sanitize::{redact, Class, Format, Sanitizer, MAX_SCAN_BYTES};

/// Sanitization state of one part being archived.
pub(crate) struct SanitizeCtx {
    /// `None` when sanitization is off but the parent redacted files.
    rules: Option<Sanitizer>,
    /// The parent's entries by path, when it used the same rules.
    parent: Option<HashMap<String, SanitizedEntry>>,
    /// Paths the parent stored redacted, whatever its rules: their stored
    /// copies differ from the source and must not be reused as unchanged
    /// once they are no longer redacted the same way.
    parent_redacted: HashSet<String>,
    part: String,
    /// Where the source path being walked appears in listings and restores:
    /// `part` for a part with one path, `part/entry` otherwise.
    root: RwLock<String>,
    entries: Mutex<Vec<SanitizedEntry>>,
}

/// What became of a file recognised for redaction.
pub(crate) enum Redaction {
    /// Read, redacted when needed, and stored.
    Stored {
        /// Bytes read from the source.
        read: u64,
    },
    /// Unchanged since the parent snapshot: its stored copy is reused.
    Reused,
}

impl SanitizeCtx {
    /// State for part `part`; `parent` is the parent snapshot's record of it.
    pub fn new(rules: Option<Sanitizer>, parent: Option<&PartSanitize>, part: &str) -> SanitizeCtx {
        let same = |p: &&PartSanitize| rules.as_ref().is_some_and(|r| p.rules == r.fingerprint());
        let by_path = parent.filter(same).map(|p| {
            p.entries
                .iter()
                .map(|e| (e.path.clone(), e.clone()))
                .collect()
        });
        let parent_redacted = parent
            .iter()
            .flat_map(|p| &p.entries)
            .filter(|e| e.action == SanitizeAction::Redacted)
            .map(|e| e.path.clone())
            .collect();
        SanitizeCtx {
            rules,
            parent: by_path,
            parent_redacted,
            part: part.to_string(),
            root: RwLock::new(String::new()),
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Sets the entry name of the source path about to be walked; `only`
    /// when it is the part's single path (shown as the part itself).
    pub fn set_root(&self, name: &[u8], only: bool) {
        *self.root.write().unwrap_or_else(|p| p.into_inner()) = if only {
            self.part.clone()
        } else {
            format!("{}/{}", self.part, String::from_utf8_lossy(name))
        };
    }

    fn path(&self, rel: &[u8]) -> String {
        let root = self.root.read().unwrap_or_else(|p| p.into_inner());
        let rel = String::from_utf8_lossy(rel);
        if rel.is_empty() {
            root.clone()
        } else {
            format!("{root}/{rel}")
        }
    }

    fn record(&self, e: SanitizedEntry) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e);
    }

    /// Records and returns why the file `rel` is left out.
    pub fn exclude(&self, rel: &[u8], reason: String) -> String {
        let path = self.path(rel);
        self.record(SanitizedEntry {
            path: path.clone(),
            action: SanitizeAction::Excluded,
            keys: Vec::new(),
            reason: Some(reason.clone()),
            source_size: None,
        });
        format!("{path}: left out by sanitization: {reason}")
    }

    /// Whether the directory entry `rel` is left out by a rule (recorded).
    pub fn excluded_entry(&self, rel: &[u8], name: &[u8], is_dir: bool) -> bool {
        let Some(rules) = self.rules.as_ref().filter(|_| !is_dir) else {
            return false;
        };
        match rules.classify(rel, name) {
            Class::Exclude(reason) => {
                self.exclude(rel, reason);
                true
            }
            _ => false,
        }
    }

    /// The syntax to redact the file `rel` as, if any.
    pub fn format(&self, rel: &[u8], name: &[u8]) -> Option<Format> {
        match self.rules.as_ref()?.classify(rel, name) {
            Class::Redact(f) => Some(f),
            _ => None,
        }
    }

    /// Whether the parent stored the file `rel` redacted: a file not
    /// redacted now must then be read again, not reused as unchanged.
    pub fn stored_differs(&self, rel: &[u8]) -> bool {
        !self.parent_redacted.is_empty() && self.parent_redacted.contains(&self.path(rel))
    }

    /// The record of this part (`None` when sanitization is off).
    pub fn finish(self) -> Option<PartSanitize> {
        // Sorted: the walk is parallel, the record should not depend on it.
        let mut entries = self.entries.into_inner().unwrap_or_else(|p| p.into_inner());
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Some(PartSanitize {
            rules: self.rules?.fingerprint().to_string(),
            entries,
        })
    }

    /// Reuses the parent's stored copy when the source is unchanged and
    /// was sanitized by the same rules; sets `node`'s content and size.
    fn reuse(&self, repo: &Repository, rel: &[u8], node: &mut Node, parent: Option<&Node>) -> bool {
        let (Some(p), Some(prev)) = (parent, self.parent.as_ref()) else {
            return false;
        };
        let path = self.path(rel);
        let recorded = prev.get(&path);
        let source_size = recorded.and_then(|e| e.source_size).unwrap_or(p.size);
        let same = p.kind == NodeKind::File
            && source_size == node.size
            && p.mtime_ns == node.mtime_ns
            && p.ctime_ns == node.ctime_ns
            && p.inode == node.inode;
        let all_stored = |ids: &[Id]| ids.iter().all(|id| repo.has_blob(id).unwrap_or(false));
        if !same
            || !all_stored(&p.lists)
            || for_each_segment(repo, p, |ids| {
                if all_stored(ids) {
                    Ok(())
                } else {
                    Err(Error::MissingBlob("a blob of the parent's copy".into()))
                }
            })
            .is_err()
        {
            return false;
        }
        Content::of(p).store_in(node);
        node.size = p.size;
        if let Some(e) = recorded {
            self.record(e.clone());
        }
        true
    }

    /// Stores the file at `path` redacted (or reuses the parent's copy).
    /// A file that cannot be redacted safely is an error naming why; the
    /// caller leaves it out with a warning.
    #[allow(clippy::too_many_arguments)]
    pub fn store(
        &self,
        repo: &Repository,
        packer: &Packer<'_>,
        path: &Path,
        rel: &[u8],
        format: Format,
        node: &mut Node,
        parent: Option<&Node>,
        progress: &dyn Fn(u64),
    ) -> Result<Redaction, FileError> {
        if self.reuse(repo, rel, node, parent) {
            return Ok(Redaction::Reused);
        }
        let (out, read) = self.read(path, rel, format, node.size)?;
        let io = |e| Error::io("reading", path, e);
        let (content, stored) = store_stream(
            &mut out.as_slice(),
            out.len() as u64,
            rel,
            repo.chunker(),
            packer,
            progress,
        )
        .map_err(|e| match e {
            StreamError::Read(e) => FileError::Source(io(e)),
            StreamError::Store(e) => FileError::Repo(e),
        })?;
        content.store_in(node);
        node.size = stored;
        Ok(Redaction::Stored { read })
    }

    /// Reads and redacts the file at `path` (`size` bytes when listed),
    /// recording what was redacted; returns the content and bytes read.
    pub fn read(
        &self,
        path: &Path,
        rel: &[u8],
        format: Format,
        size: u64,
    ) -> Result<(Vec<u8>, u64), FileError> {
        let io = |e| Error::io("reading", path, e);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(path)
            .map_err(io)?;
        // Never buffer more than the limit, even if the file grows.
        let mut data = Vec::new();
        f.take(MAX_SCAN_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(io)?;
        if data.len() as u64 > MAX_SCAN_BYTES {
            let why = format!(
                "larger than {} MiB, too large to redact in memory (add it to sanitize.keep to store it unredacted)",
                MAX_SCAN_BYTES >> 20
            );
            return Err(FileError::Source(Error::Invalid(self.exclude(rel, why))));
        }
        let read = data.len() as u64;
        let secret = |k: &str| self.rules.as_ref().is_some_and(|r| r.is_secret_key(k));
        let out = match redact(format, &data, &secret) {
            Ok(r) => r,
            Err(e) => {
                return Err(FileError::Source(Error::Invalid(
                    self.exclude(rel, e.to_string()),
                )))
            }
        };
        if !out.keys.is_empty() {
            self.record(SanitizedEntry {
                path: self.path(rel),
                action: SanitizeAction::Redacted,
                keys: out.keys,
                reason: None,
                source_size: Some(size),
            });
        }
        Ok((out.data, read))
    }
}
