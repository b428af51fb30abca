//! `key reencrypt`: rewrites everything an older key generation sealed
//! under the newest one, then drops the older generations from the keyring.
//! Format and crash analysis: `docs/FORMAT.md` §4.3.
//!
//! Order, each step durable before the next: the config and snapshot
//! records are re-sealed in place (temp file, fsync, rename: a reader sees
//! the old or the new bytes, both open with the current keyring); old packs
//! are rewritten like prune's repack (new packs durable, index swap, then
//! deletes); everything is checked again; only then is the keyring without
//! the old generations written to a new slot, and the old slot deleted.

use serde::Serialize;

use super::pack::{pack_name, read_trailer_which};
use super::{RepoLock, Repository, CONFIG, CONFIG_AAD};
use crate::error::{Error, Result};
use crate::id::Id;

/// What a re-encryption did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReencryptReport {
    /// Whether the config was re-sealed.
    pub config: bool,
    /// Snapshot records re-sealed.
    pub snapshots: u64,
    /// Packs sealed with an older generation, rewritten.
    pub packs_rewritten: u64,
    /// Blobs copied into new packs.
    pub blobs: u64,
    /// Sealed bytes written into new packs.
    pub bytes: u64,
    /// Generations removed from the keyring (empty with `keep_old`).
    pub dropped_generations: Vec<u32>,
    /// Generations left, oldest first.
    pub generations: Vec<u32>,
    /// The slot now wrapping the keyring, when it changed.
    pub new_slot: Option<String>,
    /// Slots deleted.
    pub removed_slots: Vec<String>,
}

/// Objects an older generation sealed.
#[derive(Default)]
struct Old {
    config: bool,
    snapshots: Vec<Id>,
    packs: Vec<Id>,
}

impl Old {
    fn is_empty(&self) -> bool {
        !self.config && self.snapshots.is_empty() && self.packs.is_empty()
    }

    fn describe(&self) -> String {
        format!(
            "{}{} snapshot records and {} packs are",
            if self.config { "the config, " } else { "" },
            self.snapshots.len(),
            self.packs.len()
        )
    }
}

impl Repository {
    /// Finds what an older generation sealed: the config, snapshot records,
    /// and packs by their trailer (see `repack.rs` for why that suffices).
    fn find_old(&self) -> Result<Old> {
        let mut old = Old::default();
        let sealed = self.backend().read(CONFIG)?;
        let (g, _) = self
            .sealer()
            .open_which(CONFIG_AAD, &sealed)
            .ok_or_else(|| Error::Authentication {
                what: "repository config".into(),
            })?;
        old.config = g != 0;
        for id in self.list_objects("snapshots")? {
            let sealed = self.backend().read(&format!("snapshots/{}", id.to_hex()))?;
            let (g, _) = self
                .sealer()
                .open_which(&super::object_aad("snapshots", &id), &sealed)
                .ok_or_else(|| Error::Authentication {
                    what: format!("snapshots/{}", id.to_hex()),
                })?;
            if g != 0 {
                old.snapshots.push(id);
            }
        }
        for (pack, _) in self.index().packs()? {
            let (g, _) = read_trailer_which(self.backend(), self.sealer(), &pack_name(&pack))?;
            if g != 0 {
                old.packs.push(pack);
            }
        }
        Ok(old)
    }

    /// Re-seals everything an older key generation sealed with the newest
    /// one. Then, unless `keep_old`, writes the keyring without the older
    /// generations for `password` (the current password) and deletes the
    /// slot it opened; with `remove_others` other slots are deleted too,
    /// else their existence makes this fail before anything is changed.
    /// `on_pack` is called per old pack handled. Needs the exclusive lock.
    pub fn reencrypt(
        &self,
        lock: &RepoLock<'_>,
        password: &[u8],
        keep_old: bool,
        remove_others: bool,
        on_pack: &dyn Fn(),
    ) -> Result<ReencryptReport> {
        lock.require_exclusive()?;
        if !self.is_encrypted() {
            return Err(Error::Invalid(
                "the repository is not encrypted: there is nothing to re-encrypt".into(),
            ));
        }
        let dropping = !keep_old && self.key_generations().len() > 1;
        if dropping {
            self.check_other_slots(password, remove_others)?;
        }
        let mut rep = ReencryptReport {
            generations: self.key_generations(),
            ..Default::default()
        };
        let old = self.find_old()?;
        if old.config {
            let plain = self
                .sealer()
                .open(CONFIG_AAD, &self.backend().read(CONFIG)?)
                .ok_or_else(|| Error::Authentication {
                    what: "repository config".into(),
                })?;
            self.backend()
                .write_atomic(CONFIG, &self.sealer().seal(CONFIG_AAD, &plain))?;
            rep.config = true;
        }
        for id in &old.snapshots {
            let plain = self.read_object("snapshots", id)?;
            let sealed = self.write_object("snapshots", id, &plain)?;
            // The cached copy must open once the old generation is gone.
            self.index().put_snapshot(id, &sealed)?;
            rep.snapshots += 1;
        }
        crate::util::fault_point("reencrypt-after-records");
        if !old.packs.is_empty() {
            let stats = self.rewrite_packs(&old.packs, &[], None, "reencrypt", on_pack)?;
            rep.packs_rewritten = old.packs.len() as u64;
            rep.blobs = stats.blobs_copied;
            rep.bytes = stats.bytes_copied;
        }
        self.remove_stale_temp_files()?;
        // Check again from the storage, not from what we believe we did.
        let left = self.find_old()?;
        if !left.is_empty() {
            return Err(Error::StillOld(left.describe()));
        }
        if dropping {
            let newest = self.keyring.newest_only();
            let all = self.key_generations();
            crate::util::fault_point("reencrypt-before-drop");
            let (new_slot, removed) =
                self.replace_keyring(lock, &newest, password, remove_others)?;
            rep.dropped_generations = all[..all.len() - 1].to_vec();
            rep.generations = newest.numbers();
            rep.new_slot = Some(new_slot);
            rep.removed_slots = removed;
        } else if !keep_old {
            rep.removed_slots = self.remove_duplicate_slots(lock, password)?;
        }
        Ok(rep)
    }
}
