//! A file's content written a slice of blobs at a time: located, then
//! read, opened and written at their offsets in parallel, so one large
//! database file restores on every core, and only a few slices'
//! locations are held, not a file's (a 4 GB database has a million
//! blobs: 100 MB of locations).
//!
//! The next slice is located while this one is written (locating 16,384
//! blobs is tens of milliseconds on one thread, during which the other
//! cores had nothing to do when a large file was the last one left), and
//! the one after it is known before this one is written: the groups both
//! read stay open for it ([`GroupHold`]).

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;

use rayon::prelude::*;

use super::{file_offsets, Restorer};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::pipeline::sparse::write_sparse_parts;
use crate::repo::{BlobLocation, GroupHold};
use crate::snapshot::{for_each_segment, Node};

/// Blobs of a file located at once: 16,384 locations are 1 MB, and 64 MiB
/// of 4 KiB blocks make about 32 runs to share between threads.
pub(super) const LOCATE_SLICE: usize = 16384;

/// A slice of a file's blobs and where each is stored.
type Located = (Vec<Id>, Vec<BlobLocation>);

impl Restorer<'_> {
    /// Writes the content of `node` into `f` (at `dest`); returns its
    /// length.
    pub(super) fn write_content(&self, f: &File, dest: &Path, node: &Node) -> Result<u64> {
        self.write_sliced(f, dest, node, LOCATE_SLICE)
    }

    /// [`Restorer::write_content`] `slice` blobs at a time.
    fn write_sliced(&self, f: &File, dest: &Path, node: &Node, slice: usize) -> Result<u64> {
        let index = self.repo.index();
        let mut hold = GroupHold::default();
        let mut off = 0u64;
        // Slices located, not yet written: the next one, and the one after
        // it whose groups are kept open.
        let mut ahead: VecDeque<Located> = VecDeque::with_capacity(3);
        for_each_segment(self.repo, node, |ids| {
            for slice in ids.chunks(slice) {
                if ahead.len() < 2 {
                    ahead.push_back((slice.to_vec(), index.locate_all(slice)?));
                    continue;
                }
                let (ids, locs) = ahead.pop_front().expect("two slices ahead");
                hold.want(&ahead[0].1);
                let (located, written) = rayon::join(
                    || index.locate_all(slice),
                    || self.write_slice(f, dest, &ids, &locs, off, &hold),
                );
                hold.done();
                off = written?;
                ahead.push_back((slice.to_vec(), located?));
            }
            Ok(())
        })?;
        while let Some((ids, locs)) = ahead.pop_front() {
            hold.want(ahead.front().map_or(&[][..], |(_, l)| &l[..]));
            off = self.write_slice(f, dest, &ids, &locs, off, &hold)?;
            hold.done();
        }
        Ok(off)
    }

    /// Writes the blobs `ids` (found at `locs`) of a file from offset `off`
    /// on; returns the offset after them.
    fn write_slice(
        &self,
        f: &File,
        dest: &Path,
        ids: &[Id],
        locs: &[BlobLocation],
        mut off: u64,
        hold: &GroupHold,
    ) -> Result<u64> {
        let io = |e| Error::io("writing", dest, e);
        let offsets = file_offsets(locs, &mut off);
        // Blobs stored near each other are read with one request per run
        // (one round trip each on S3), the runs in parallel.
        crate::repo::blob_runs(locs, self.repo.run_bytes())
            .into_par_iter()
            .try_for_each(|run| -> Result<()> {
                if let [one] = run[..] {
                    if locs[one].streams() {
                        let mut at = offsets[one];
                        return self.repo.stream_blob(&ids[one], &locs[one], |piece| {
                            write_sparse_parts(f, &[piece], at).map_err(io)?;
                            at += piece.len() as u64;
                            self.progress.advance(0, piece.len() as u64);
                            Ok(())
                        });
                    }
                }
                let blobs = self.repo.read_blob_run_held(ids, locs, &run, Some(hold))?;
                // Blobs that follow each other in the file too (a database's
                // pages, stored in order) go out in one write, not one each.
                let mut k = 0;
                while k < run.len() {
                    let mut end = k + 1;
                    while end < run.len() && run[end] == run[end - 1] + 1 {
                        end += 1;
                    }
                    let parts: Vec<&[u8]> = blobs[k..end].iter().map(|b| &b[..]).collect();
                    write_sparse_parts(f, &parts, offsets[run[k]]).map_err(io)?;
                    let bytes: usize = parts.iter().map(|p| p.len()).sum();
                    self.progress.advance(0, bytes as u64);
                    k = end;
                }
                Ok(())
            })?;
        Ok(off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::BlobKind;
    use crate::pipeline::{NoProgress, RestoreOptions};
    use crate::repo::{InitOptions, Repository};
    use crate::snapshot::NodeKind;

    /// A page of 4 KiB, different for every (seed, page).
    fn page(seed: u64, i: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64 + 1);
        (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Pages in each slice of the test database.
    const SLICE: usize = 2560;

    /// A database file of three slices after a day of in-place writes:
    /// every 32nd page changed, the changed pages stored together in a new
    /// group whose members span all three slices, and each slice reading
    /// ten old groups in between (more than the repository's cache keeps).
    /// Every group is opened once; the file reads back byte for byte.
    #[test]
    fn a_group_read_by_consecutive_slices_is_opened_once() {
        restore_after_writes_every(32);
    }

    /// The same with one page changed per slice: each slice reads the new
    /// group for a single member, a read of its own (not part of a run of
    /// several blobs), which must find the group held all the same.
    #[test]
    fn a_group_read_for_one_member_per_slice_is_opened_once() {
        restore_after_writes_every(SLICE);
    }

    /// A file of large blobs stored alone (compressed text, incompressible
    /// noise, each with a stretch of zeros) between small grouped ones is
    /// written as its blobs are opened, a piece at a time, and reads back
    /// byte for byte.
    #[test]
    fn large_blobs_written_a_piece_at_a_time_read_back_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = test_repo(tmp.path());
        let mut text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("line {} of a chat log\n", i % 977).into_bytes())
            .take(3_000_000)
            .collect();
        text[1_000_000..1_100_000].fill(0);
        let mut noise: Vec<u8> = (0..400).flat_map(|i| page(9, i)).collect();
        noise[8192..8192 + 300_000].fill(0);
        let parts = [page(3, 0), text, page(3, 1), noise, page(3, 2)];
        let packer = repo.packer();
        let content: Vec<Id> = parts
            .iter()
            .map(|p| packer.add(BlobKind::Data, p).unwrap())
            .collect();
        packer.flush().unwrap();
        let locs = repo.index().locate_all(&content).unwrap();
        let streamed = locs.iter().filter(|l| l.streams()).count();
        assert_eq!(streamed, 2, "the two large blobs are stored alone");
        let expected = parts.concat();
        let node = file_node(content, expected.len() as u64);
        let restorer = Restorer::new(&repo, RestoreOptions::default(), &NoProgress);
        let dest = tmp.path().join("f");
        let f = super::super::create_file(&dest).unwrap();
        let len = restorer.write_sliced(&f, &dest, &node, SLICE).unwrap();
        assert_eq!(len, expected.len() as u64);
        f.set_len(len).unwrap();
        assert!(std::fs::read(&dest).unwrap() == expected, "content differs");
    }

    fn test_repo(dir: &std::path::Path) -> Repository {
        let opts = InitOptions {
            kdf: crate::crypto::KdfParams {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            ..Default::default()
        };
        Repository::init_in(&dir.join("repo"), Some(b"pw"), &opts, &dir.join("cache")).unwrap()
    }

    fn file_node(content: Vec<Id>, size: u64) -> Node {
        Node {
            name: b"db".to_vec(),
            kind: NodeKind::File,
            mode: 0o600,
            uid: 0,
            gid: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
            dev: 0,
            nlink: 1,
            size,
            content,
            lists: vec![],
            subtree: None,
            target: None,
            rdev: 0,
            xattrs: vec![],
        }
    }

    /// Restores a file of three slices whose every `every`th page was
    /// rewritten; checks the content and that each group is opened once.
    fn restore_after_writes_every(every: usize) {
        const PAGES: usize = 3 * SLICE;
        let tmp = tempfile::tempdir().unwrap();
        let repo = test_repo(tmp.path());
        let packer = repo.packer();
        let old: Vec<Id> = (0..PAGES)
            .map(|i| packer.add(BlobKind::Data, &page(1, i)).unwrap())
            .collect();
        packer.flush().unwrap();
        let packer = repo.packer();
        let mut content = old.clone();
        let mut expected = Vec::with_capacity(PAGES * 4096);
        for (i, id) in content.iter_mut().enumerate() {
            if i % every == every / 2 {
                let p = page(2, i);
                *id = packer.add(BlobKind::Data, &p).unwrap();
                expected.extend_from_slice(&p);
            } else {
                expected.extend_from_slice(&page(1, i));
            }
        }
        packer.flush().unwrap();
        let locs = repo.index().locate_all(&content).unwrap();
        let mut groups: Vec<(Id, u64)> = locs.iter().map(|l| (l.pack, l.offset)).collect();
        groups.sort();
        groups.dedup();
        assert!(locs.iter().all(|l| l.group.is_some()));
        assert!(groups.len() > 30, "{} groups", groups.len());

        let node = file_node(content, expected.len() as u64);
        let restorer = Restorer::new(&repo, RestoreOptions::default(), &NoProgress);
        let dest = tmp.path().join("db");
        let f = super::super::create_file(&dest).unwrap();
        repo.clear_read_caches();
        let before = repo.groups_opened();
        let len = restorer.write_sliced(&f, &dest, &node, SLICE).unwrap();
        assert_eq!(len, expected.len() as u64);
        assert_eq!(repo.groups_opened() - before, groups.len() as u64);
        assert!(std::fs::read(&dest).unwrap() == expected, "content differs");
    }
}
