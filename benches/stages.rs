//! The machine's limit for a first backup, from the single-core throughput
//! of each stage of the write path measured on real data, next to the
//! first backup the binary actually makes of the same data.
//!
//! Run: `cargo bench --bench stages -- DATA` where DATA is a tree made by
//! `../shared/bench/make-dataset.py` (or any folder; `chromadb`,
//! `application` and `volumes` subfolders become components). Without
//! DATA, the demo's generated data set (`OPC_STAGE_SCALE`, default 0.1) is
//! used. `--test` (what `cargo bench` passes to check benches) runs on a
//! tiny generated tree.
//!
//! Each stage runs alone on one thread, over the bytes the write path
//! gives it: every file is read (page cache warm: one untimed pass first),
//! cut with the default chunking policy, every chunk hashed; chunks not
//! seen before are compressed as the packer does (up to 64 KiB in 1 MiB
//! groups at the group level, larger ones alone), Padmé-padded, sealed
//! with XChaCha20-Poly1305, and written to a file that is fsynced every
//! 32 MiB (a pack). The limit on N cores is the sum of the CPU stages'
//! times divided by N, or the write stage's own time if that is longer.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use opc_store::chunker::{Chunker, ChunkingPolicy};
use opc_store::compress::Codec;
use opc_store::crypto::{padme, MasterKeys, Sealer};
use opc_store::lanes;
use opc_store::repo::{group_level, GROUP_MEMBER_MAX, GROUP_TARGET};

const PACK: u64 = 32 << 20;
/// The repository default.
const LEVEL: i32 = 1;

#[derive(Default)]
struct Stages {
    read: Duration,
    chunk: Duration,
    hash: Duration,
    compress: Duration,
    seal: Duration,
    write: Duration,
    sync: Duration,
    bytes_read: u64,
    bytes_new: u64,
    bytes_compressed: u64,
    bytes_written: u64,
    files: u64,
    chunks: u64,
}

struct Writer {
    file: std::io::BufWriter<std::fs::File>,
    since_sync: u64,
}

fn timed<T>(acc: &mut Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    *acc += t.elapsed();
    r
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => dirs.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Compresses, pads, seals and writes one object (a blob or a group).
fn store(s: &mut Stages, w: &mut Writer, sealer: &Sealer, data: &[u8], codec: Codec) {
    let compressed = timed(&mut s.compress, || {
        opc_store::compress::compress(data, codec)
    });
    let payload = compressed.as_deref().unwrap_or(data);
    s.bytes_compressed += payload.len() as u64;
    let sealed = timed(&mut s.seal, || {
        let mut frame = Vec::with_capacity(padme(payload.len() as u64 + 5) as usize);
        frame.push(match (&compressed, codec.lanes) {
            (None, _) => 0,
            (Some(_), false) => 1,
            (Some(_), true) => 2,
        });
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(payload);
        frame.resize(padme(frame.len() as u64) as usize, 0);
        sealer.seal(b"stage bench", &frame)
    });
    s.bytes_written += sealed.len() as u64;
    timed(&mut s.write, || w.file.write_all(&sealed).expect("write"));
    w.since_sync += sealed.len() as u64;
    if w.since_sync >= PACK {
        sync(s, w);
    }
}

fn sync(s: &mut Stages, w: &mut Writer) {
    timed(&mut s.sync, || {
        w.file.flush().expect("flush");
        w.file.get_ref().sync_all().expect("fsync");
        w.file.get_ref().set_len(0).expect("truncate");
        use std::io::Seek;
        w.file.get_mut().rewind().expect("rewind");
    });
    w.since_sync = 0;
}

fn measure_stages(root: &Path, scratch: &Path) -> Stages {
    let chunker = Chunker::new(ChunkingPolicy::default(), 0x5eed).expect("default policy");
    let keys = MasterKeys::generate();
    let sealer = Sealer::encrypted(&[7u8; 32]);
    let mut w = Writer {
        file: std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(scratch.join("pack")).expect("scratch file"),
        ),
        since_sync: 0,
    };
    let mut s = Stages::default();
    let mut seen = HashSet::new();
    // As the packer keeps them: plain (0) and lanes (1) groups.
    let mut groups: [Vec<u8>; 2] = Default::default();
    let paths = files(root);
    for p in &paths {
        // Warm the page cache, as a backup of live data finds it.
        let _ = std::fs::read(p);
    }
    let mut cuts = Vec::new();
    for p in &paths {
        let Ok(data) = timed(&mut s.read, || std::fs::read(p)) else {
            continue;
        };
        s.files += 1;
        s.bytes_read += data.len() as u64;
        let rel = p
            .strip_prefix(root)
            .unwrap_or(p)
            .as_os_str()
            .as_encoded_bytes();
        cuts.clear();
        timed(&mut s.chunk, || {
            let method = chunker.method_for(rel, &data[..data.len().min(100)]);
            chunker.cut(&data, method, |r| cuts.push(r));
        });
        // The packer samples each batch; one sample of the file is close.
        let file_lanes = timed(&mut s.compress, || lanes::sample(&[&data]).helps());
        for r in &cuts {
            let chunk = &data[r.clone()];
            s.chunks += 1;
            let id = timed(&mut s.hash, || keys.blob_id(chunk));
            if !seen.insert(id) {
                continue;
            }
            s.bytes_new += chunk.len() as u64;
            if chunk.len() <= GROUP_MEMBER_MAX {
                let group = &mut groups[usize::from(file_lanes)];
                group.extend_from_slice(chunk);
                if group.len() >= GROUP_TARGET {
                    let codec = Codec {
                        level: group_level(LEVEL),
                        lanes: file_lanes,
                    };
                    store(&mut s, &mut w, &sealer, group, codec);
                    group.clear();
                }
            } else {
                let lanes = timed(&mut s.compress, || lanes::sample(&[chunk]).helps());
                let codec = Codec {
                    level: LEVEL,
                    lanes,
                };
                store(&mut s, &mut w, &sealer, chunk, codec);
            }
        }
    }
    for (lanes, group) in [false, true].into_iter().zip(&groups) {
        if !group.is_empty() {
            let codec = Codec {
                level: group_level(LEVEL),
                lanes,
            };
            store(&mut s, &mut w, &sealer, group, codec);
        }
    }
    sync(&mut s, &mut w);
    s
}

