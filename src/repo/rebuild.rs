//! Rebuilding the derived index from the packs and snapshot objects alone.

use rayon::prelude::*;

use std::collections::HashSet;

use super::pack::{pack_id_from_name, pack_name, read_trailer};
use super::Repository;
use crate::error::Result;
use crate::id::Id;

/// What a rebuild found.
#[derive(Clone, Debug, Default)]
pub struct RebuildReport {
    /// Packs indexed.
    pub packs: u64,
    /// Blobs indexed.
    pub blobs: u64,
    /// Snapshot records cached.
    pub snapshots: u64,
    /// Packs that could not be read, with why. Their blobs are not indexed.
    pub bad_packs: Vec<(String, String)>,
}

/// Packs whose trailers are read in parallel before their rows are written.
const BATCH: usize = 256;

impl Repository {
    fn pack_names(&self) -> Result<Vec<String>> {
        Ok(self
            .backend()
            .list("data")?
            .into_iter()
            .filter(|n| pack_id_from_name(n).is_some())
            .collect())
    }

    /// Re-reads every pack trailer and snapshot record into the index, in
    /// one transaction. Unreadable packs are reported, not indexed.
    pub fn rebuild_index(&self) -> Result<RebuildReport> {
        let names = self.pack_names()?;
        let mut report = RebuildReport::default();
        let bad = std::cell::RefCell::new(Vec::new());
        let (mut packs, mut blobs) = (0u64, 0u64);
        let rows = names.chunks(BATCH).flat_map(|batch| {
            let read: Vec<_> = batch
                .par_iter()
                .map(|n| {
                    let size = self.backend().size(n).ok().flatten().unwrap_or(0);
                    (n, size, read_trailer(self.backend(), self.sealer(), n))
                })
                .collect();
            let mut ok = Vec::new();
            for (name, size, res) in read {
                match res {
                    Ok(entries) => {
                        packs += 1;
                        blobs += entries.len() as u64;
                        ok.push((pack_id_from_name(name).expect("filtered"), size, entries));
                    }
                    Err(e) => bad.borrow_mut().push((name.clone(), e.to_string())),
                }
            }
            ok
        });
        self.index().replace_packs(rows)?;
        report.packs = packs;
        report.blobs = blobs;
        report.bad_packs = bad.into_inner();
        for (id, _) in self.index().snapshots()? {
            self.index().remove_snapshot(&id)?;
        }
        report.snapshots = self.sync_snapshot_cache()?;
        Ok(report)
    }

    /// Indexes packs written since the index was last updated (by another
    /// process or host) and forgets packs that are gone. Returns how many
    /// packs were added and removed.
    pub fn sync_packs(&self) -> Result<(u64, u64)> {
        let on_disk: HashSet<Id> = self
            .pack_names()?
            .iter()
            .filter_map(|n| pack_id_from_name(n))
            .collect();
        let indexed: HashSet<Id> = self
            .index()
            .packs()?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let gone: Vec<&Id> = indexed.difference(&on_disk).collect();
        if !gone.is_empty() {
            // Packs vanish only by prune (or damage). Their blobs may live on
            // in packs this index already holds with the rows ignored as
            // duplicates, so re-reading every trailer is the only way to
            // find each blob's surviving copy.
            let r = self.rebuild_index()?;
            return Ok((
                r.packs.saturating_sub(indexed.len() as u64),
                gone.len() as u64,
            ));
        }
        let new: Vec<&Id> = on_disk.difference(&indexed).collect();
        let read: Vec<_> = new
            .par_iter()
            .map(|id| {
                let name = pack_name(id);
                let size = self.backend().size(&name).ok().flatten().unwrap_or(0);
                (
                    *id,
                    size,
                    read_trailer(self.backend(), self.sealer(), &name),
                )
            })
            .collect();
        let mut added = 0;
        for (id, size, res) in read {
            // A pack that cannot be read is left for `check`/`repair` to
            // report; its blobs are simply not available.
            if let Ok(entries) = res {
                self.index().add_pack(id, size, &entries)?;
                added += 1;
            }
        }
        Ok((added, gone.len() as u64))
    }

    /// Brings the index's snapshot cache in line with `snapshots/`: adds new
    /// records, drops removed ones. Returns how many records are cached.
    pub fn sync_snapshot_cache(&self) -> Result<u64> {
        let on_disk = self.list_objects("snapshots")?;
        let disk_set: std::collections::HashSet<_> = on_disk.iter().copied().collect();
        let mut current = std::collections::HashSet::new();
        for (id, sealed) in self.index().snapshots()? {
            if !disk_set.contains(&id) {
                self.index().remove_snapshot(&id)?;
            } else if self.open_object("snapshots", &id, &sealed).is_ok() {
                current.insert(id);
            }
            // Else the cached copy no longer opens: `key reencrypt` (maybe
            // on another host) re-sealed the record under a generation this
            // cache never saw. It is read again below.
        }
        for id in disk_set.difference(&current) {
            // Cached still sealed; authenticated now so a damaged record is
            // reported here rather than on every listing.
            let sealed = self.backend().read(&format!("snapshots/{}", id.to_hex()))?;
            if let Err(e) = self.open_object("snapshots", id, &sealed) {
                // One damaged record must not block every command; it is
                // left out of listings and reported.
                tracing::warn!("snapshot {} is unreadable and skipped: {e}", id.short());
                self.index().remove_snapshot(id)?;
                continue;
            }
            self.index().put_snapshot(id, &sealed)?;
        }
        Ok(disk_set.len() as u64)
    }
}
