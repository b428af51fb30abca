//! `check`: is every snapshot restorable? What `check` guarantees is
//! written in `docs/RUNBOOK.md` ("What check proves").
//!
//! 1. Key slots parse; every snapshot record authenticates.
//! 2. Every pack's trailer authenticates and agrees with the index.
//! 3. With `--read-data` (or a subset), every blob of the chosen packs is
//!    read, authenticated and re-hashed.
//! 4. Every snapshot's trees are walked (each clean subtree once): every
//!    tree decodes, every referenced blob is indexed and not found damaged.
//!
//! Each problem lists the snapshots and paths it affects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::pipeline::Progress;
use crate::repo::Repository;
use crate::snapshot::{self as snap, read_list, Node, NodeKind, Tree};

/// How much data to read.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadData {
    /// Structure only.
    None,
    /// Every pack.
    All,
    /// This share of the packs (0..1], continuing where the last run
    /// stopped, so repeated runs cover everything.
    Fraction(f64),
    /// Slice `n` of `m` (1-based): packs whose id's first byte is `n-1`
    /// modulo `m`.
    Slice(u32, u32),
}

impl ReadData {
    /// Parses `10%`, `0.1` or `2/5`.
    pub fn parse_subset(s: &str) -> Result<ReadData> {
        let bad = || {
            Error::Invalid(format!(
                "{s:?} is not a subset: give a percentage (10%), a fraction (0.1) or a slice (2/5)"
            ))
        };
        if let Some((n, m)) = s.split_once('/') {
            let (n, m): (u32, u32) = (
                n.trim().parse().map_err(|_| bad())?,
                m.trim().parse().map_err(|_| bad())?,
            );
            if m == 0 || n == 0 || n > m {
                return Err(bad());
            }
            return Ok(ReadData::Slice(n, m));
        }
        let f = match s.strip_suffix('%') {
            Some(p) => p.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
            None => s.trim().parse::<f64>().map_err(|_| bad())?,
        };
        if !(f > 0.0 && f <= 1.0) {
            return Err(bad());
        }
        Ok(ReadData::Fraction(f))
    }
}

/// A snapshot path a problem makes unrestorable (or restorable only in part).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Affected {
    /// Snapshot id (hex).
    pub snapshot: String,
    /// `<component>/...` path inside it.
    pub path: String,
}

/// One problem and what it affects.
#[derive(Clone, Debug, Serialize)]
pub struct CheckProblem {
    /// What is wrong.
    pub problem: String,
    /// Snapshot paths affected (empty when no snapshot uses the data).
    pub affected: Vec<Affected>,
}

