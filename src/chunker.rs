//! Chunking: which bytes of a file become which blobs.
//!
//! A [`ChunkingPolicy`] maps each file to a [`ChunkMethod`]: content-defined
//! chunking (FastCDC 2020 with a keyed gear table) at some size, or fixed
//! groups of SQLite pages. The policy is recorded in the repository config so
//! that the same file always cuts the same way and dedup stays stable.
//! Format: `docs/FORMAT.md` §3.

use std::ops::Range;

use fastcdc::v2020::{FastCDC, Normalization};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// FastCDC size parameters in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdcParams {
    /// Smallest chunk (except a file's last).
    pub min: u32,
    /// Target average chunk.
    pub avg: u32,
    /// Largest chunk.
    pub max: u32,
}

impl CdcParams {
    /// 512 KiB / 1 MiB / 8 MiB: the default for files that change by
    /// appending or whole-file rewrite. Close to restic's and borg's sizes,
    /// which keeps the index small (about one row per MiB) for bulk data.
    pub const DEFAULT: CdcParams = CdcParams {
        min: 512 * 1024,
        avg: 1024 * 1024,
        max: 8 * 1024 * 1024,
    };

    /// 4 / 16 / 64 KiB: for binary files rewritten in place, such as HNSW
    /// segments, where a 1 MiB chunk almost always contains a changed page.
    pub const SMALL: CdcParams = CdcParams {
        min: 4 * 1024,
        avg: 16 * 1024,
        max: 64 * 1024,
    };

    /// Checks the limits FastCDC 2020 asserts on, so a bad config is an
    /// error and not a panic.
    pub fn validate(&self) -> Result<()> {
        use fastcdc::v2020::{
            AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN,
        };
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&self.min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&self.avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&self.max)
            && self.min <= self.avg
            && self.avg <= self.max;
        if ok {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "invalid chunk sizes {}/{}/{}: need {MINIMUM_MIN}..={MINIMUM_MAX} <= {AVERAGE_MIN}..={AVERAGE_MAX} <= {MAXIMUM_MIN}..={MAXIMUM_MAX} bytes, min <= avg <= max",
                self.min, self.avg, self.max
            )))
        }
    }
}

/// How one file is cut into chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChunkMethod {
    /// Content-defined chunking with these sizes.
    Cdc(CdcParams),
    /// SQLite database: fixed chunks of whole pages (page size read from the
    /// file header), so a rewritten page changes exactly one chunk.
    SqlitePages {
        /// Pages per chunk.
        pages_per_chunk: u32,
    },
    /// Fixed-size chunks (the last may be shorter): for files of fixed-size
    /// records rewritten in place and grown at the end, where a changed
    /// record changes only the chunks it lies in. Format version 2.
    Fixed {
        /// Chunk size in bytes, [`FIXED_MIN`] to [`FIXED_MAX`].
        size: u32,
    },
}

/// Smallest fixed chunk size: below it the per-blob index row, trailer
/// entry and id in the tree outweigh what finer cuts save.
pub const FIXED_MIN: u32 = 512;
/// Largest fixed chunk size (the largest CDC chunk).
pub const FIXED_MAX: u32 = 16 << 20;

/// The chunk size of the default rule for HNSW level-0 data.
pub const HNSW_LEVEL0_CHUNK: u32 = 4096;

/// A glob rule of the policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkRule {
    /// Glob; without `/` it matches the file name, with `/` the path
    /// relative to the snapshot part's root.
    pub glob: String,
    /// Method for matching files.
    pub chunking: ChunkMethod,
}

/// The repository's chunking policy. Rules are tried in order, then SQLite
/// header detection, then the default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkingPolicy {
    /// Method for files no rule matches.
    pub default: CdcParams,
    /// Pages per chunk for files detected as SQLite by their header; 0
    /// disables detection.
    pub sqlite_pages_per_chunk: u32,
    /// Glob rules, first match wins.
    pub rules: Vec<ChunkRule>,
}

