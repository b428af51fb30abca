//! Repository statistics: logical versus stored bytes.

use serde::Serialize;

use crate::error::Result;
use crate::repo::Repository;
use crate::snapshot as snap;

/// Figures for `opc-store stats`.
#[derive(Clone, Debug, Serialize)]
pub struct StatsReport {
    /// Snapshots in the repository.
    pub snapshots: u64,
    /// Sum of the logical file bytes of every snapshot.
    pub logical_bytes: u64,
    /// Distinct blobs stored.
    pub blobs: u64,
    /// Plaintext bytes of distinct file content (after dedup, before compression).
    pub unique_bytes: u64,
    /// Plaintext bytes of directory listings (trees).
    pub metadata_bytes: u64,
    /// Bytes of pack files (compressed, encrypted, padded).
    pub stored_bytes: u64,
    /// Packs.
    pub packs: u64,
    /// logical / unique.
    pub dedup_ratio: f64,
    /// unique / stored.
    pub compression_ratio: f64,
    /// logical / stored.
    pub total_ratio: f64,
}

/// Computes the statistics.
pub fn stats(repo: &Repository) -> Result<StatsReport> {
    let t = repo.index().totals()?;
    let snaps = snap::list(repo)?;
    let logical: u64 = snaps.iter().map(|(_, s)| s.summary.bytes).sum();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(StatsReport {
        snapshots: snaps.len() as u64,
        logical_bytes: logical,
        blobs: t.blobs,
        unique_bytes: t.data_raw_bytes,
        metadata_bytes: t.raw_bytes - t.data_raw_bytes,
        stored_bytes: t.pack_bytes,
        packs: t.packs,
        dedup_ratio: ratio(logical, t.data_raw_bytes),
        compression_ratio: ratio(t.raw_bytes, t.pack_bytes),
        total_ratio: ratio(logical, t.pack_bytes),
    })
}
