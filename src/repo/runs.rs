//! Reading blobs stored near each other with one request: on S3 every read
//! is a round trip, and a file's chunks sit close together in few packs
//! (in the order the pipeline's threads appended them), so a restore reads
//! runs of them, not one chunk at a time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use super::groups::{BlobBytes, GroupHold};
use super::{blob, pack, BlobLocation, Repository};
use crate::error::{Error, Result};
use crate::id::Id;

/// Bytes of a pack read at once from remote storage when a run is shorter.
pub const WINDOW_BYTES: u64 = 4 << 20;
/// Windows kept (so at most 32 MiB).
const WINDOWS: usize = 8;

/// A window: pack, offset of its first byte, its bytes.
type Window = (Id, u64, Arc<Vec<u8>>);

/// The last pack windows read from remote storage: a restore of many small
/// files finds the next file's blobs in the window the previous file's
/// read brought in, instead of making a request per file.
#[derive(Default)]
pub(super) struct Windows {
    recent: Mutex<VecDeque<Window>>,
    sizes: OnceLock<HashMap<Id, u64>>,
}

/// Most bytes read with one request from remote storage.
pub const RUN_BYTES: u64 = 8 << 20;
/// Most bytes read with one request from a local repository, where a
/// request is a system call, not a round trip: a run's bytes, their
/// plaintexts and the joined pages are all in memory at once on every
/// thread, and 8 MiB runs took a restore of the `--scale 4` data set to
/// 134 MB at its peak (2 MiB: 88-93 MB, in the same time).
pub const LOCAL_RUN_BYTES: u64 = 2 << 20;
/// Bytes between two blobs of one run that are read and dropped (blobs
/// of other files appended in between).
pub const RUN_GAP: u64 = 256 << 10;

/// Plaintext a run may open, as a multiple of its stored span: the
/// plaintexts of a run are all in memory until it is written, and blobs
/// that compress well (6:1 for a time-series database's chunks) made 2 MiB
/// runs of 12 MB each, the largest part of a `--scale 4` restore's peak.
pub const RUN_RAW_FACTOR: u64 = 2;

/// Groups the blobs at `locs` into runs: indices into `locs`, sorted by
/// pack and offset, whose span in one pack (gaps of at most [`RUN_GAP`]
/// included) is at most `max_bytes` (see [`Repository::run_bytes`]) and
/// whose plaintexts add up to at most [`RUN_RAW_FACTOR`] times that; a
/// larger blob is a run of its own.
pub fn blob_runs(locs: &[BlobLocation], max_bytes: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..locs.len()).collect();
    order.sort_by_key(|&i| (locs[i].pack.0, locs[i].offset));
    // A run, the end of its span, its plaintext bytes.
    let mut runs: Vec<(Vec<usize>, u64, u64)> = Vec::new();
    for i in order {
        let l = &locs[i];
        let end = l.offset + u64::from(l.length);
        let raw = u64::from(l.raw_length);
        if let Some((run, run_end, run_raw)) = runs.last_mut() {
            let first = &locs[run[0]];
            if l.pack == first.pack
                && l.offset <= *run_end + RUN_GAP
                && end.max(*run_end) - first.offset <= max_bytes
                && *run_raw + raw <= max_bytes * RUN_RAW_FACTOR
            {
                run.push(i);
                *run_end = end.max(*run_end);
                *run_raw += raw;
                continue;
            }
        }
        runs.push((vec![i], end, raw));
    }
    runs.into_iter().map(|(r, _, _)| r).collect()
}

impl Repository {
    /// The longest run [`blob_runs`] should form for this repository's
    /// storage: [`RUN_BYTES`], or [`LOCAL_RUN_BYTES`] on a local disk.
    pub fn run_bytes(&self) -> u64 {
        match self.backend.local_dir() {
            Some(_) => LOCAL_RUN_BYTES,
            None => RUN_BYTES,
        }
    }

