//! Repository-level checks used by `check`: every pack's trailer against
//! the index, and (optionally) every blob's bytes.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::blob;
use super::pack::{pack_id_from_name, pack_name, read_trailer, PackEntry};
use super::Repository;
use crate::error::Result;
use crate::id::Id;

/// One problem found in the packs or the index.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PackProblem {
    /// The pack concerned (hex).
    pub pack: String,
    /// What is wrong.
    pub problem: String,
    /// Blobs made unreadable by it.
    #[serde(skip)]
    pub blobs: Vec<Id>,
}

/// What the structural pack check found.
#[derive(Clone, Debug, Default)]
pub struct PackCheck {
    /// Packs on storage.
    pub packs: u64,
    /// Blobs listed by their trailers.
    pub blobs: u64,
    /// Damage: unreadable trailers, index rows a pack does not back, packs
    /// the index names that are gone.
    pub problems: Vec<PackProblem>,
    /// Packs on storage the index does not know (harmless; garbage for
    /// prune, or indexed by `repair index`).
    pub unindexed: Vec<String>,
}

impl Repository {
    /// Reads every pack trailer and compares it with the index.
    pub fn check_packs(&self) -> Result<PackCheck> {
        use rayon::prelude::*;
        let names: Vec<String> = self
            .backend()
            .list("data")?
            .into_iter()
            .filter(|n| pack_id_from_name(n).is_some())
            .collect();
        let indexed: HashMap<Id, u64> = self.index().packs()?.into_iter().collect();
        let mut out = PackCheck {
            packs: names.len() as u64,
            ..Default::default()
        };
        let on_disk: HashSet<Id> = names.iter().filter_map(|n| pack_id_from_name(n)).collect();
        for p in indexed.keys() {
            if !on_disk.contains(p) {
                out.problems.push(PackProblem {
                    pack: p.to_hex(),
                    problem: "is in the index but missing from the repository".into(),
                    blobs: self.index_rows(p)?,
                });
            }
        }
        let read: Vec<(Id, Result<Vec<PackEntry>>)> = names
            .par_iter()
            .map(|n| {
                let id = pack_id_from_name(n).expect("filtered");
                (id, read_trailer(self.backend(), self.sealer(), n))
            })
            .collect();
        for (id, res) in read {
            match res {
                Err(e) if e.is_access_problem() => return Err(e),
                Err(e) => out.problems.push(PackProblem {
                    pack: id.to_hex(),
                    problem: format!("trailer unreadable: {e}"),
                    blobs: self.index_rows(&id)?,
                }),
                Ok(entries) => {
                    out.blobs += entries.len() as u64;
                    if !indexed.contains_key(&id) {
                        out.unindexed.push(id.to_hex());
                        continue;
                    }
                    let listed: HashMap<Id, &PackEntry> =
                        entries.iter().map(|e| (e.id, e)).collect();
                    let rows = self.index().blobs_of_packs(&[id])?;
                    let mut bad = Vec::new();
                    for (bid, loc) in rows.into_iter().flat_map(|(_, b)| b) {
                        let ok = listed.get(&bid).is_some_and(|e| {
                            e.offset == loc.offset
                                && e.length == loc.length
                                && e.kind == loc.kind
                                && e.raw_length == loc.raw_length
                                && e.group == loc.group
                        });
                        if !ok {
                            bad.push(bid);
                        }
                    }
                    if !bad.is_empty() {
                        out.problems.push(PackProblem {
                            pack: id.to_hex(),
                            problem: format!(
                                "{} index rows do not match the pack's trailer (run `opc-store repair index`)",
                                bad.len()
                            ),
                            blobs: bad,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn index_rows(&self, pack: &Id) -> Result<Vec<Id>> {
        Ok(self
            .index()
            .blobs_of_packs(&[*pack])?
            .into_iter()
            .flat_map(|(_, b)| b.into_iter().map(|(id, _)| id))
            .collect())
    }

    /// Reads pack `pack` whole and authenticates every blob its index rows
    /// name. Returns the damaged blobs with the reason, and bytes read.
    pub fn verify_pack_data(&self, pack: &Id) -> Result<(Vec<(Id, String)>, u64)> {
        let name = pack_name(pack);
        let rows = self.index().blobs_of_packs(&[*pack])?;
        let rows: Vec<_> = rows.into_iter().flat_map(|(_, b)| b).collect();
        let bytes = match self.backend().read(&name) {
            Ok(b) => b,
            // Storage out of reach is not damage: counting every blob of
            // the pack as lost would have `repair` delete a pack that is fine.
            Err(e) if e.is_access_problem() => return Err(e),
            Err(e) => {
                let why = format!("pack {} cannot be read: {e}", pack.short());
                return Ok((
                    rows.into_iter().map(|(id, _)| (id, why.clone())).collect(),
                    0,
                ));
            }
        };
        let mut bad = Vec::new();
        let mut walk = PackWalk::default();
        for (id, loc) in rows {
            let e = PackEntry {
                kind: loc.kind,
                id,
                offset: loc.offset,
                length: loc.length,
                raw_length: loc.raw_length,
                group: loc.group,
            };
            let res = walk.check(self, pack, &e, || {
                let start = loc.offset as usize;
                let end = start + loc.length as usize;
                bytes
                    .get(start..end)
                    .map(Cow::Borrowed)
                    .ok_or_else(|| format!("pack {} is truncated", pack.short()))
            });
            if let Err(why) = res {
                bad.push((id, why));
            }
        }
        Ok((bad, bytes.len() as u64))
    }
}

impl Repository {
    /// Every stored copy of the blobs in `ids`, from all pack trailers,
    /// that authenticates. Used to heal blobs damaged at their indexed
    /// location.
    pub fn intact_copies(&self, ids: &HashSet<Id>) -> Result<HashMap<Id, (Id, PackEntry)>> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for name in self.backend().list("data")? {
            let Some(pack) = pack_id_from_name(&name) else {
                continue;
            };
            let Ok(entries) = read_trailer(self.backend(), self.sealer(), &name) else {
                continue;
            };
            let mut walk = PackWalk::default();
            for e in entries {
                if !ids.contains(&e.id) || out.contains_key(&e.id) {
                    continue;
                }
                let ok = walk
                    .check(self, &pack, &e, || {
                        self.backend()
                            .read_range(&name, e.offset, e.length.into())
                            .map(Cow::Owned)
                            .map_err(|err| err.to_string())
                    })
                    .is_ok();
                if ok {
                    out.insert(e.id, (pack, e));
                }
            }
        }
        Ok(out)
    }
}

/// Authenticates the blobs of one pack in order, opening each group once.
/// It keeps its own last group rather than using the shared cache: check
/// and repair must judge the bytes as they are stored now.
#[derive(Default)]
struct PackWalk {
    group: Option<(u64, std::result::Result<Vec<u8>, String>)>,
}

impl PackWalk {
    /// Authenticates `e` of `pack`; `sealed` gives its stored bytes (its
    /// own, or its group's) when they are needed. Returns why it fails.
    fn check<'s>(
        &mut self,
        repo: &Repository,
        pack: &Id,
        e: &PackEntry,
        sealed: impl FnOnce() -> std::result::Result<Cow<'s, [u8]>, String>,
    ) -> std::result::Result<(), String> {
        let what = || format!("blob {} in pack {}", e.id.short(), pack.short());
        let id_of = |d: &[u8]| repo.blob_id(d);
        let raw = e.raw_length as usize;
        let Some(slot) = e.group else {
            let sealed = sealed()?;
            return blob::open(repo.sealer(), id_of, e.kind, &e.id, &sealed, raw, &what)
                .map(|_| ())
                .map_err(|err| err.to_string());
        };
        if self.group.as_ref().is_none_or(|(at, _)| *at != e.offset) {
            let group_what = || format!("group at {} in pack {}", e.offset, pack.short());
            let g = sealed().and_then(|s| {
                blob::open_group(repo.sealer(), e.kind, &s, slot.total as usize, &group_what)
                    .map_err(|err| err.to_string())
            });
            self.group = Some((e.offset, g));
        }
        match &self.group {
            Some((_, Ok(g))) => blob::member(g, id_of, &e.id, slot, raw, &what)
                .map(|_| ())
                .map_err(|err| err.to_string()),
            Some((_, Err(why))) => Err(why.clone()),
            None => unreachable!("opened above"),
        }
    }
}