impl Default for ChunkingPolicy {
    fn default() -> Self {
        let small = ChunkMethod::Cdc(CdcParams::SMALL);
        // hnswlib's level-0 file: fixed-size elements (links, vector,
        // label), links rewritten in place, new elements appended. On the
        // reference data a day rewrites 95 MB of its 134 MB in 4 KiB blocks
        // but 133 MB in 16 KiB ones; 2 KiB blocks (62 MB) would double the
        // blobs (index rows, trailer entries, ids in trees) for the rest.
        let level0 = ChunkRule {
            glob: "data_level0.bin".into(),
            chunking: ChunkMethod::Fixed {
                size: HNSW_LEVEL0_CHUNK,
            },
        };
        ChunkingPolicy {
            default: CdcParams::DEFAULT,
            // One page per chunk: the reference vector database rewrites 17% of its 4 KiB pages
            // a day, scattered, so any grouping multiplies the churn.
            sqlite_pages_per_chunk: 1,
            rules: std::iter::once(level0)
                .chain(
                    ["*.bin", "*.pickle", "*.hnsw"]
                        .into_iter()
                        .map(|g| ChunkRule {
                            glob: g.into(),
                            chunking: small,
                        }),
                )
                .collect(),
        }
    }
}

impl ChunkingPolicy {
    /// Whether every method of the policy is one format version 1 knows.
    pub fn is_format1(&self) -> bool {
        !self
            .rules
            .iter()
            .any(|r| matches!(r.chunking, ChunkMethod::Fixed { .. }))
    }

    /// The default policy as format version 1 had it: no fixed-size rule.
    pub fn format1_default() -> ChunkingPolicy {
        let mut p = ChunkingPolicy::default();
        p.rules
            .retain(|r| !matches!(r.chunking, ChunkMethod::Fixed { .. }));
        p
    }
}

/// A policy compiled for matching.
pub struct Chunker {
    policy: ChunkingPolicy,
    name_globs: Vec<(globset::GlobMatcher, bool)>,
    seed: u64,
}

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

impl Chunker {
    /// Compiles `policy`; `seed` keys the gear table.
    pub fn new(policy: ChunkingPolicy, seed: u64) -> Result<Chunker> {
        policy.default.validate()?;
        if policy.sqlite_pages_per_chunk > 256 {
            return Err(Error::Config(format!(
                "sqlite_pages_per_chunk {} is too large: at most 256 (16 MiB chunks of 64 KiB pages)",
                policy.sqlite_pages_per_chunk
            )));
        }
        let mut name_globs = Vec::new();
        for r in &policy.rules {
            match r.chunking {
                ChunkMethod::Cdc(p) => p.validate()?,
                ChunkMethod::Fixed { size } if !(FIXED_MIN..=FIXED_MAX).contains(&size) => {
                    return Err(Error::Config(format!(
                        "chunking rule {:?}: fixed chunk size {size} is outside {FIXED_MIN}..={FIXED_MAX} bytes",
                        r.glob
                    )));
                }
                _ => {}
            }
            let g = globset::GlobBuilder::new(&r.glob)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::Config(format!("chunking rule {:?}: {e}", r.glob)))?;
            name_globs.push((g.compile_matcher(), r.glob.contains('/')));
        }
        Ok(Chunker {
            policy,
            name_globs,
            seed,
        })
    }

    /// The method for a file, given its relative path and first bytes.
    pub fn method_for(&self, rel_path: &[u8], head: &[u8]) -> ChunkMethod {
        let name = rel_path.rsplit(|b| *b == b'/').next().unwrap_or(rel_path);
        let rel = String::from_utf8_lossy(rel_path);
        let name = String::from_utf8_lossy(name);
        for ((g, full), r) in self.name_globs.iter().zip(&self.policy.rules) {
            let subject: &str = if *full { &rel } else { &name };
            if g.is_match(subject) {
                return r.chunking;
            }
        }
        if self.policy.sqlite_pages_per_chunk > 0 && sqlite_page_size(head).is_some() {
            return ChunkMethod::SqlitePages {
                pages_per_chunk: self.policy.sqlite_pages_per_chunk,
            };
        }
        ChunkMethod::Cdc(self.policy.default)
    }

    /// Cuts `data` with `method`, calling `f` with each chunk's range in
    /// order. An empty input yields no chunks.
    pub fn cut(&self, data: &[u8], method: ChunkMethod, mut f: impl FnMut(Range<usize>)) {
        match method {
            ChunkMethod::SqlitePages { pages_per_chunk } => {
                let page = sqlite_page_size(data).unwrap_or(4096);
                let step = (page as usize) * (pages_per_chunk.max(1) as usize);
                fixed_cuts(data.len(), step, f);
            }
            ChunkMethod::Fixed { size } => fixed_cuts(data.len(), size as usize, f),
            ChunkMethod::Cdc(p) => {
                for c in FastCDC::with_level_and_seed(
                    data,
                    p.min,
                    p.avg,
                    p.max,
                    Normalization::Level1,
                    self.seed,
                ) {
                    f(c.offset..c.offset + c.length);
                }
            }
        }
    }

    /// The largest chunk `method` can produce, to size buffers.
    pub fn max_chunk(method: ChunkMethod) -> usize {
        match method {
            ChunkMethod::Cdc(p) => p.max as usize,
            ChunkMethod::SqlitePages { pages_per_chunk } => 65536 * pages_per_chunk as usize,
            ChunkMethod::Fixed { size } => size as usize,
        }
    }
}

