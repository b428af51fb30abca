//! Rebuilding the derived index from the packs and snapshot objects alone.

use rayon::prelude::*;

use super::pack::{pack_id_from_name, read_trailer};
use super::Repository;
use crate::error::{Error, Result};

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

impl Repository {
    /// Re-reads every pack trailer and snapshot record into a clean index.
    pub fn rebuild_index(&self) -> Result<RebuildReport> {
        let names: Vec<String> = self
            .backend()
            .list("data")?
            .into_iter()
            .filter(|n| pack_id_from_name(n).is_some())
            .collect();
        let trailers: Vec<_> = names
            .par_iter()
            .map(|n| {
                let size = self.backend().size(n).ok().flatten().unwrap_or(0);
                (n, size, read_trailer(self.backend(), self.sealer(), n))
            })
            .collect();
        self.index().clear_packs()?;
        let mut report = RebuildReport::default();
        for (name, size, res) in trailers {
            match res {
                Ok(entries) => {
                    let id = pack_id_from_name(name).expect("filtered above");
                    self.index().add_pack(&id, size, &entries)?;
                    report.packs += 1;
                    report.blobs += entries.len() as u64;
                }
                Err(e) => report.bad_packs.push((name.clone(), e.to_string())),
            }
        }
        for (id, _) in self.index().snapshots()? {
            self.index().remove_snapshot(&id)?;
        }
        report.snapshots = self.sync_snapshot_cache()?;
        Ok(report)
    }

    /// Brings the index's snapshot cache in line with `snapshots/`: adds new
    /// records, drops removed ones. Returns how many records are cached.
    pub fn sync_snapshot_cache(&self) -> Result<u64> {
        let on_disk = self.list_objects("snapshots")?;
        let cached: std::collections::HashSet<_> = self
            .index()
            .snapshots()?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let disk_set: std::collections::HashSet<_> = on_disk.iter().copied().collect();
        for id in cached.difference(&disk_set) {
            self.index().remove_snapshot(id)?;
        }
        for id in disk_set.difference(&cached) {
            let plain = self.read_object("snapshots", id)?;
            let json = String::from_utf8(plain)
                .map_err(|_| Error::corrupt(format!("snapshot {id}"), "not UTF-8 JSON"))?;
            let v: serde_json::Value = serde_json::from_str(&json)
                .map_err(|e| Error::corrupt(format!("snapshot {id}"), e.to_string()))?;
            let time = v
                .get("time")
                .and_then(|t| t.as_str())
                .unwrap_or("")
                .to_string();
            self.index().put_snapshot(id, &time, &json)?;
        }
        Ok(disk_set.len() as u64)
    }
}
