//! Maps trees and files of the source repository to the target: files are
//! read back blob by blob and cut again with the target's chunker, trees
//! re-encoded with the new ids. Memos remember what is already mapped.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::{Mutex, MutexGuard};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};
use crate::pipeline::{store_stream, Progress, BATCH_BYTES};
use crate::repo::{BlobLocation, Packer, PackerStats, Repository};
use crate::snapshot::{
    for_each_segment, read_list, Content, ContentBuilder, Node, NodeKind, Tree, INLINE_IDS,
    LISTS_SINCE_VERSION,
};

/// At most this many folders are remembered (about 100 bytes each).
const MAX_TREES: usize = 1 << 18;
/// At most this many target blob and list ids are remembered for files (32
/// bytes each): the memory of the memos stays bounded whatever the data size.
const MAX_FILE_IDS: usize = 1 << 20;

/// Counters of work avoided and done.
#[derive(Clone, Debug, Default)]
pub(super) struct Counters {
    pub files_read: u64,
    pub bytes_read: u64,
    pub files_reused: u64,
    pub bytes_reused: u64,
    pub trees_reused: u64,
}

/// Where a folder sits: `None` for a part's root tree (its entries are the
/// captured paths, whose relative path is empty), else the folder's path
/// relative to its captured path (chunking rules match on it).
type Dir = Option<Vec<u8>>;

#[derive(Default)]
struct Memo {
    /// (source tree, where) -> target tree.
    trees: HashMap<(Id, Dir), Id>,
    /// Key of (relative path, source content) -> target content.
    files: HashMap<Id, Content>,
    file_ids: usize,
    counters: Counters,
}

/// Maps one source repository's snapshots into a target repository.
pub(super) struct Mapper<'a> {
    src: &'a Repository,
    dst: &'a Repository,
    packer: Packer<'a>,
    memo: Mutex<Memo>,
    progress: &'a dyn Progress,
    /// Both repositories name and cut blobs alike (`init
    /// --copy-chunker-params-from`): content ids carry over unchanged.
    same_ids: bool,
}

fn child_rel(dir: Option<&[u8]>, name: &[u8]) -> Vec<u8> {
    match dir {
        None => Vec::new(),
        Some([]) => name.to_vec(),
        Some(r) => [r, b"/", name].concat(),
    }
}

/// The relative path chunking rules see for a file (its name when it was
/// itself a captured path), and the memo key of its content there.
fn file_key(rel: &[u8], name: &[u8], n: &Node) -> (Vec<u8>, Id) {
    let rel = if rel.is_empty() { name } else { rel }.to_vec();
    let mut h = blake3::Hasher::new();
    h.update(&(rel.len() as u64).to_le_bytes());
    h.update(&rel);
    for id in &n.content {
        h.update(&id.0);
    }
    // A list id names its ids (it is their keyed hash): hashing the lists
    // keys the file as well as its data ids would, unread.
    h.update(b"lists");
    for id in &n.lists {
        h.update(&id.0);
    }
    (rel, Id(*h.finalize().as_bytes()))
}

impl<'a> Mapper<'a> {
    pub fn new(src: &'a Repository, dst: &'a Repository, progress: &'a dyn Progress) -> Self {
        Mapper {
            src,
            dst,
            packer: dst.packer(),
            memo: Mutex::new(Memo::default()),
            progress,
            same_ids: src.same_ids_as(dst),
        }
    }

    fn memo(&self) -> MutexGuard<'_, Memo> {
        self.memo.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> PackerStats {
        self.packer.stats()
    }

    pub fn counters(&self) -> Counters {
        self.memo().counters.clone()
    }

    /// Makes every blob sent so far durable and indexed.
    pub fn flush(&self) -> Result<()> {
        self.packer.flush()
    }

    /// Maps a part's root tree.
    pub fn root(&self, tree: Id) -> Result<Id> {
        self.tree(tree, None)
    }

    /// Learns from `copy`, the target's copy of the source tree `original`:
    /// their folders and files correspond entry by entry. Best effort: an
    /// unreadable tree only means less is learnt.
    pub fn seed(&self, original: Id, copy: Id) {
        let _ = self.pair(original, copy, None);
    }

    fn pair(&self, a: Id, b: Id, dir: Option<&[u8]>) -> Result<()> {
        let key = (a, dir.map(<[u8]>::to_vec));
        if self.memo().trees.contains_key(&key) {
            return Ok(());
        }
        let ta = Tree::decode(&self.src.read_blob(&a)?)?;
        let tb = Tree::decode(&self.dst.read_blob(&b)?)?;
        for n in &ta.nodes {
            let Some(m) = tb.get(&n.name).filter(|m| m.kind == n.kind) else {
                continue;
            };
            let rel = child_rel(dir, &n.name);
            if let (Some(x), Some(y)) = (n.subtree, m.subtree) {
                self.pair(x, y, Some(&rel))?;
            }
            if n.kind == NodeKind::File && n.size == m.size && n.has_content() {
                let (_, k) = file_key(&rel, &n.name, n);
                self.remember_file(k, &Content::of(m));
            }
        }
        let mut memo = self.memo();
        if memo.trees.len() < MAX_TREES {
            memo.trees.insert(key, b);
        }
        Ok(())
    }

