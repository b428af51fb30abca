//! Collects new blobs into packs. Shared by the pipeline's worker threads:
//! compression and sealing run on the caller's thread, only the append to the
//! open pack is serialised. Write order (`docs/FORMAT.md` §10): a pack is
//! durable before its blobs enter the index.
//!
//! A full pack is sealed, then moved into the backend on a thread of its
//! own while the next pack fills: at most [`MAX_UPLOADS`] wait in the
//! queue, and the thread whose blob fills a pack beyond that takes the
//! oldest out, waits for it and indexes its blobs, outside the packer's
//! lock so the other threads go on adding. Blobs stay in the packer's
//! `pending` set (so they are not stored twice) until their upload has
//! succeeded and they are in the index.
//!
//! Small data blobs are not sealed one by one: they collect in an open
//! group, compressed and sealed together once it holds [`GROUP_TARGET`]
//! bytes (`docs/FORMAT.md` §5.5). Database pages and small files compress
//! far better side by side than alone, and one seal replaces hundreds.
//!
//! In repositories of format version 2 and later, blobs whose bytes look
//! like 4-byte values (vectors, integer lists) are compressed over their
//! lanes (`crate::lanes`): a large blob is sampled alone, a batch of
//! small ones as a whole, and small blobs of either kind fill groups of
//! their own, so a group of vectors is not compressed with database pages.

use std::collections::{HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::pack::{PackWriter, SealedPack};
use super::{blob, Repository};
use crate::compress::Codec;
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};

/// What a packer wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackerStats {
    /// Blobs stored anew.
    pub new_blobs: u64,
    /// Their plaintext bytes.
    pub new_raw_bytes: u64,
    /// Their sealed bytes, as stored.
    pub new_stored_bytes: u64,
    /// Blobs already stored (deduplicated).
    pub dup_blobs: u64,
    /// Plaintext bytes of deduplicated blobs.
    pub dup_raw_bytes: u64,
    /// Packs finished.
    pub packs: u64,
}

/// Data blobs up to this size are kept in groups.
pub const GROUP_MEMBER_MAX: usize = 64 << 10;
/// A group is sealed once its members hold this many bytes: zstd keeps
/// gaining up to about 1 MiB on database pages and JSON, and a reader opens
/// a whole group for one member, so larger groups would cost restores of
/// single small files.
pub const GROUP_TARGET: usize = 1 << 20;
/// Lowest zstd level for groups. Measured on the reference data set's
/// first backup (1.2 GB): blobs one by one at level 1, 805 MiB stored in
/// 5.9 s of user time; groups at level 2, 750 MiB in 5.6-5.8 s; groups at
/// level 3, 742 MiB in 6.7 s.
pub const GROUP_MIN_LEVEL: i32 = 2;

/// The zstd level of groups in a repository whose level is `configured`
/// (0: no compression).
pub fn group_level(configured: i32) -> i32 {
    match configured {
        0 => 0,
        l => l.max(GROUP_MIN_LEVEL),
    }
}

/// The first format version whose readers know frames compressed over
/// their lanes (`docs/FORMAT.md` §5.1).
pub const LANES_SINCE_VERSION: u32 = 2;

/// Whether blobs of `repo` may be compressed over their lanes.
fn lanes_allowed(repo: &Repository) -> bool {
    repo.config().version >= LANES_SINCE_VERSION && repo.config().compression_level > 0
}

/// Whether `parts` (pieces of one stream) should be compressed over their
/// lanes in `repo`: the packer and repack must choose alike, so a repacked
/// member lands in the same kind of group it was first stored in.
pub(super) fn takes_lanes(repo: &Repository, parts: &[&[u8]]) -> bool {
    lanes_allowed(repo) && crate::lanes::sample(parts).helps()
}

/// Seals the concatenated plaintexts of a group at the repository's
/// group level, over their lanes when `lanes` and the repository allows.
pub(super) fn seal_group(repo: &Repository, kind: BlobKind, data: &[u8], lanes: bool) -> Vec<u8> {
    let lanes = lanes && lanes_allowed(repo);
    // Lanes of vectors compress best at level 1 (0.820 of their size on the
    // reference HNSW segments, 0.826 at level 2, 0.830 at 3).
    let configured = repo.config().compression_level;
    let codec = Codec {
        level: if lanes {
            configured
        } else {
            group_level(configured)
        },
        lanes,
    };
    blob::seal_group(repo.sealer(), kind, data, codec)
}

