//! Throughput (MB/s) of each stage of the write path, and of the whole path.
//!
//! Run: `cargo bench --bench pipeline` (a few minutes on 2 cores);
//! smoke test: `cargo bench --bench pipeline -- --test` (each bench once).
//!
//! Input is deterministic so figures compare across runs: a mix of
//! incompressible bytes (like media or already-compressed files) and
//! text-like bytes (like chat logs and JSON), because chunking speed and
//! compression ratio both depend on the content.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opc_store::chunker::{CdcParams, ChunkMethod, Chunker, ChunkingPolicy};
use opc_store::crypto::{KdfParams, MasterKeys, Sealer};
use opc_store::repo::InitOptions;
use opc_store::{BlobKind, Repository};

const MIB: usize = 1024 * 1024;
const DATA_LEN: usize = 16 * MIB;

/// xorshift64*: tiny, deterministic, and good enough to defeat zstd.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// JSON-lines chat messages from a small vocabulary: zstd level 3 gets
/// roughly 3-5x on it, like real conversation exports.
fn text_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "backup",
        "model",
        "user",
        "assistant",
        "message",
        "vector",
        "index",
        "store",
        "please",
        "restore",
        "snapshot",
        "and",
        "of",
        "to",
        "a",
        "in",
        "is",
        "that",
        "for",
        "embedding",
        "chroma",
        "sqlite",
        "page",
        "chunk",
        "what",
        "how",
        "can",
        "you",
        "explain",
    ];
    let mut out = Vec::with_capacity(len + 256);
    let mut n = 0u64;
    while out.len() < len {
        n += 1;
        let role = if n % 2 == 0 { "user" } else { "assistant" };
        out.extend_from_slice(
            format!(
                "{{\"id\":{n},\"ts\":{},\"role\":\"{role}\",\"text\":\"",
                1_700_000_000 + n * 7
            )
            .as_bytes(),
        );
        for _ in 0..(5 + rng.next() % 40) {
            out.extend_from_slice(WORDS[(rng.next() % WORDS.len() as u64) as usize].as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(b"\"}\n");
    }
    out.truncate(len);
    out
}

/// 16 MiB alternating, at random, between 64-512 KiB runs of each kind.
fn mixed_bytes() -> Vec<u8> {
    let mut rng = Rng(0x5EED_0F0C_5EED_0F0C);
    let mut out = Vec::with_capacity(DATA_LEN);
    while out.len() < DATA_LEN {
        let run = (64 + (rng.next() % 449) as usize) * 1024;
        let run = run.min(DATA_LEN - out.len());
        let part = if rng.next() % 2 == 0 {
            random_bytes(&mut rng, run)
        } else {
            text_bytes(&mut rng, run)
        };
        out.extend_from_slice(&part);
    }
    out
}

/// The same bytes behind an SQLite header with 4 KiB pages, so the chunker
/// takes its page path.
fn sqlite_like(data: &[u8]) -> Vec<u8> {
    let mut db = data.to_vec();
    db[..16].copy_from_slice(b"SQLite format 3\0");
    db[16..18].copy_from_slice(&4096u16.to_be_bytes());
    db
}

fn chunker() -> Chunker {
    // Fixed seed: chunk boundaries, and so the figures, repeat across runs.
    Chunker::new(ChunkingPolicy::default(), 0x0123_4567_89AB_CDEF).expect("default policy is valid")
}

fn chunking(c: &mut Criterion) {
    let data = mixed_bytes();
    let db = sqlite_like(&data);
    let ch = chunker();
    let mut g = c.benchmark_group("chunking");
    g.throughput(Throughput::Bytes(data.len() as u64));
    for (name, input, method) in [
        (
            "fastcdc_default_1MiB",
            &data,
            ChunkMethod::Cdc(CdcParams::DEFAULT),
        ),
        (
            "fastcdc_small_16KiB",
            &data,
            ChunkMethod::Cdc(CdcParams::SMALL),
        ),
        (
            "sqlite_pages_4KiB",
            &db,
            ChunkMethod::SqlitePages { pages_per_chunk: 1 },
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                ch.cut(input, method, |r| n += r.len());
                assert_eq!(n, input.len());
            })
        });
    }
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let data = mixed_bytes();
    let keys = MasterKeys::generate();
    let mut g = c.benchmark_group("hashing");
    g.throughput(Throughput::Bytes(data.len() as u64));
    // The two sizes the default policy produces: DEFAULT and SMALL averages.
    for (name, size) in [
        ("blake3_keyed_1MiB", MIB),
        ("blake3_keyed_16KiB", 16 * 1024),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                for chunk in data.chunks(size) {
                    std::hint::black_box(keys.blob_id(chunk));
                }
            })
        });
    }
    g.finish();
}