    fn remember_file(&self, key: Id, content: &Content) {
        let mut memo = self.memo();
        if memo.file_ids + content.len() <= MAX_FILE_IDS
            && memo.files.insert(key, content.clone()).is_none()
        {
            memo.file_ids += content.len();
        }
    }

    fn tree(&self, id: Id, dir: Option<&[u8]>) -> Result<Id> {
        let key = (id, dir.map(<[u8]>::to_vec));
        {
            let mut memo = self.memo();
            if let Some(t) = memo.trees.get(&key).copied() {
                memo.counters.trees_reused += 1;
                return Ok(t);
            }
        }
        let tree = Tree::decode(&self.src.read_blob(&id)?)?;
        let nodes = tree
            .nodes
            .par_iter()
            .map(|n| self.node(n, dir))
            .collect::<Result<Vec<Node>>>()?;
        let new = self.packer.add(BlobKind::Tree, &Tree { nodes }.encode())?;
        let mut memo = self.memo();
        if memo.trees.len() < MAX_TREES {
            memo.trees.insert(key, new);
        }
        Ok(new)
    }

    fn node(&self, n: &Node, dir: Option<&[u8]>) -> Result<Node> {
        let rel = child_rel(dir, &n.name);
        let mut out = n.clone();
        if let Some(st) = n.subtree {
            out.subtree = Some(self.tree(st, Some(&rel))?);
        }
        if n.kind == NodeKind::File && n.has_content() {
            self.file(n, &rel)?.store_in(&mut out);
        }
        Ok(out)
    }

    fn file(&self, n: &Node, rel: &[u8]) -> Result<Content> {
        let (rel, key) = file_key(rel, &n.name, n);
        {
            let mut memo = self.memo();
            if let Some(c) = memo.files.get(&key).cloned() {
                memo.counters.files_reused += 1;
                memo.counters.bytes_reused += n.size;
                drop(memo);
                self.progress.advance(0, n.size);
                return Ok(c);
            }
        }
        if self.same_ids {
            return self.same_file(n, key);
        }
        let mut reader = BlobReader {
            repo: self.src,
            blobs: locate(self.src, &n.content)?.into(),
            lists: n.lists.iter().copied().collect(),
            ready: VecDeque::new(),
            current: Vec::new(),
            offset: 0,
            failed: None,
        };
        let progress = |b: u64| self.progress.advance(0, b);
        let stored = store_stream(
            &mut reader,
            n.size,
            &rel,
            self.dst.chunker(),
            &self.packer,
            &progress,
        );
        let (content, total) = match stored {
            Ok(x) => x,
            Err(e) => {
                return Err(match reader.failed.take() {
                    Some(source) => source,
                    None => e.map_err(|io| Error::Invalid(format!("copying a file: {io}"))),
                })
            }
        };
        {
            let mut memo = self.memo();
            memo.counters.files_read += 1;
            memo.counters.bytes_read += total;
        }
        self.remember_file(key, &content);
        Ok(content)
    }

    /// A file between repositories with the same ids: its blob ids are
    /// kept, only the blobs the target lacks (one index query per list)
    /// are read, in parallel groups, and stored without being cut or
    /// hashed again. Its content fields take the target's form: lists are
    /// spelled out inline for a target of format 1 or 2, and a large file
    /// inline in a source of format 1 or 2 gets lists in a target of
    /// format 3 (the same lists a snapshot there would write).
    fn same_file(&self, n: &Node, key: Id) -> Result<Content> {
        let lists_in_target = self.dst.config().version >= LISTS_SINCE_VERSION;
        let mut bytes = 0;
        let content = if !lists_in_target && !n.lists.is_empty() {
            let mut ids = Vec::new();
            for_each_segment(self.src, n, |s| {
                ids.extend_from_slice(s);
                Ok(())
            })?;
            bytes += self.copy_missing(&ids)?;
            Content {
                ids,
                lists: Vec::new(),
            }
        } else if lists_in_target && n.content.len() > INLINE_IDS {
            bytes += self.copy_missing(&n.content)?;
            let mut b = ContentBuilder::new(&self.packer);
            b.push(&n.content, &self.packer)?;
            b.finish(&self.packer)?
        } else {
            bytes += self.copy_missing(&n.content)?;
            for list in &n.lists {
                if !self.dst.index().contains(list)? {
                    let at = self.src.index().lookup_many(std::slice::from_ref(list))?;
                    let loc = at
                        .into_iter()
                        .next()
                        .flatten()
                        .ok_or_else(|| missing_in_source(list))?;
                    let plain = self.src.read_blob_at(list, &loc)?;
                    self.packer.add_missing(BlobKind::Tree, &[(*list, plain)])?;
                }
                bytes += self.copy_missing(&read_list(self.src, list)?)?;
            }
            Content::of(n)
        };
        let mut memo = self.memo();
        if bytes == 0 {
            memo.counters.files_reused += 1;
            memo.counters.bytes_reused += n.size;
        } else {
            memo.counters.files_read += 1;
            memo.counters.bytes_read += bytes;
        }
        drop(memo);
        self.remember_file(key, &content);
        Ok(content)
    }

