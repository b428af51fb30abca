//! Rewriting packs for prune: still-used blobs of mostly-unused packs are
//! copied (sealed bytes as stored, after authenticating them) into new
//! packs; then the index swaps old for new in one durable transaction; only
//! then are the old packs deleted. A crash at any point leaves every blob
//! in at least one durable pack; leftovers are unreferenced packs that the
//! next prune removes.
//!
//! `key reencrypt` uses the same sequence on every pack sealed with an older
//! key generation. Both re-seal blobs an older generation sealed (prune
//! authenticates them anyway), so a pack whose trailer the newest generation
//! sealed holds only blobs it sealed too: re-encryption can tell old packs
//! from their trailers alone.

use std::collections::HashSet;

use super::pack::{pack_name, PackEntry, PackWriter};
use super::packer::{seal_group, takes_lanes, GROUP_TARGET};
use super::{blob, BlobLocation, Repository};
use crate::error::Result;
use crate::id::{BlobKind, Id};

/// A group being rewritten: its members (id, length) and their bytes.
type NewGroup = (Vec<(Id, u32)>, Vec<u8>);

/// What a repack did.
#[derive(Clone, Debug, Default)]
pub struct RepackStats {
    /// Blobs copied into new packs.
    pub blobs_copied: u64,
    /// Sealed bytes copied.
    pub bytes_copied: u64,
    /// New packs written.
    pub packs_written: u64,
    /// Old packs deleted.
    pub packs_deleted: u64,
}

impl Repository {
    /// Copies the blobs of `repack` that `keep` holds into new packs, then
    /// drops `repack` and `delete` from the index and the backend, in that
    /// order. `on_pack` is called after each old pack is handled.
    pub fn repack(
        &self,
        repack: &[Id],
        delete: &[Id],
        keep: &HashSet<Id>,
        on_pack: &dyn Fn(),
    ) -> Result<RepackStats> {
        self.rewrite_packs(repack, delete, Some(keep), "prune", on_pack)
    }

