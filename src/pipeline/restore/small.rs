//! A folder's small files restored together. Files of one blob each (most
//! files of a folder of documents: JSON, configuration) are
//! located with one index query per batch and written in the order their
//! blobs lie in the packs, so each group holding them is opened once per
//! batch. One at a time, in folder order, a restore of a snapshot taken
//! after files changed alternated between the old groups (unchanged files)
//! and the new ones (changed files) and opened 1.5 times as many groups as
//! it needed: the few kept opened did not hold both.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;

use super::{create_file, Restorer};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::pipeline::sparse::write_sparse_parts;
use crate::snapshot::{Node, NodeKind};

/// Files located and written as one batch: 4,096 locations are 256 KiB.
const BATCH_FILES: usize = 4096;

/// Whether `node` is restored with its folder's other small files: a
/// regular file of exactly one blob, not hardlinked (hardlinks are
/// matched up one file at a time).
pub(super) fn is_small(node: &Node) -> bool {
    node.kind == NodeKind::File
        && node.nlink <= 1
        && node.lists.is_empty()
        && node.content.len() == 1
}

impl Restorer<'_> {
    /// Restores `nodes` (each [`is_small`]) into the folder `dir`;
    /// `fresh`: the folder was created by this restore. Every file is
    /// attempted; the first error is returned.
    pub(super) fn small_files(&self, dir: &Path, nodes: &[&Node], fresh: bool) -> Result<()> {
        let results: Vec<Result<()>> = nodes
            .chunks(BATCH_FILES)
            .flat_map(|batch| self.small_batch(dir, batch, fresh))
            .collect();
        results.into_iter().collect()
    }

    fn small_batch(&self, dir: &Path, batch: &[&Node], fresh: bool) -> Vec<Result<()>> {
        let path = |n: &Node| dir.join(OsStr::from_bytes(&n.name));
        let ids: Vec<Id> = batch.iter().map(|n| n.content[0]).collect();
        let found = match self.repo.index().lookup_many(&ids) {
            Ok(f) => f,
            Err(e) => return vec![Err(e)],
        };
        // A file whose blob the index lacks goes the one-file way, which
        // leaves it empty and says which blob is missing.
        let mut results = Vec::new();
        let (mut at, mut locs) = (Vec::new(), Vec::new());
        for (i, l) in found.into_iter().enumerate() {
            match l {
                Some(l) => {
                    at.push(i);
                    locs.push(l);
                }
                None => results.push(self.restore_entry(batch[i], &path(batch[i]), fresh)),
            }
        }
        let ids: Vec<Id> = at.iter().map(|&i| ids[i]).collect();
        let runs = crate::repo::blob_runs(&locs, self.repo.run_bytes());
        let written: Vec<Vec<Result<()>>> = runs
            .into_par_iter()
            .map(|run| {
                let files = run.iter().map(|&k| (batch[at[k]], path(batch[at[k]])));
                // A large blob goes the one-file way, written as it is
                // opened instead of whole.
                if let [k] = run[..] {
                    if locs[k].streams() {
                        return files
                            .map(|(node, dest)| self.restore_entry(node, &dest, fresh))
                            .collect();
                    }
                }
                match self.repo.read_blob_run(&ids, &locs, &run) {
                    Ok(blobs) => files
                        .zip(blobs)
                        .map(|((node, dest), bytes)| self.small_file(node, &dest, fresh, &bytes))
                        .collect(),
                    // One damaged blob fails its run: the files are tried
                    // one by one, so only those really affected fail.
                    Err(_) => files
                        .map(|(node, dest)| self.restore_entry(node, &dest, fresh))
                        .collect(),
                }
            })
            .collect();
        results.extend(written.into_iter().flatten());
        results
    }

    /// Writes a small file whose blob has been read and checked.
    fn small_file(&self, node: &Node, dest: &Path, fresh: bool, bytes: &[u8]) -> Result<()> {
        if !fresh {
            self.clear(dest, false)?;
        }
        let f = create_file(dest)?;
        let written = write_sparse_parts(&f, &[bytes], 0)
            .map(|()| bytes.len() as u64)
            .map_err(|e| Error::io("writing", dest, e));
        self.progress.advance(0, bytes.len() as u64);
        self.finish_file(f, node, dest, written)
    }
}
