//! A file's content as its node stores it: the data blob ids inline, or,
//! for a file of more than [`INLINE_IDS`] blobs (format 3), list blobs of
//! ids. Format: `docs/FORMAT.md` §8.1.
//!
//! Why lists: a folder listing holding a 1 GB database's 4 KiB pages
//! inline is 8 MB, and every reader of that folder held all of it (restore
//! held each folder's listing while its files were written), so memory grew
//! with the data. With lists, a reader holds one list at a time, and a
//! folder whose large file changed re-stores a small listing.

use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};
use crate::repo::{Packer, Repository};

use super::tree::Node;

/// Data blob ids per list blob (2 MiB of ids; 256 MiB of 4 KiB pages).
///
/// Readers take a file a list (a segment) at a time, so this also sets
/// how much restore locates and writes at once: memory stays flat with
/// file size (the locations of a 1 GB database's 260,000 pages, all at
/// once, took 17 MB; a segment's about 4 MB). Not fewer: every segment
/// ends waiting for its slowest run, and a group whose members fall in two
/// segments is opened twice. On the reference data set's 272 MB database
/// (68,000 pages) segments of 8,192 took a restore of its part alone
/// 0.92-1.05 s, 32,768 0.93-1.16 s, 65,536 0.79-0.86 s.
pub const LIST_IDS: usize = 65536;

/// A file of at most this many blobs (128 KiB of ids) keeps them inline in
/// its folder's listing: one blob read fewer for the many small files, and
/// a listing never holds more than this per file.
pub const INLINE_IDS: usize = 4096;

/// The first format version whose writers store content lists.
pub const LISTS_SINCE_VERSION: u32 = 3;

/// The content fields of a file node, moved or cloned as one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Content {
    /// Data blob ids, for a file of at most [`INLINE_IDS`] blobs.
    pub ids: Vec<Id>,
    /// List blob ids, for a larger file (`ids` is then empty).
    pub lists: Vec<Id>,
}

impl Content {
    /// A copy of `node`'s content fields.
    pub fn of(node: &Node) -> Content {
        Content {
            ids: node.content.clone(),
            lists: node.lists.clone(),
        }
    }

    /// Sets `node`'s content fields.
    pub fn store_in(self, node: &mut Node) {
        node.content = self.ids;
        node.lists = self.lists;
    }

    /// Whether the file is empty (no blobs).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.lists.is_empty()
    }

    /// Ids held here (data ids, or list ids), for bounding memos.
    pub fn len(&self) -> usize {
        self.ids.len() + self.lists.len()
    }
}

impl Node {
    /// Whether this file has content (inline or in lists).
    pub fn has_content(&self) -> bool {
        !self.content.is_empty() || !self.lists.is_empty()
    }
}

/// The plaintext of a list blob: the ids, 32 bytes each, concatenated.
pub fn encode_list(ids: &[Id]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 32);
    for id in ids {
        out.extend_from_slice(&id.0);
    }
    out
}

/// Decodes a list blob's plaintext: a whole number of ids, at least one,
/// at most [`LIST_IDS`].
pub fn decode_list(b: &[u8]) -> Result<Vec<Id>> {
    if b.is_empty() || b.len() % 32 != 0 || b.len() / 32 > LIST_IDS {
        return Err(Error::corrupt(
            "content list",
            format!("{} bytes is not 1 to {LIST_IDS} ids of 32 bytes", b.len()),
        ));
    }
    Ok(b.chunks_exact(32)
        .map(|c| Id(c.try_into().expect("chunks_exact gives 32 bytes")))
        .collect())
}

/// Reads and decodes the list blob `id`.
pub fn read_list(repo: &Repository, id: &Id) -> Result<Vec<Id>> {
    decode_list(&repo.read_blob(id)?)
}

/// Hands `f` the data blob ids of `node`'s content in file order, at most
/// [`LIST_IDS`] at a time: inline ids in pieces, else one list at a time,
/// each read when its turn comes.
pub fn for_each_segment(
    repo: &Repository,
    node: &Node,
    mut f: impl FnMut(&[Id]) -> Result<()>,
) -> Result<()> {
    for ids in node.content.chunks(LIST_IDS) {
        f(ids)?;
    }
    for list in &node.lists {
        f(&read_list(repo, list)?)?;
    }
    Ok(())
}

/// Collects a file's data blob ids as they are stored and writes a list
/// blob whenever [`LIST_IDS`] more have come, when the repository's format
/// has lists: a file being stored then holds one list's worth of ids.
/// A file of at most [`INLINE_IDS`] blobs ends with them inline, any
/// other in lists of [`LIST_IDS`] ids but the last, so the same content
/// always gives the same node.
pub struct ContentBuilder {
    ids: Vec<Id>,
    lists: Vec<Id>,
    use_lists: bool,
}

impl ContentBuilder {
    /// A builder for a file stored through `packer`.
    pub fn new(packer: &Packer<'_>) -> ContentBuilder {
        ContentBuilder {
            ids: Vec::new(),
            lists: Vec::new(),
            use_lists: packer.repo().config().version >= LISTS_SINCE_VERSION,
        }
    }

    /// Reserves room for about `n` more ids (no more than a list holds
    /// when lists are written).
    pub fn reserve(&mut self, n: usize) {
        let n = if self.use_lists { n.min(LIST_IDS) } else { n };
        self.ids.reserve(n.saturating_sub(self.ids.len()));
    }

    /// Appends `ids` in order; full lists go to `packer`.
    pub fn push(&mut self, mut ids: &[Id], packer: &Packer<'_>) -> Result<()> {
        if !self.use_lists {
            self.ids.extend_from_slice(ids);
            return Ok(());
        }
        while !ids.is_empty() {
            // A full list is written only when more follows, so that the
            // last list is never empty.
            if self.ids.len() == LIST_IDS {
                self.flush(packer)?;
            }
            let take = (LIST_IDS - self.ids.len()).min(ids.len());
            self.ids.extend_from_slice(&ids[..take]);
            ids = &ids[take..];
        }
        Ok(())
    }

    fn flush(&mut self, packer: &Packer<'_>) -> Result<()> {
        let id = packer.add(BlobKind::Tree, &encode_list(&self.ids))?;
        self.lists.push(id);
        self.ids.clear();
        Ok(())
    }

    /// The content to record in the file's node.
    pub fn finish(mut self, packer: &Packer<'_>) -> Result<Content> {
        if self.lists.is_empty() && (!self.use_lists || self.ids.len() <= INLINE_IDS) {
            self.ids.shrink_to_fit();
            return Ok(Content {
                ids: self.ids,
                lists: Vec::new(),
            });
        }
        if !self.ids.is_empty() {
            self.flush(packer)?;
        }
        Ok(Content {
            ids: Vec::new(),
            lists: self.lists,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_round_trip_and_bad_lengths() {
        let ids: Vec<Id> = (0..3u8).map(|i| Id([i; 32])).collect();
        assert_eq!(decode_list(&encode_list(&ids)).unwrap(), ids);
        for bad in [0usize, 31, 33, (LIST_IDS + 1) * 32] {
            let e = decode_list(&vec![7u8; bad]).unwrap_err().to_string();
            assert!(e.contains("content list"), "{bad}: {e}");
        }
    }
}