    /// Copies those of `ids` the target lacks; returns their plaintext bytes.
    fn copy_missing(&self, ids: &[Id]) -> Result<u64> {
        let present = self.dst.index().contains_many(ids)?;
        let mut missing: Vec<Id> = ids
            .iter()
            .zip(present)
            .filter(|(_, p)| !p)
            .map(|(id, _)| *id)
            .collect();
        missing.sort();
        missing.dedup();
        let mut bytes = 0;
        let mut group: Vec<(Id, BlobLocation)> = Vec::new();
        let mut pending = locate(self.src, &missing)?.into_iter().peekable();
        while pending.peek().is_some() {
            let mut size = 0usize;
            group.clear();
            while let Some((_, loc)) = pending.peek() {
                let len = loc.raw_length as usize;
                if !group.is_empty() && size + len > BATCH_BYTES {
                    break;
                }
                size += len;
                group.extend(pending.next());
            }
            let opened = group
                .par_iter()
                .map(|(id, loc)| Ok((*id, self.src.read_blob_at(id, loc)?)))
                .collect::<Result<Vec<_>>>()?;
            self.packer.add_missing(BlobKind::Data, &opened)?;
            bytes += size as u64;
            self.progress.advance(0, size as u64);
        }
        Ok(bytes)
    }
}

fn missing_in_source(id: &Id) -> Error {
    Error::MissingBlob(format!(
        "{} (in the source repository; nothing of this snapshot is visible in the target)",
        id.to_hex()
    ))
}

/// Where `repo` (the source) stores `ids` (one index query).
fn locate(repo: &Repository, ids: &[Id]) -> Result<Vec<(Id, BlobLocation)>> {
    let locations = repo.index().lookup_many(ids)?;
    ids.iter()
        .zip(locations)
        .map(|(id, loc)| Ok((*id, loc.ok_or_else(|| missing_in_source(id))?)))
        .collect()
}

/// A file's content read back from its source blobs, in order. Blobs are
/// fetched, opened and decompressed in parallel, in groups of at most
/// [`BATCH_BYTES`] of plaintext.
struct BlobReader<'a> {
    repo: &'a Repository,
    blobs: VecDeque<(Id, BlobLocation)>,
    /// Content lists not read yet: one list's blobs are located at a time.
    lists: VecDeque<Id>,
    ready: VecDeque<Vec<u8>>,
    current: Vec<u8>,
    offset: usize,
    /// The library error behind an I/O error returned to the chunker.
    failed: Option<Error>,
}

impl BlobReader<'_> {
    fn fill(&mut self) -> Result<()> {
        if self.blobs.is_empty() {
            if let Some(list) = self.lists.pop_front() {
                self.blobs = locate(self.repo, &read_list(self.repo, &list)?)?.into();
            }
        }
        let mut group = Vec::new();
        let mut bytes = 0usize;
        while let Some((_, loc)) = self.blobs.front() {
            let len = loc.raw_length as usize;
            if !group.is_empty() && bytes + len > BATCH_BYTES {
                break;
            }
            bytes += len;
            group.push(self.blobs.pop_front().expect("front exists"));
        }
        let repo = self.repo;
        let opened = group
            .par_iter()
            .map(|(id, loc)| repo.read_blob_at(id, loc))
            .collect::<Result<Vec<_>>>()?;
        self.ready.extend(opened);
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.offset >= self.current.len() {
            if let Some(next) = self.ready.pop_front() {
                self.current = next;
                self.offset = 0;
                continue;
            }
            if self.blobs.is_empty() && self.lists.is_empty() {
                return Ok(0);
            }
            if let Err(e) = self.fill() {
                let msg = e.to_string();
                self.failed = Some(e);
                return Err(std::io::Error::other(msg));
            }
        }
        let n = buf.len().min(self.current.len() - self.offset);
        buf[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}