    /// Reads the blobs `run` (a run of [`blob_runs`] over `locs`) with one
    /// ranged read; returns their plaintexts in the order of `run`.
    pub fn read_blob_run(
        &self,
        ids: &[Id],
        locs: &[BlobLocation],
        run: &[usize],
    ) -> Result<Vec<BlobBytes>> {
        self.read_blob_run_held(ids, locs, run, None)
    }

    /// [`Repository::read_blob_run`] taking opened groups from `hold`
    /// first, and offering it those it opens.
    pub fn read_blob_run_held(
        &self,
        ids: &[Id],
        locs: &[BlobLocation],
        run: &[usize],
        hold: Option<&GroupHold>,
    ) -> Result<Vec<BlobBytes>> {
        let Some(&first) = run.first() else {
            return Ok(Vec::new());
        };
        if run.len() == 1 && self.backend.local_dir().is_some() {
            // One member of a group (a page left unchanged among rewritten
            // ones) is the read most likely to find its group held.
            return Ok(vec![self.blob_bytes_at(&ids[first], &locs[first], hold)?]);
        }
        let start = run.iter().map(|&i| locs[i].offset).min().unwrap_or(0);
        let end = run
            .iter()
            .map(|&i| locs[i].offset + u64::from(locs[i].length))
            .max()
            .unwrap_or(start);
        let mut bytes = self.read_sealed(&ids[first], &locs[first], start, end)?;
        // Each blob is decrypted where it lies in `bytes`, so a blob (or
        // group) named twice in the run is opened once and shared: its
        // stored bytes are plaintext after the first open.
        let mut groups: HashMap<u64, Arc<Vec<u8>>> = HashMap::new();
        let mut alone: HashMap<(u64, Id), usize> = HashMap::new();
        let mut out: Vec<BlobBytes> = Vec::with_capacity(run.len());
        for &i in run {
            let (id, l) = (&ids[i], &locs[i]);
            let at = (l.offset - start) as usize;
            let sealed = &mut bytes[at..at + l.length as usize];
            let opened = match l.group {
                Some(_) => {
                    let g = match groups.get(&l.offset) {
                        Some(g) => Arc::clone(g),
                        None => {
                            let g = self.group_held(id, l, Some(sealed), hold)?;
                            groups.insert(l.offset, Arc::clone(&g));
                            g
                        }
                    };
                    self.member_of(g, id, l)?
                }
                None => match alone.get(&(l.offset, *id)) {
                    Some(&j) => out[j].clone(),
                    None => {
                        alone.insert((l.offset, *id), out.len());
                        BlobBytes::Owned(blob::open_in(
                            &self.sealer,
                            |d| self.keys.blob_id(d),
                            l.kind,
                            id,
                            sealed,
                            l.raw_length as usize,
                            &|| format!("blob {} in pack {}", id.short(), l.pack),
                        )?)
                    }
                },
            };
            out.push(opened);
        }
        Ok(out)
    }

    /// Bytes `start..end` of the pack of `loc` in a buffer of their own,
    /// to be opened in place.
    fn read_sealed(&self, id: &Id, loc: &BlobLocation, start: u64, end: u64) -> Result<Vec<u8>> {
        let (bytes, base) = self.read_span(id, loc, start, end)?;
        let at = (start - base) as usize;
        let len = (end - start) as usize;
        match Arc::try_unwrap(bytes) {
            Ok(v) if at == 0 && v.len() == len => Ok(v),
            // A window shared with later reads: copy out this run's span.
            Ok(v) => Ok(v[at..at + len].to_vec()),
            Err(shared) => Ok(shared[at..at + len].to_vec()),
        }
    }
}