/// Times `opc-store backup full` of `root` into a fresh repository opened
/// with a key file, as `benches/compare.sh` runs it, [`BACKUP_RUNS`]
/// times. Returns the median wall seconds.
fn measure_backup(root: &Path, scratch: &Path) -> f64 {
    let bin = env!("CARGO_BIN_EXE_opc-store");
    let repo = scratch.join("repo");
    let mut cfg = format!(
        "repository: {}\nsanitize: {{ enabled: false }}\ncomponents:\n",
        repo.display()
    );
    let mut any = false;
    for c in ["chromadb", "application", "volumes"] {
        if root.join(c).is_dir() {
            cfg += &format!("  {c}: {{ paths: [{}] }}\n", root.join(c).display());
            any = true;
        }
    }
    if !any {
        cfg += &format!("  application: {{ paths: [{}] }}\n", root.display());
    }
    std::fs::write(scratch.join("opc.yml"), cfg).expect("config");
    std::fs::write(scratch.join("pw"), "stage bench password\n").expect("password");
    let run = |args: &[&str], secret: &str| {
        let out = Command::new(bin)
            .args(args)
            .env("OPC_CONFIG", scratch.join("opc.yml"))
            .env("OPC_CACHE_DIR", scratch.join("cache"))
            .env("OPC_PASSWORD_FILE", scratch.join(secret))
            .output()
            .expect("run opc-store");
        assert!(
            out.status.success(),
            "opc-store {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut times = Vec::new();
    for _ in 0..BACKUP_RUNS {
        for d in [&repo, &scratch.join("cache")] {
            if d.exists() {
                std::fs::remove_dir_all(d).expect("clear the last run");
            }
        }
        run(&["init"], "pw");
        let kf = scratch.join("kf");
        let _ = std::fs::remove_file(&kf);
        run(
            &["key", "add", "--new-key-file", &kf.display().to_string()],
            "pw",
        );
        // What earlier runs (and the stages) wrote and deleted is on disk
        // and discarded before the clock starts, as `benches/compare.sh`
        // does between runs.
        nix::unistd::sync();
        let t = Instant::now();
        run(&["backup", "full", "-q"], "kf");
        times.push(t.elapsed().as_secs_f64());
    }
    println!("opc-store backup full, {BACKUP_RUNS} runs: {times:.2?} s");
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// First backups timed; the median is compared with the limit.
const BACKUP_RUNS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let smoke = args.iter().any(|a| a == "--test");
    let scratch = tempfile::tempdir().expect("scratch folder");
    let root = match args.iter().find(|a| !a.starts_with("--")) {
        Some(d) => PathBuf::from(d),
        None => {
            let scale = if smoke {
                0.01
            } else {
                std::env::var("OPC_STAGE_SCALE")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0.1)
            };
            let d = scratch.path().join("data");
            opc_store::demo::dataset::generate(&d, scale).expect("generate data");
            d
        }
    };
    let s = measure_stages(&root, scratch.path());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mb = |b: u64, d: Duration| b as f64 / 1e6 / d.as_secs_f64().max(1e-9);
    println!(
        "data: {} ({} files, {:.1} MB, {} chunks, {:.1} MB new after dedup -> {:.1} MB compressed)",
        root.display(),
        s.files,
        s.bytes_read as f64 / 1e6,
        s.chunks,
        s.bytes_new as f64 / 1e6,
        s.bytes_compressed as f64 / 1e6
    );
    println!("| stage | input MB | seconds, one core | MB/s |");
    println!("| --- | --- | --- | --- |");
    let rows = [
        ("read (page cache)", s.bytes_read, s.read),
        ("chunk", s.bytes_read, s.chunk),
        ("hash (keyed BLAKE3)", s.bytes_read, s.hash),
        ("compress (zstd)", s.bytes_new, s.compress),
        (
            "pad + seal (XChaCha20-Poly1305)",
            s.bytes_compressed,
            s.seal,
        ),
        ("write (to the page cache)", s.bytes_written, s.write),
        ("fsync", s.bytes_written, s.sync),
    ];
    for (name, bytes, d) in rows {
        println!(
            "| {name} | {:.1} | {:.3} | {:.0} |",
            bytes as f64 / 1e6,
            d.as_secs_f64(),
            mb(bytes, d)
        );
    }
    let cpu = (s.read + s.chunk + s.hash + s.compress + s.seal + s.write).as_secs_f64();
    let limit = (cpu / cores as f64).max(s.sync.as_secs_f64());
    println!(
        "limit on {cores} cores: {limit:.2} s ({cpu:.2} CPU-s / {cores}, or fsync {:.2} s if longer)",
        s.sync.as_secs_f64()
    );
    // The stages' output goes before the backups are timed.
    std::fs::remove_file(scratch.path().join("pack")).expect("remove the stages' file");
    let backup = measure_backup(&root, scratch.path());
    println!(
        "opc-store backup full, median: {backup:.2} s = {:.0}% of the limit",
        100.0 * limit / backup
    );
}
