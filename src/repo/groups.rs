//! Reading blobs kept in groups (`docs/FORMAT.md` §5.5). A group is
//! authenticated and decompressed whole, so the last few opened are kept:
//! a restore takes a database's pages, or a folder's small files, one after
//! another out of the same group.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{blob, BlobLocation, Repository};
use crate::error::Result;
use crate::id::Id;

/// Opened groups kept (each about 1 MiB).
const KEPT: usize = 8;

/// An opened group: pack, offset, plaintext.
type Opened = (Id, u64, Arc<Vec<u8>>);

/// The last groups opened, newest last.
#[derive(Default)]
pub(super) struct GroupCache {
    recent: Mutex<VecDeque<Opened>>,
    opened: AtomicU64,
}

impl GroupCache {
    fn get(&self, pack: &Id, offset: u64) -> Option<Arc<Vec<u8>>> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .iter()
            .rev()
            .find(|(p, o, _)| p == pack && *o == offset)
            .map(|(_, _, g)| Arc::clone(g))
    }

    fn clear(&self) {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn put(&self, pack: Id, offset: u64, group: Arc<Vec<u8>>) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back((pack, offset, group));
        if recent.len() > KEPT {
            recent.pop_front();
        }
    }
}

/// Opened groups kept at most by a [`GroupHold`] (each about 1 MiB).
const HELD: usize = 16;

/// A group's place: pack and offset.
type GroupKey = (Id, u64);

/// Opened groups a reader keeps between reads because it knows they are
/// read again: a restore writing a large file a slice at a time keeps
/// those of one slice that the next slice also reads (after in-place
/// writes, a group of changed database pages spans the whole file). At
/// most [`HELD`] are kept; reads that find none open them as usual.
#[derive(Default)]
pub struct GroupHold {
    wanted: HashSet<GroupKey>,
    held: Mutex<HashMap<GroupKey, Arc<Vec<u8>>>>,
}

impl GroupHold {
    /// From now on keeps, of the groups opened, those of `next` (the
    /// read after the current one). Call before the current read.
    pub fn want(&mut self, next: &[BlobLocation]) {
        self.wanted = next
            .iter()
            .filter(|l| l.group.is_some())
            .map(|l| (l.pack, l.offset))
            .collect();
    }

    /// Drops the groups held that the next read does not want. Call
    /// after the current read.
    pub fn done(&mut self) {
        let wanted = &self.wanted;
        self.held
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| wanted.contains(k));
    }

    fn get(&self, key: &GroupKey) -> Option<Arc<Vec<u8>>> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(key).map(Arc::clone)
    }

    fn offer(&self, key: GroupKey, group: &Arc<Vec<u8>>) {
        if !self.wanted.contains(&key) {
            return;
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.len() < HELD {
            held.entry(key).or_insert_with(|| Arc::clone(group));
        }
    }
}

impl Repository {
    /// Forgets the groups kept from earlier reads: the next read of a
    /// grouped blob reads its pack again. For a long-lived reader that must
    /// see storage as it is now (packs never change, but can be damaged).
    pub fn clear_read_caches(&self) {
        self.groups.clear();
    }

    /// Groups this handle has opened (authenticated and decompressed,
    /// not found already open): the work of reading small blobs, for
    /// diagnostics and for tests of the order reads are made in.
    pub fn groups_opened(&self) -> u64 {
        self.groups.opened.load(Ordering::Relaxed)
    }

    /// The plaintext of the group holding the blob at `loc`: from the
    /// cache, else opened from `sealed` (the group's stored bytes) or read
    /// from its pack. `sealed` is decrypted where it lies. `id` names the
    /// member in errors.
    pub(super) fn group_at(
        &self,
        id: &Id,
        loc: &BlobLocation,
        sealed: Option<&mut [u8]>,
    ) -> Result<Arc<Vec<u8>>> {
        self.group_held(id, loc, sealed, None)
    }

    /// [`Repository::group_at`], looking first in `hold` and offering it
    /// the group.
    pub(super) fn group_held(
        &self,
        id: &Id,
        loc: &BlobLocation,
        sealed: Option<&mut [u8]>,
        hold: Option<&GroupHold>,
    ) -> Result<Arc<Vec<u8>>> {
        let key = (loc.pack, loc.offset);
        if let Some(g) = hold.and_then(|h| h.get(&key)) {
            return Ok(g);
        }
        let g = self.group_open(id, loc, sealed)?;
        if let Some(h) = hold {
            h.offer(key, &g);
        }
        Ok(g)
    }

    fn group_open(
        &self,
        id: &Id,
        loc: &BlobLocation,
        sealed: Option<&mut [u8]>,
    ) -> Result<Arc<Vec<u8>>> {
        if let Some(g) = self.groups.get(&loc.pack, loc.offset) {
            return Ok(g);
        }
        let total = loc.group.map_or(0, |g| g.total) as usize;
        let what = || {
            format!(
                "blob {} (in the group at offset {}) in pack {}",
                id.short(),
                loc.offset,
                loc.pack
            )
        };
        let g = Arc::new(match sealed {
            Some(s) => blob::open_group_in(self.sealer(), loc.kind, s, total, &what)?,
            None => {
                let read = self.read_pack_range(id, loc, loc.offset, loc.length.into())?;
                blob::open_group_owned(self.sealer(), loc.kind, read, total, &what)?
            }
        });
        self.groups.put(loc.pack, loc.offset, Arc::clone(&g));
        self.groups.opened.fetch_add(1, Ordering::Relaxed);
        Ok(g)
    }

    /// Reads blob `id`, kept in the group at `loc` (looked for in `hold`
    /// first), and checks it; the bytes stay in the opened group (no copy).
    pub(super) fn member_bytes(
        &self,
        id: &Id,
        loc: &BlobLocation,
        hold: Option<&GroupHold>,
    ) -> Result<BlobBytes> {
        let g = self.group_held(id, loc, None, hold)?;
        self.member_of(g, id, loc)
    }

    /// Member `id` at `loc` of the opened group `g`, checked against its id.
    pub(super) fn member_of(
        &self,
        g: Arc<Vec<u8>>,
        id: &Id,
        loc: &BlobLocation,
    ) -> Result<BlobBytes> {
        let slot = loc.group.expect("a grouped location");
        let data = blob::member(
            &g,
            |d| self.blob_id(d),
            id,
            slot,
            loc.raw_length as usize,
            &|| format!("blob {} in pack {}", id.short(), loc.pack),
        )?;
        let start = slot.inner as usize;
        let end = start + data.len();
        Ok(BlobBytes::Member(g, start..end))
    }
}

/// A blob's plaintext: its own buffer, or its bytes inside an opened group
/// shared with the group cache (taking a member out of its group is then
/// no copy).
#[derive(Clone)]
pub enum BlobBytes {
    /// A blob stored alone.
    Owned(Vec<u8>),
    /// A member: its group's plaintext and where in it the member lies.
    Member(Arc<Vec<u8>>, std::ops::Range<usize>),
}

impl BlobBytes {
    /// The plaintext as a buffer of its own (a copy only for a member).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            BlobBytes::Owned(v) => v,
            BlobBytes::Member(g, r) => g[r].to_vec(),
        }
    }
}

impl std::ops::Deref for BlobBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            BlobBytes::Owned(v) => v,
            BlobBytes::Member(g, r) => &g[r.clone()],
        }
    }
}