fn compression(c: &mut Criterion) {
    let mut rng = Rng(42);
    let text = text_bytes(&mut rng, 4 * MIB);
    let random = random_bytes(&mut rng, 4 * MIB);
    let mut g = c.benchmark_group("compression");
    for (name, input) in [("zstd3_text", &text), ("zstd3_random", &random)] {
        g.throughput(Throughput::Bytes(input.len() as u64));
        // Per 1 MiB chunk, as the write path compresses each blob alone.
        g.bench_function(name, |b| {
            b.iter(|| {
                for chunk in input.chunks(MIB) {
                    std::hint::black_box(opc_store::compress::compress(
                        chunk,
                        opc_store::compress::Codec::plain(3),
                    ));
                }
            })
        });
    }
    g.finish();
}

/// float32 values around +-1, as embedding vectors are.
fn float_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len / 4)
        .flat_map(|_| ((rng.next() % 2_000_000) as f32 / 1e6 - 1.0).to_le_bytes())
        .collect()
}

fn lanes(c: &mut Criterion) {
    use opc_store::compress::{compress, Codec};
    let mut rng = Rng(11);
    let floats = float_bytes(&mut rng, 4 * MIB);
    let mut g = c.benchmark_group("lanes");
    g.throughput(Throughput::Bytes(floats.len() as u64));
    // The sample decides per blob: it must cost next to nothing.
    g.bench_function("sample_4MiB_per_1MiB", |b| {
        b.iter(|| {
            for chunk in floats.chunks(MIB) {
                std::hint::black_box(opc_store::lanes::sample(&[chunk]).helps());
            }
        })
    });
    g.bench_function("split", |b| {
        b.iter(|| std::hint::black_box(opc_store::lanes::split(&floats)))
    });
    let split = opc_store::lanes::split(&floats);
    g.bench_function("join", |b| {
        b.iter(|| std::hint::black_box(opc_store::lanes::join(&split)))
    });
    for (name, lanes) in [("zstd1_floats", false), ("zstd1_floats_over_lanes", true)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                for chunk in floats.chunks(MIB) {
                    std::hint::black_box(compress(chunk, Codec { level: 1, lanes }));
                }
            })
        });
    }
    g.finish();
}

fn encryption(c: &mut Criterion) {
    let sealer = Sealer::encrypted(&[7u8; 32]);
    let mut rng = Rng(7);
    let mut g = c.benchmark_group("encryption");
    for (name, size) in [
        ("xchacha20poly1305_1MiB", MIB),
        ("xchacha20poly1305_16KiB", 16 * 1024),
    ] {
        let buf = random_bytes(&mut rng, size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(name, |b| b.iter(|| sealer.seal(b"bench aad", &buf)));
    }
    g.finish();
}

/// A fresh repository per iteration, since a second pass over the same data
/// in one repository would only measure deduplication.
fn new_repo() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = InitOptions {
        // Cheap Argon2: key derivation is a one-off cost, not throughput.
        kdf: KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..Default::default()
    };
    // The index cache goes in the tempdir too: under the default root
    // (~/.cache/opc-store) every iteration would leave a folder behind.
    let repo = Repository::init_in(
        &dir.path().join("repo"),
        Some(b"bench"),
        &opts,
        &dir.path().join("cache"),
    )
    .expect("init");
    (dir, repo)
}

fn write_path(c: &mut Criterion) {
    let data = mixed_bytes();
    let mut g = c.benchmark_group("write_path");
    g.throughput(Throughput::Bytes(data.len() as u64));
    // chunk + keyed hash + dedup lookup + zstd 3 + pad + seal + pack + fsync
    // + index insert, on one thread (the pipeline adds parallelism on top).
    g.bench_function("init_chunk_pack_flush_16MiB", |b| {
        b.iter_batched(
            new_repo,
            |(dir, repo)| {
                // A name no rule matches: the default 1 MiB CDC, as for most files.
                let method = repo.chunker().method_for(b"bench/export.dat", &data);
                {
                    let packer = repo.packer();
                    repo.chunker().cut(&data, method, |r| {
                        packer.add(BlobKind::Data, &data[r]).expect("add");
                    });
                    packer.flush().expect("flush");
                }
                // Returned so the tempdir is removed outside the timing.
                (dir, repo)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // Small samples: the goal is MB/s to one or two digits, within minutes
    // on a 2-core CI machine, not microsecond-level confidence intervals.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = chunking, hashing, compression, lanes, encryption, write_path
}
criterion_main!(benches);