/// The result of a check.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    /// Packs on storage.
    pub packs: u64,
    /// Blobs in their trailers.
    pub blobs: u64,
    /// Snapshot records.
    pub snapshots: u64,
    /// Distinct trees walked.
    pub trees: u64,
    /// Packs whose data was read.
    pub packs_read: u64,
    /// Bytes read for `--read-data`.
    pub bytes_read: u64,
    /// Damage found; empty when clean.
    pub problems: Vec<CheckProblem>,
    /// Harmless findings (e.g. packs not in the index).
    pub notes: Vec<String>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl CheckReport {
    /// Whether nothing is damaged.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `repo`.
pub fn check(repo: &Repository, read: &ReadData, progress: &dyn Progress) -> Result<CheckReport> {
    let started = Instant::now();
    let mut rep = CheckReport::default();
    // Damaged blobs with the reason, from the structure and data checks.
    let mut bad: HashMap<Id, String> = HashMap::new();
    let mut general: Vec<String> = Vec::new();

    for slot in repo.key_slots()? {
        let raw = repo.backend().read(&format!("keys/{slot}"))?;
        if serde_json::from_slice::<serde_json::Value>(&raw).is_err() {
            general.push(format!("key slot {slot} is not valid JSON (damaged); other slots still open the repository"));
        }
    }
    let cached: HashSet<Id> = repo
        .index()
        .snapshots()?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for id in repo.list_objects("snapshots")? {
        if !cached.contains(&id) && repo.read_object("snapshots", &id).is_err() {
            general.push(format!(
                "snapshot record {} is damaged and cannot be read; forget it with `opc-store forget {}`",
                id.short(),
                id.short()
            ));
        }
    }

    let packs = repo.check_packs()?;
    rep.packs = packs.packs;
    rep.blobs = packs.blobs;
    for p in &packs.problems {
        for b in &p.blobs {
            bad.entry(*b)
                .or_insert_with(|| format!("pack {} {}", &p.pack[..16], p.problem));
        }
        if p.blobs.is_empty() {
            general.push(format!("pack {} {}", &p.pack[..16], p.problem));
        }
    }
    for u in &packs.unindexed {
        rep.notes.push(format!(
            "pack {} is not in the index: left by an interrupted snapshot (prune removes it) or indexed by `opc-store repair index`",
            &u[..16]
        ));
    }

    let chosen = choose_packs(repo, read)?;
    progress.add_total(chosen.len() as u64, 0);
    type PackResult = Result<(Vec<(Id, String)>, u64)>;
    let results: Vec<PackResult> = chosen
        .par_iter()
        .map(|p| {
            let r = repo.verify_pack_data(p);
            progress.advance(1, 0);
            r
        })
        .collect();
    for r in results {
        let (damaged, n) = r?;
        rep.packs_read += 1;
        rep.bytes_read += n;
        for (id, why) in damaged {
            bad.entry(id).or_insert(why);
        }
    }

    // Walk every snapshot, attributing damage to paths.
    let mut by_problem: BTreeMap<String, Vec<Affected>> = BTreeMap::new();
    let mut walker = Walker {
        repo,
        bad: &bad,
        clean: HashSet::new(),
        found: &mut by_problem,
        trees: 0,
        seen_bad: HashSet::new(),
    };
    let snaps = snap::list(repo)?;
    rep.snapshots = snaps.len() as u64;
    for (sid, s) in &snaps {
        for part in &s.parts {
            let view = super::part_view(repo, s, part);
            let root = match view {
                Ok(n) => n,
                Err(e) => {
                    walker.record(format!("root of {}: {e}", part.name), sid, &part.name);
                    continue;
                }
            };
            if let Some(t) = root.subtree {
                walker.walk(&t, sid, part.name.clone());
            } else if root.kind == NodeKind::File {
                walker.file(&root, sid, &part.name);
            }
        }
    }
    rep.trees = walker.trees;
    let seen_bad = std::mem::take(&mut walker.seen_bad);
    // Damaged blobs no snapshot uses are still reported (they waste space);
    // blobs below a lost folder listing are not reached, but share the
    // reported problem's cause.
    let seen_reasons: HashSet<&String> = seen_bad.iter().filter_map(|id| bad.get(id)).collect();
    for (id, why) in &bad {
        if !seen_bad.contains(id) && !seen_reasons.contains(why) && !by_problem.contains_key(why) {
            by_problem.insert(why.clone(), Vec::new());
        }
    }
    for g in general {
        rep.problems.push(CheckProblem {
            problem: g,
            affected: vec![],
        });
    }
    for (problem, mut affected) in by_problem {
        affected.sort();
        affected.dedup();
        rep.problems.push(CheckProblem { problem, affected });
    }
    rep.seconds = started.elapsed().as_secs_f64();
    Ok(rep)
}

struct Walker<'a> {
    repo: &'a Repository,
    bad: &'a HashMap<Id, String>,
    clean: HashSet<Id>,
    found: &'a mut BTreeMap<String, Vec<Affected>>,
    trees: u64,
    // Damaged blobs some snapshot references.
    seen_bad: HashSet<Id>,
}