    /// [`Repository::repack`] with `keep = None` meaning every blob indexed
    /// in `repack`; `step` names the fault points (`<step>-before-index-swap`, ...).
    pub(super) fn rewrite_packs(
        &self,
        repack: &[Id],
        delete: &[Id],
        keep: Option<&HashSet<Id>>,
        step: &str,
        on_pack: &dyn Fn(),
    ) -> Result<RepackStats> {
        let fault = |at: &str| crate::util::fault_point(&format!("{step}-{at}"));
        let mut stats = RepackStats::default();
        let mut new_packs: Vec<(Id, u64, Vec<PackEntry>)> = Vec::new();
        let mut writer: Option<PackWriter> = None;
        let target = self.config().pack_target_size;
        let by_pack = self.index().blobs_of_packs(repack)?;
        let result = (|| -> Result<()> {
            // Kept members of groups, re-grouped: a group is rewritten
            // from its kept members, never copied with dead ones inside.
            // As the packer does, members that take lanes (sampled one by
            // one) fill a group of their own (index 1).
            let mut groups: [NewGroup; 2] = Default::default();
            let seal_group = |group: &mut NewGroup,
                              lanes: bool,
                              writer: &mut Option<PackWriter>,
                              stats: &mut RepackStats|
             -> Result<()> {
                if group.0.is_empty() {
                    return Ok(());
                }
                let (members, data) = std::mem::take(group);
                let sealed = seal_group(self, BlobKind::Data, &data, lanes);
                if writer.is_none() {
                    *writer = Some(PackWriter::create(self.tmp_dir())?);
                }
                let w = writer.as_mut().expect("just created");
                w.add_group(BlobKind::Data, &members, &sealed)?;
                stats.blobs_copied += members.len() as u64;
                stats.bytes_copied += sealed.len() as u64;
                Ok(())
            };
            for (pack, blobs) in &by_pack {
                let name = pack_name(pack);
                for (id, loc) in blobs {
                    if keep.is_some_and(|k| !k.contains(id)) {
                        continue;
                    }
                    if let Some(slot) = loc.group {
                        // Kept members of a group follow each other: the group
                        // is read once, then found in the read cache.
                        let g = self.group_at(id, loc, None)?;
                        let data = member_of(self, &g, id, loc, slot)?;
                        let lanes = takes_lanes(self, &[data]);
                        let group = &mut groups[usize::from(lanes)];
                        group.0.push((*id, loc.raw_length));
                        group.1.extend_from_slice(data);
                        if group.1.len() >= GROUP_TARGET {
                            seal_group(group, lanes, &mut writer, &mut stats)?;
                        }
                    } else {
                        let stored =
                            self.backend()
                                .read_range(&name, loc.offset, loc.length as u64)?;
                        // Authenticate before copying: never carry damage forward.
                        let resealed = blob::reseal(
                            self.sealer(),
                            |d| self.blob_id(d),
                            loc.kind,
                            id,
                            &stored,
                            loc.raw_length as usize,
                            &|| format!("blob {} in pack {}", id.short(), pack),
                        )?;
                        let sealed = resealed.unwrap_or(stored);
                        if writer.is_none() {
                            writer = Some(PackWriter::create(self.tmp_dir())?);
                        }
                        let w = writer.as_mut().expect("just created");
                        w.add(loc.kind, *id, &sealed, loc.raw_length)?;
                        stats.blobs_copied += 1;
                        stats.bytes_copied += sealed.len() as u64;
                    }
                    if writer.as_ref().is_some_and(|w| w.size() >= target) {
                        let (p, entries, size) = writer
                            .take()
                            .expect("open")
                            .finish(self.sealer(), self.backend())?;
                        new_packs.push((p, size, entries));
                        fault("after-first-new-pack");
                    }
                }
            }
            for (lanes, group) in [false, true].into_iter().zip(&mut groups) {
                seal_group(group, lanes, &mut writer, &mut stats)?;
            }
            if let Some(w) = writer.take() {
                let (p, entries, size) = w.finish(self.sealer(), self.backend())?;
                new_packs.push((p, size, entries));
            }
            Ok(())
        })();
        if let Err(e) = result {
            if let Some(w) = writer.take() {
                w.abandon();
            }
            // New packs already written stay: unreferenced duplicates, removed
            // by the next prune. Nothing old was touched.
            return Err(e);
        }
        stats.packs_written = new_packs.len() as u64;
        fault("before-index-swap");
        let old: Vec<Id> = repack.iter().chain(delete).copied().collect();
        self.index().swap_packs(&old, &new_packs)?;
        fault("after-index-swap");
        // Rewriting a fully used pack of an unencrypted repository gives
        // the same bytes, hence the same name: that file is the new pack.
        let written: HashSet<Id> = new_packs.iter().map(|p| p.0).collect();
        for (i, p) in old.iter().enumerate() {
            if i == 1 {
                fault("during-deletes");
            }
            if written.contains(p) {
                continue;
            }
            self.backend().delete(&pack_name(p))?;
            stats.packs_deleted += 1;
            on_pack();
        }
        Ok(stats)
    }

    /// Removes temporary pack files left by interrupted writers. Call only
    /// under the exclusive lock: a running writer's file looks the same.
    pub fn remove_stale_temp_files(&self) -> Result<u64> {
        let mut n = 0;
        let Ok(rd) = std::fs::read_dir(self.tmp_dir()) else {
            return Ok(0);
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("pack-") && name.ends_with(".tmp") {
                std::fs::remove_file(e.path())
                    .map_err(|err| crate::error::Error::io("removing", e.path(), err))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The checked bytes of the grouped blob `id` in its opened group `g`.
fn member_of<'g>(
    repo: &Repository,
    g: &'g [u8],
    id: &Id,
    loc: &BlobLocation,
    slot: super::pack::GroupSlot,
) -> Result<&'g [u8]> {
    blob::member(
        g,
        |d| repo.blob_id(d),
        id,
        slot,
        loc.raw_length as usize,
        &|| format!("blob {} in pack {}", id.short(), loc.pack),
    )
}