impl Repository {
    /// `len` bytes of the pack of `loc` at `offset` (`id` names the blob
    /// in errors).
    pub(super) fn read_pack_range(
        &self,
        id: &Id,
        loc: &BlobLocation,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        let name = pack::pack_name(&loc.pack);
        self.backend
            .read_range(&name, offset, len)
            .map_err(|e| match e {
                Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => {
                    Error::MissingBlob(format!("{} (its pack {} is gone)", id.to_hex(), loc.pack))
                }
                Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Error::corrupt(format!("pack {}", loc.pack), "truncated")
                }
                other => other,
            })
    }

    /// Bytes `start..end` of the pack of `loc`, and the pack offset where
    /// the returned bytes begin: on remote storage from a cached window (a
    /// window of [`WINDOW_BYTES`] is read on a miss), else exactly.
    fn read_span(
        &self,
        id: &Id,
        loc: &BlobLocation,
        start: u64,
        end: u64,
    ) -> Result<(Arc<Vec<u8>>, u64)> {
        let exact = || {
            self.read_pack_range(id, loc, start, end - start)
                .map(|b| (Arc::new(b), start))
        };
        if self.backend.local_dir().is_some() || end - start >= WINDOW_BYTES {
            return exact();
        }
        let w = &self.windows;
        let hit = |recent: &VecDeque<Window>| {
            recent
                .iter()
                .find(|(p, at, b)| *p == loc.pack && *at <= start && end <= at + b.len() as u64)
                .map(|(_, at, b)| (Arc::clone(b), *at))
        };
        if let Some(found) = hit(&w.recent.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(found);
        }
        let sizes = w.sizes.get_or_init(|| {
            self.index()
                .packs()
                .map(|v| v.into_iter().collect())
                .unwrap_or_default()
        });
        let Some(&size) = sizes.get(&loc.pack).filter(|&&s| s >= end) else {
            return exact();
        };
        let wend = (start + WINDOW_BYTES).min(size);
        let bytes = Arc::new(self.read_pack_range(id, loc, start, wend - start)?);
        let mut recent = w.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back((loc.pack, start, Arc::clone(&bytes)));
        if recent.len() > WINDOWS {
            recent.pop_front();
        }
        Ok((bytes, start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::BlobKind;

    fn loc(pack: u8, offset: u64, length: u32) -> BlobLocation {
        BlobLocation {
            pack: Id([pack; 32]),
            kind: BlobKind::Data,
            offset,
            length,
            raw_length: length,
            group: None,
        }
    }

    #[test]
    fn blobs_near_each_other_in_one_pack_form_runs() {
        let locs = [
            loc(1, 24, 5),
            loc(1, 4, 10),
            loc(2, 29, 5),
            loc(1, 14 + RUN_GAP, 10), // a gap still read
            loc(1, 4, 10),            // the same blob twice in a file
            loc(2, 29 + 5 + RUN_GAP + 1, 5),
            loc(2, 1 << 30, RUN_BYTES as u32),
        ];
        assert_eq!(
            blob_runs(&locs, RUN_BYTES),
            vec![vec![1, 4, 0, 3], vec![2], vec![5], vec![6]]
        );
        // A shorter limit splits the first run where its span would pass it.
        assert_eq!(
            blob_runs(&locs, RUN_GAP),
            vec![vec![1, 4, 0], vec![3], vec![2], vec![5], vec![6]]
        );
        assert!(blob_runs(&[], RUN_BYTES).is_empty());
    }

    #[test]
    fn runs_of_blobs_that_compress_well_are_cut_by_their_plaintext() {
        // 16 blobs of 100 KiB stored, each 1 MiB of plaintext, side by side.
        let locs: Vec<BlobLocation> = (0..16u64)
            .map(|i| BlobLocation {
                raw_length: 1 << 20,
                ..loc(1, i * (100 << 10), 100 << 10)
            })
            .collect();
        let max = 2 << 20;
        let runs = blob_runs(&locs, max);
        // The span (1.6 MiB) fits one run; the plaintext (16 MiB) does not.
        assert_eq!(runs.len(), 4, "{runs:?}");
        for run in &runs {
            let raw: u64 = run.iter().map(|&i| u64::from(locs[i].raw_length)).sum();
            assert!(raw <= max * RUN_RAW_FACTOR, "{raw}");
        }
        let all: Vec<usize> = runs.concat();
        assert_eq!(all, (0..16).collect::<Vec<_>>());
    }
}
