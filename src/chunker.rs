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
}

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
        ChunkingPolicy {
            default: CdcParams::DEFAULT,
            // One page per chunk: the reference vector database rewrites 17% of its 4 KiB pages
            // a day, scattered, so any grouping multiplies the churn.
            sqlite_pages_per_chunk: 1,
            rules: ["*.bin", "*.pickle", "*.hnsw"]
                .into_iter()
                .map(|g| ChunkRule {
                    glob: g.into(),
                    chunking: small,
                })
                .collect(),
        }
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
            if let ChunkMethod::Cdc(p) = r.chunking {
                p.validate()?;
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
                let mut off = 0;
                while off < data.len() {
                    let end = (off + step).min(data.len());
                    f(off..end);
                    off = end;
                }
            }
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
        }
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
            c.method_for(b"a/b/data_level0.bin", b""),
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
    fn invalid_sizes_are_errors_not_panics() {
        let mut p = ChunkingPolicy::default();
        p.default.max = 1 << 30;
        assert!(Chunker::new(p, 0).is_err());
    }
}