/// Calls `f` with `[0, step)`, `[step, 2·step)`, ... up to `len`.
fn fixed_cuts(len: usize, step: usize, mut f: impl FnMut(Range<usize>)) {
    let mut off = 0;
    while off < len {
        let end = (off + step).min(len);
        f(off..end);
        off = end;
    }
}

/// The page size of an SQLite database header, if `head` is one.
pub fn sqlite_page_size(head: &[u8]) -> Option<u32> {
    if head.len() < 100 || &head[..16] != SQLITE_MAGIC {
        return None;
    }
    let raw = u16::from_be_bytes([head[16], head[17]]) as u32;
    let size = if raw == 1 { 65536 } else { raw };
    (size.is_power_of_two() && (512..=65536).contains(&size)).then_some(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_detected_and_cut_on_pages() {
        let mut db = vec![0u8; 4096 * 5 + 100];
        db[..16].copy_from_slice(SQLITE_MAGIC);
        db[16..18].copy_from_slice(&4096u16.to_be_bytes());
        let c = Chunker::new(ChunkingPolicy::default(), 1).unwrap();
        let m = c.method_for(b"x/chroma.sqlite3", &db);
        assert_eq!(m, ChunkMethod::SqlitePages { pages_per_chunk: 1 });
        let mut cuts = vec![];
        c.cut(&db, m, |r| cuts.push(r));
        assert_eq!(cuts.len(), 6);
        assert!(cuts[..5]
            .iter()
            .all(|r| r.len() == 4096 && r.start % 4096 == 0));
    }

    #[test]
    fn globs_match_names_and_paths() {
        let mut p = ChunkingPolicy::default();
        p.rules.push(ChunkRule {
            glob: "deep/**/*.dat".into(),
            chunking: ChunkMethod::Cdc(CdcParams::SMALL),
        });
        let c = Chunker::new(p, 1).unwrap();
        assert_eq!(
            c.method_for(b"a/b/link_lists.bin", b""),
            ChunkMethod::Cdc(CdcParams::SMALL)
        );
        assert_eq!(
            c.method_for(b"deep/x/y.dat", b""),
            ChunkMethod::Cdc(CdcParams::SMALL)
        );
        assert_eq!(
            c.method_for(b"other/y.dat", b""),
            ChunkMethod::Cdc(CdcParams::DEFAULT)
        );
    }

    #[test]
    fn level0_files_are_cut_in_fixed_blocks_and_others_keep_cdc() {
        let c = Chunker::new(ChunkingPolicy::default(), 1).unwrap();
        let m = c.method_for(b"seg/data_level0.bin", b"");
        assert_eq!(m, ChunkMethod::Fixed { size: 4096 });
        assert_eq!(
            c.method_for(b"seg/link_lists.bin", b""),
            ChunkMethod::Cdc(CdcParams::SMALL)
        );
        let mut cuts = vec![];
        c.cut(&[7u8; 4096 * 3 + 5], m, |r| cuts.push(r));
        assert_eq!(cuts, vec![0..4096, 4096..8192, 8192..12288, 12288..12293]);
        assert!(!ChunkingPolicy::default().is_format1());
        assert!(ChunkingPolicy::format1_default().is_format1());
        let mut p = ChunkingPolicy::default();
        p.rules[0].chunking = ChunkMethod::Fixed { size: 100 };
        assert!(Chunker::new(p, 0).is_err(), "too small a fixed size");
    }

    #[test]
    fn invalid_sizes_are_errors_not_panics() {
        let mut p = ChunkingPolicy::default();
        p.default.max = 1 << 30;
        assert!(Chunker::new(p, 0).is_err());
    }
}
