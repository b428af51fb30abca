//! `repair snapshots`: after damage, keep everything that can be read.
//!
//! 1. Every pack is read and every blob verified (as `check --read-data`).
//! 2. A damaged blob with an intact copy elsewhere (stored twice, e.g. by
//!    a concurrent or later snapshot) is healed: the index points to the
//!    copy. Snapshots using it are whole again.
//! 3. A damaged blob without an intact copy is dropped from the index, so
//!    the next snapshot that still has its content stores it anew — which
//!    heals the older snapshots too, at the next `repair snapshots`.
//! 4. Each snapshot still referencing unreadable data is rewritten without
//!    the unreadable files (and folders whose listing is lost), tagged
//!    `repaired`; the original stays until the user forgets it.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::{ErrorKind, Result};
use crate::id::{BlobKind, Id};
use crate::pipeline::Progress;
use crate::repo::{Packer, RepoLock, Repository};
use crate::snapshot::{self as snap, read_list, Node, NodeKind, Part, Snapshot, Tree};

/// One rewritten snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct RepairedSnapshot {
    /// The damaged original (kept).
    pub original: String,
    /// The rewritten snapshot.
    pub repaired: String,
    /// Paths left out because their data is unreadable.
    pub removed: Vec<String>,
}

/// What `repair snapshots` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairReport {
    /// Damaged blobs found.
    pub damaged_blobs: u64,
    /// Of those, healed from an intact copy.
    pub healed_blobs: u64,
    /// Packs with an unreadable trailer whose intact blobs were rewritten.
    pub salvaged_packs: u64,
    /// Snapshots rewritten.
    pub snapshots: Vec<RepairedSnapshot>,
}

/// Repairs under the exclusive lock.
pub fn repair_snapshots(
    repo: &Repository,
    lock: &RepoLock<'_>,
    progress: &dyn Progress,
) -> Result<RepairReport> {
    lock.require_exclusive()?;
    repo.sync_packs()?;
    let mut rep = RepairReport::default();
    // A pack whose trailer is lost but whose blobs are intact is rewritten
    // from the index's rows: without it a rebuilt index would lose them.
    for p in repo.check_packs()?.problems {
        if !p.problem.starts_with("trailer unreadable") || p.blobs.is_empty() {
            continue;
        }
        let Some(pack) = Id::from_hex(&p.pack) else {
            continue;
        };
        let (bad, _) = repo.verify_pack_data(&pack)?;
        let bad: HashSet<Id> = bad.into_iter().map(|(id, _)| id).collect();
        let keep: HashSet<Id> = p
            .blobs
            .iter()
            .filter(|b| !bad.contains(b))
            .copied()
            .collect();
        repo.repack(&[pack], &[], &keep, &|| {})?;
        rep.salvaged_packs += 1;
    }
    let bad = damaged_blobs(repo, progress)?;
    rep.damaged_blobs = bad.len() as u64;
    let copies = repo.intact_copies(&bad)?;
    for (id, (pack, entry)) in &copies {
        repo.index().relocate_blob(id, pack, entry)?;
        rep.healed_blobs += 1;
    }
    for id in bad.iter().filter(|id| !copies.contains_key(id)) {
        repo.index().forget_blob(id)?;
    }
    // Now every indexed blob is intact: unreadable = not indexed.
    let packer = repo.packer();
    let mut rewritten = Vec::new();
    let all = snap::list(repo)?;
    let already: HashSet<String> = all
        .iter()
        .flat_map(|(_, s)| s.tags.iter())
        .filter_map(|t| t.strip_prefix("repaired-from:").map(str::to_string))
        .collect();
    for (sid, s) in all {
        if already.contains(&sid.short()) {
            continue; // repaired by an earlier run; its copy stands
        }
        let mut removed = Vec::new();
        let mut parts = Vec::new();
        let mut changed = false;
        for part in &s.parts {
            let mut r = Rewriter {
                repo,
                packer: &packer,
                removed: &mut removed,
                memo: HashMap::new(),
                root_entry: None,
            };
            // With one source path, users see the path as the part itself.
            let root_entry = (part.paths.len() == 1).then(|| part.paths[0].entry.as_bytes());
            r.root_entry = root_entry.map(<[u8]>::to_vec);
            let tree = r.tree(&part.tree, &part.name)?;
            changed |= tree != Some(part.tree);
            // A part whose root listing is lost is left out whole.
            if let Some(tree) = tree {
                parts.push(Part {
                    tree,
                    ..part.clone()
                });
            }
        }
        if changed && !parts.is_empty() {
            rewritten.push((sid, s, parts, removed));
        }
    }
    packer.flush()?;
    for (sid, s, parts, removed) in rewritten {
        let mut tags = s.tags.clone();
        tags.push("repaired".into());
        tags.push(format!("repaired-from:{}", sid.short()));
        let mut summary = s.summary.clone();
        summary.warnings += removed.len() as u64;
        let record = Snapshot {
            parts,
            tags,
            summary,
            ..s
        };
        let id = super::snapshot::commit_record(repo, &record)?;
        rep.snapshots.push(RepairedSnapshot {
            original: sid.to_hex(),
            repaired: id.to_hex(),
            removed,
        });
    }
    Ok(rep)
}