impl Walker<'_> {
    fn record(&mut self, problem: String, sid: &Id, path: &str) {
        self.found.entry(problem).or_default().push(Affected {
            snapshot: sid.to_hex(),
            path: path.to_string(),
        });
    }

    fn blob_problem(&mut self, id: &Id) -> Option<String> {
        if let Some(why) = self.bad.get(id) {
            self.seen_bad.insert(*id);
            return Some(why.clone());
        }
        match self.repo.has_blob(id) {
            Ok(true) => None,
            Ok(false) => Some(format!("blob {} is not stored in any pack", id.short())),
            Err(e) => Some(e.to_string()),
        }
    }

    /// Returns whether the subtree is clean.
    fn walk(&mut self, tree_id: &Id, sid: &Id, path: String) -> bool {
        if self.clean.contains(tree_id) {
            return true;
        }
        self.trees += 1;
        if let Some(p) = self.blob_problem(tree_id) {
            self.record(format!("{p} (a folder listing)"), sid, &format!("{path}/"));
            return false;
        }
        let tree = match self.repo.read_blob(tree_id).and_then(|b| Tree::decode(&b)) {
            Ok(t) => t,
            Err(e) => {
                self.record(e.to_string(), sid, &format!("{path}/"));
                return false;
            }
        };
        let mut ok = true;
        for n in &tree.nodes {
            let child = format!("{path}/{}", String::from_utf8_lossy(&n.name));
            match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(t)) => ok &= self.walk(&t, sid, child),
                (NodeKind::File, _) => ok &= self.file(n, sid, &child),
                _ => {}
            }
        }
        if ok {
            self.clean.insert(*tree_id);
        }
        ok
    }

    fn file(&mut self, n: &Node, sid: &Id, path: &str) -> bool {
        let mut ok = self.blobs(&n.content, sid, path);
        for list in &n.lists {
            ok &= self.list(list, sid, path);
        }
        ok
    }

    fn blobs(&mut self, ids: &[Id], sid: &Id, path: &str) -> bool {
        let mut ok = true;
        for id in ids {
            if let Some(p) = self.blob_problem(id) {
                self.record(p, sid, path);
                ok = false;
            }
        }
        ok
    }

    /// Checks a content list and its blobs; a clean list (unchanged files
    /// share theirs between snapshots) is read once.
    fn list(&mut self, list: &Id, sid: &Id, path: &str) -> bool {
        if self.clean.contains(list) {
            return true;
        }
        if let Some(p) = self.blob_problem(list) {
            self.record(format!("{p} (a content list)"), sid, path);
            return false;
        }
        let ids = match read_list(self.repo, list) {
            Ok(ids) => ids,
            Err(e) => {
                self.record(e.to_string(), sid, path);
                return false;
            }
        };
        let ok = self.blobs(&ids, sid, path);
        if ok {
            self.clean.insert(*list);
        }
        ok
    }
}

/// The packs whose data `read` asks for.
fn choose_packs(repo: &Repository, read: &ReadData) -> Result<Vec<Id>> {
    let mut all: Vec<Id> = repo
        .index()
        .packs()?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    all.sort();
    Ok(match read {
        ReadData::None => vec![],
        ReadData::All => all,
        ReadData::Slice(n, m) => all
            .into_iter()
            .filter(|p| u32::from(p.0[0]) % m == n - 1)
            .collect(),
        ReadData::Fraction(f) => {
            if all.is_empty() {
                return Ok(all);
            }
            // A cursor in the cache folder makes successive runs rotate.
            let cursor_file = repo.cache_dir().join("check-cursor");
            let start: Id = std::fs::read_to_string(&cursor_file)
                .ok()
                .and_then(|s| Id::from_hex(s.trim()))
                .unwrap_or(Id([0; 32]));
            let count = ((all.len() as f64 * f).ceil() as usize).clamp(1, all.len());
            let first = all.iter().position(|p| *p >= start).unwrap_or(0);
            let chosen: Vec<Id> = (0..count).map(|k| all[(first + k) % all.len()]).collect();
            let next = all[(first + count) % all.len()];
            let _ = std::fs::write(&cursor_file, next.to_hex());
            chosen
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_parse() {
        assert_eq!(
            ReadData::parse_subset("10%").unwrap(),
            ReadData::Fraction(0.1)
        );
        assert_eq!(
            ReadData::parse_subset("0.5").unwrap(),
            ReadData::Fraction(0.5)
        );
        assert_eq!(
            ReadData::parse_subset("2/5").unwrap(),
            ReadData::Slice(2, 5)
        );
        for b in ["0%", "150%", "0/5", "6/5", "x", "1/0"] {
            assert!(ReadData::parse_subset(b).is_err(), "{b}");
        }
    }
}