/// Small blobs waiting to be sealed together.
#[derive(Default)]
struct OpenGroup {
    members: Vec<(Id, u32)>,
    data: Vec<u8>,
}

/// A thread's open groups, each locked on its own (never while holding
/// the packer's `state`), so copying a small blob in does not wait for a
/// pack append. Index 1: the group of blobs compressed over their lanes.
type GroupPair = [Mutex<OpenGroup>; 2];

/// Packs uploaded at once while the next one fills (each upload of a
/// large pack to S3 also sends two parts at a time).
pub const MAX_UPLOADS: usize = 2;

type Upload = JoinHandle<(SealedPack, Result<()>)>;

struct State {
    writer: Option<PackWriter>,
    pending: HashSet<Id>,
    stats: PackerStats,
    uploads: VecDeque<Upload>,
    /// Uploads taken out of `uploads` and being indexed outside the lock.
    completing: usize,
}

/// Writes new blobs into packs; see the module doc.
pub struct Packer<'r> {
    repo: &'r Repository,
    state: Mutex<State>,
    /// Signalled when a completion outside the lock ends.
    completed: Condvar,
    /// Open groups, a pair per thread of the pool (and one for threads
    /// outside it); see [`Packer::open_group`].
    groups: Vec<GroupPair>,
    /// Whether this repository's blobs may be compressed over their lanes.
    lanes: bool,
}