/// Blobs that are indexed but do not read back intact, plus referenced
/// blobs that are not indexed at all.
fn damaged_blobs(repo: &Repository, progress: &dyn Progress) -> Result<HashSet<Id>> {
    let packs = repo.index().packs()?;
    progress.add_total(packs.len() as u64, 0);
    let mut bad = HashSet::new();
    for (pack, _) in packs {
        let (damaged, _) = repo.verify_pack_data(&pack)?;
        bad.extend(damaged.into_iter().map(|(id, _)| id));
        progress.advance(1, 0);
    }
    Ok(bad)
}

/// `Ok(None)` when `r` failed because what it read is damaged or gone:
/// that loses the entry. Any other error (storage unreachable, say) stops
/// the repair rather than drop an entry that is fine.
fn unless_damaged<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == ErrorKind::Integrity => Ok(None),
        Err(e) => Err(e),
    }
}

struct Rewriter<'a, 'r> {
    repo: &'a Repository,
    packer: &'a Packer<'r>,
    removed: &'a mut Vec<String>,
    // Tree id -> rewritten id (None: unreadable).
    memo: HashMap<Id, Option<Id>>,
    // The root entry shown as the part itself, consumed at the root.
    root_entry: Option<Vec<u8>>,
}

impl Rewriter<'_, '_> {
    fn readable(&self, id: &Id) -> Result<bool> {
        self.repo.has_blob(id)
    }

    /// Whether every blob of a file is stored, its content lists included
    /// (a list that is missing or does not decode makes the file lost).
    fn file_readable(&self, n: &Node) -> Result<bool> {
        for b in &n.content {
            if !self.readable(b)? {
                return Ok(false);
            }
        }
        for list in &n.lists {
            if !self.readable(list)? {
                return Ok(false);
            }
            let Some(ids) = unless_damaged(read_list(self.repo, list))? else {
                return Ok(false);
            };
            for b in &ids {
                if !self.readable(b)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The tree rewritten without unreadable entries; `None` when the tree
    /// itself cannot be read.
    fn tree(&mut self, id: &Id, path: &str) -> Result<Option<Id>> {
        if let Some(m) = self.memo.get(id) {
            return Ok(*m);
        }
        if !self.readable(id)? {
            self.removed
                .push(format!("{path}/ (folder listing unreadable)"));
            self.memo.insert(*id, None);
            return Ok(None);
        }
        let read = self.repo.read_blob(id).and_then(|b| Tree::decode(&b));
        let Some(mut tree) = unless_damaged(read)? else {
            self.removed
                .push(format!("{path}/ (folder listing unreadable)"));
            self.memo.insert(*id, None);
            return Ok(None);
        };
        let mut changed = false;
        let mut keep = Vec::new();
        let root_entry = self.root_entry.take();
        for mut n in std::mem::take(&mut tree.nodes) {
            let child = if root_entry.as_deref() == Some(n.name.as_slice()) {
                path.to_string()
            } else {
                format!("{path}/{}", String::from_utf8_lossy(&n.name))
            };
            match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(t)) => match self.tree(&t, &child)? {
                    Some(nt) => {
                        changed |= nt != t;
                        n.subtree = Some(nt);
                    }
                    None => {
                        changed = true;
                        continue;
                    }
                },
                (NodeKind::File, _) if !self.file_readable(&n)? => {
                    self.removed.push(child);
                    changed = true;
                    continue;
                }
                _ => {}
            }
            keep.push(n);
        }
        let out = if changed {
            tree.nodes = keep;
            self.packer.add(BlobKind::Tree, &tree.encode())?
        } else {
            *id
        };
        self.memo.insert(*id, Some(out));
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn only_damage_loses_an_entry_other_errors_stop_the_repair() {
        assert_eq!(unless_damaged(Ok(7)).unwrap(), Some(7));
        for damage in [
            Error::Authentication {
                what: "blob".into(),
            },
            Error::corrupt("blob", "content does not match its id"),
            Error::MissingBlob("ab12".into()),
        ] {
            assert_eq!(unless_damaged::<u8>(Err(damage)).unwrap(), None);
        }
        let unreachable = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let e = unless_damaged::<u8>(Err(Error::io("reading", "data/ab/ab12", unreachable)))
            .unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
    }
}