impl<'r> Packer<'r> {
    pub(super) fn new(repo: &'r Repository) -> Packer<'r> {
        Packer {
            repo,
            state: Mutex::new(State {
                writer: None,
                pending: HashSet::new(),
                stats: PackerStats::default(),
                uploads: VecDeque::new(),
                completing: 0,
            }),
            completed: Condvar::new(),
            groups: (0..=rayon::current_num_threads())
                .map(|_| GroupPair::default())
                .collect(),
            lanes: lanes_allowed(repo),
        }
    }

    /// The repository this packer writes to.
    pub fn repo(&self) -> &'r Repository {
        self.repo
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn known(&self, id: &Id) -> Result<bool> {
        // Two statements: the lock must be released before the index query,
        // which can wait for another thread's pack insert.
        let pending = self.lock().pending.contains(id);
        Ok(pending || self.repo.index().contains(id)?)
    }

    /// Stores `data` as a blob unless an identical one is stored; returns its id.
    pub fn add(&self, kind: BlobKind, data: &[u8]) -> Result<Id> {
        let id = self.repo.blob_id(data);
        self.add_with_id(kind, id, data)?;
        Ok(id)
    }

    /// [`Packer::add`] for a batch of chunks: ids are computed and the
    /// new chunks sealed in parallel, and the index is asked about the
    /// whole batch in one transaction rather than once per chunk.
    pub fn add_batch(&self, kind: BlobKind, chunks: &[&[u8]]) -> Result<Vec<Id>> {
        use rayon::prelude::*;
        let ids: Vec<Id> = chunks.par_iter().map(|c| self.repo.blob_id(c)).collect();
        let indexed = self.repo.index().contains_many(&ids)?;
        // One sample for the whole batch: its small chunks are pieces of
        // one stream, too small to be told apart one by one.
        let lanes = self.lanes && takes_lanes(self.repo, chunks);
        chunks
            .par_iter()
            .zip(ids.par_iter())
            .zip(indexed.par_iter())
            .try_for_each(|((data, id), indexed)| {
                if *indexed {
                    self.count_dup(data.len());
                    Ok(())
                } else {
                    self.add_unindexed(kind, *id, data, Some(lanes)).map(|_| ())
                }
            })?;
        Ok(ids)
    }

    /// Stores blobs whose ids the caller computed and found missing from
    /// the index (one batch query), sealing them in parallel; blobs this
    /// packer already holds are counted as duplicates. Each id must be this
    /// repository's id of its data (for instance read and verified from a
    /// repository with the same id key): a wrong one is only found when
    /// the blob is read back.
    pub fn add_missing(&self, kind: BlobKind, blobs: &[(Id, Vec<u8>)]) -> Result<()> {
        use rayon::prelude::*;
        blobs
            .par_iter()
            .try_for_each(|(id, data)| self.add_unindexed(kind, *id, data, None).map(|_| ()))
    }

    fn count_dup(&self, len: usize) {
        let mut s = self.lock();
        s.stats.dup_blobs += 1;
        s.stats.dup_raw_bytes += len as u64;
    }

    /// Like [`Packer::add`] with the id already computed. Returns whether
    /// the blob was new.
    pub fn add_with_id(&self, kind: BlobKind, id: Id, data: &[u8]) -> Result<bool> {
        if self.known(&id)? {
            self.count_dup(data.len());
            return Ok(false);
        }
        self.add_unindexed(kind, id, data, None)
    }

    /// Stores a blob the index does not hold (unless this packer already
    /// has it pending). Returns whether it was new. `batch_lanes`: whether
    /// the batch it came with takes lanes; `None`: sample the blob itself.
    fn add_unindexed(
        &self,
        kind: BlobKind,
        id: Id,
        data: &[u8],
        batch_lanes: Option<bool>,
    ) -> Result<bool> {
        if self.lock().pending.contains(&id) {
            self.count_dup(data.len());
            return Ok(false);
        }
        let own_lanes = || self.lanes && takes_lanes(self.repo, &[data]);
        if kind == BlobKind::Data && !data.is_empty() && data.len() <= GROUP_MEMBER_MAX {
            let lanes = batch_lanes.unwrap_or_else(own_lanes);
            return self.add_to_group(kind, id, data, lanes);
        }
        let codec = Codec {
            level: self.repo.config().compression_level,
            lanes: own_lanes(),
        };
        let sealed = blob::seal(self.repo.sealer(), kind, &id, data, codec);
        let mut s = self.lock();
        if !s.pending.insert(id) {
            // Another thread stored the same content meanwhile.
            s.stats.dup_blobs += 1;
            s.stats.dup_raw_bytes += data.len() as u64;
            return Ok(false);
        }
        s.stats.new_blobs += 1;
        s.stats.new_raw_bytes += data.len() as u64;
        self.append(s, sealed.len(), |w| {
            w.add(kind, id, &sealed, data.len() as u32)
        })?;
        Ok(true)
    }

    /// Appends sealed bytes to the open pack (started if none is) with
    /// `add`; finishes the pack when it is full. Takes the lock `s` and
    /// releases it before indexing a finished upload: inserting a pack's
    /// rows (tens of milliseconds for a pack of database pages) under the
    /// lock stalled every other thread's next blob.
    fn append(
        &self,
        mut s: MutexGuard<'_, State>,
        sealed_len: usize,
        add: impl FnOnce(&mut PackWriter) -> Result<()>,
    ) -> Result<()> {
        if s.writer.is_none() {
            s.writer = Some(PackWriter::create(self.repo.tmp_dir())?);
        }
        let w = s.writer.as_mut().expect("just created");
        if let Err(e) = add(w) {
            // A short write leaves part of a blob in the file: every later
            // offset would be wrong. Drop the pack; the operation fails.
            if let Some(w) = s.writer.take() {
                w.abandon();
            }
            s.pending.clear();
            return Err(e);
        }
        let full = w.size() >= self.repo.config().pack_target_size;
        s.stats.new_stored_bytes += sealed_len as u64;
        if full {
            // The lock comes back only to be released here.
            drop(self.finish_pack(s)?);
        }
        Ok(())
    }

    /// Puts a small blob into the open group of its kind of bytes (`lanes`);
    /// seals the group when full.
    fn add_to_group(&self, kind: BlobKind, id: Id, data: &[u8], lanes: bool) -> Result<bool> {
        {
            let mut s = self.lock();
            if !s.pending.insert(id) {
                s.stats.dup_blobs += 1;
                s.stats.dup_raw_bytes += data.len() as u64;
                return Ok(false);
            }
            s.stats.new_blobs += 1;
            s.stats.new_raw_bytes += data.len() as u64;
        }
        let full = {
            let mut g = self.open_group(lanes);
            g.members.push((id, data.len() as u32));
            g.data.extend_from_slice(data);
            (g.data.len() >= GROUP_TARGET).then(|| std::mem::take(&mut *g))
        };
        if let Some(g) = full {
            self.write_group(kind, g, lanes)?;
        }
        Ok(true)
    }

    /// The calling thread's open group of its kind of bytes (`lanes`).
    /// A group per thread, not one shared: the threads storing a batch
    /// take contiguous ranges of its chunks, so each group holds pages
    /// that follow each other in one file, where a shared group took
    /// them alternately from two places (or two files). A restore then
    /// finds a file's pages in fewer groups, and opens a group shared
    /// with another file less often.
    fn open_group(&self, lanes: bool) -> MutexGuard<'_, OpenGroup> {
        let slot = rayon::current_thread_index().map_or(0, |i| i + 1) % self.groups.len();
        self.groups[slot][usize::from(lanes)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Compresses and seals a group (on the caller's thread, outside the
    /// locks), then appends it to the open pack.
    fn write_group(&self, kind: BlobKind, g: OpenGroup, lanes: bool) -> Result<()> {
        if g.members.is_empty() {
            return Ok(());
        }
        let sealed = seal_group(self.repo, kind, &g.data, lanes);
        let s = self.lock();
        self.append(s, sealed.len(), |w| w.add_group(kind, &g.members, &sealed))
    }

    /// Seals the open pack (if any) and starts its upload. When more than
    /// [`MAX_UPLOADS`] are then in flight, the oldest is taken out and
    /// completed once the lock `s` is released. Returns the lock, retaken
    /// if it was released.
    fn finish_pack<'a>(&'a self, mut s: MutexGuard<'a, State>) -> Result<MutexGuard<'a, State>> {
        let Some(w) = s.writer.take() else {
            return Ok(s);
        };
        let sealed = w.seal(self.repo.sealer())?;
        let backend = self.repo.backend_shared();
        let upload = std::thread::Builder::new()
            .name("opc-upload".into())
            .spawn(move || {
                let r = sealed.put(backend.as_ref());
                (sealed, r)
            })
            .map_err(|e| Error::io("starting an upload of", "a pack", e))?;
        s.uploads.push_back(upload);
        s.stats.packs += 1;
        if s.uploads.len() <= MAX_UPLOADS {
            return Ok(s);
        }
        let r;
        (s, r) = self.complete_oldest(s);
        r.map(|_| s)
    }

    /// Waits for an upload taken out of the queue (counted in
    /// `completing`); once its pack is stored, its blobs enter the index
    /// and leave the pending set. Call without holding the lock.
    fn complete(&self, upload: Upload) -> Result<()> {
        let r = upload
            .join()
            .map_err(|_| Error::Invalid("a pack upload thread panicked".into()))
            .and_then(|(sealed, r)| {
                r?;
                self.repo
                    .index()
                    .add_pack(&sealed.id, sealed.size, &sealed.entries)?;
                Ok(sealed)
            });
        let mut s = self.lock();
        s.completing -= 1;
        if let Ok(sealed) = &r {
            for e in &sealed.entries {
                s.pending.remove(&e.id);
            }
        }
        self.completed.notify_all();
        r.map(|_| ())
    }

    /// Completes the oldest upload in the queue; the lock `s` is released
    /// meanwhile and returned retaken.
    fn complete_oldest<'a>(
        &'a self,
        mut s: MutexGuard<'a, State>,
    ) -> (MutexGuard<'a, State>, Result<()>) {
        let Some(upload) = s.uploads.pop_front() else {
            return (s, Ok(()));
        };
        s.completing += 1;
        drop(s);
        let r = self.complete(upload);
        (self.lock(), r)
    }

    /// Finishes the open pack and waits for every upload, so every blob
    /// added so far is durable and indexed.
    pub fn flush(&self) -> Result<()> {
        for pair in &self.groups {
            for (lanes, group) in [false, true].into_iter().zip(pair) {
                let open = std::mem::take(&mut *group.lock().unwrap_or_else(|p| p.into_inner()));
                self.write_group(BlobKind::Data, open, lanes)?;
            }
        }
        let mut s = self.finish_pack(self.lock())?;
        loop {
            if !s.uploads.is_empty() {
                let r;
                (s, r) = self.complete_oldest(s);
                r?;
            } else if s.completing > 0 {
                // Another thread is indexing a pack it took out of the queue.
                s = self.completed.wait(s).unwrap_or_else(|p| p.into_inner());
            } else {
                return Ok(());
            }
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> PackerStats {
        self.lock().stats.clone()
    }
}

impl Drop for Packer<'_> {
    fn drop(&mut self) {
        // An unflushed pack belongs to a failed operation: nothing refers to
        // it yet, so dropping its temp file loses nothing.
        let mut s = self.lock();
        if let Some(w) = s.writer.take() {
            w.abandon();
        }
        // Uploads in flight finish (or fail) before the repository goes
        // away; a pack that made it is found by the next open's pack sync.
        while !s.uploads.is_empty() {
            let r;
            (s, r) = self.complete_oldest(s);
            if let Err(e) = r {
                tracing::debug!("pack upload of a failed operation: {e}");
            }
        }
    }
}
