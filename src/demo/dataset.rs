//! A small, deterministic One-Place-Chat data set: a ChromaDB-like folder
//! (a real SQLite database and HNSW-like binary segments), conversation
//! JSON, and Prometheus- and Grafana-like volumes. `mutate` simulates the
//! next day the way the real system changes: pages rewritten in place,
//! segments rewritten in scattered blocks, new files, appended WAL.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use rusqlite::{params, Connection};

use crate::error::{Error, Result};

/// Deterministic generator (SplitMix64): same data on every run.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }

    /// A float vector like an embedding (random mantissas, compresses poorly).
    pub fn embedding(&mut self, dim: usize) -> Vec<u8> {
        (0..dim)
            .flat_map(|_| (((self.next_u64() % 20_000) as f32 / 10_000.0) - 1.0).to_le_bytes())
            .collect()
    }

    /// Below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const WORDS: &[&str] = &[
    "vector",
    "search",
    "chat",
    "model",
    "embedding",
    "tool",
    "query",
    "result",
    "user",
    "assistant",
    "context",
    "database",
    "backup",
    "collection",
    "document",
    "prompt",
    "answer",
    "latency",
    "index",
    "token",
];

fn sentence(r: &mut Rng, words: usize) -> String {
    (0..words)
        .map(|_| WORDS[r.below(WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io("writing demo data", path, e)
}

fn write(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).map_err(io(p))?;
    }
    fs::write(path, data).map_err(io(path))
}

fn sql(e: rusqlite::Error) -> Error {
    Error::Invalid(format!("demo SQLite database: {e}"))
}

const DIM: usize = 384;
const SEGMENT: &str = "6f1c2a9e-4b7d-4c3e-9a51-0d2e7b8c4f10";

/// Creates the data set under `root` (`chromadb/`, `application/`,
/// `volumes/prometheus/`, `volumes/grafana/`). Scale 1 is about 60 MB.
pub fn generate(root: &Path, scale: f64) -> Result<()> {
    let mut r = Rng::new(42);
    let n = ((8000.0 * scale) as usize).max(100);
    // ChromaDB: a real SQLite database of embeddings and documents.
    let chroma = root.join("chromadb");
    fs::create_dir_all(&chroma).map_err(io(&chroma))?;
    let db = Connection::open(chroma.join("chroma.sqlite3")).map_err(sql)?;
    db.execute_batch(
        "PRAGMA page_size=4096; PRAGMA synchronous=OFF; CREATE TABLE embeddings(id INTEGER PRIMARY KEY, collection TEXT, document TEXT, vector BLOB);",
    )
    .map_err(sql)?;
    insert_rows(&db, &mut r, 0, n)?;
    drop(db);
    // HNSW-like segment: fixed-size records rewritten in place.
    let seg = chroma.join(SEGMENT);
    let mut level0 = Vec::with_capacity(n * (DIM * 4 + 136));
    for _ in 0..n {
        level0.extend(r.bytes(136));
        level0.extend(r.embedding(DIM));
    }
    write(&seg.join("data_level0.bin"), &level0)?;
    write(&seg.join("header.bin"), &r.bytes(100))?;
    write(&seg.join("length.bin"), &r.bytes(n * 4))?;
    write(&seg.join("link_lists.bin"), &r.bytes(n * 8))?;
    // Application data: conversations, generated tools, configuration.
    let app = root.join("application");
    for i in 0..((1500.0 * scale) as usize).max(20) {
        conversation(&app, &mut r, i)?;
    }
    for i in 0..((60.0 * scale) as usize).max(5) {
        let body = format!(
            "# generated tool {i}\ndef tool_{i}(query):\n    \"\"\"{}\"\"\"\n    return query\n",
            sentence(&mut r, 40)
        );
        write(
            &app.join(format!("generated_tools/tool_{i:04}.py")),
            body.as_bytes(),
        )?;
    }
    write(
        &app.join("config/app.yml"),
        b"model: local\nmax_tokens: 2048\napi_key: sk-demo-not-a-secret\n",
    )?;
    // Prometheus-like TSDB blocks and WAL (poorly compressible), Grafana DB.
    let prom = root.join("volumes/prometheus");
    for b in 0..((3.0 * scale) as usize).max(1) {
        let block = prom.join(format!("01HBLOCK{b:018}"));
        write(
            &block.join("chunks/000001"),
            &r.bytes(((4 << 20) as f64 * scale) as usize),
        )?;
        write(&block.join("index"), sentence(&mut r, 20000).as_bytes())?;
        write(
            &block.join("meta.json"),
            format!("{{\"ulid\":\"01HBLOCK{b:018}\",\"version\":1}}\n").as_bytes(),
        )?;
    }
    write(
        &prom.join("wal/00000001"),
        &r.bytes(((2 << 20) as f64 * scale) as usize),
    )?;
    let grafana = root.join("volumes/grafana");
    fs::create_dir_all(&grafana).map_err(io(&grafana))?;
    let gdb = Connection::open(grafana.join("grafana.db")).map_err(sql)?;
    gdb.execute_batch("PRAGMA synchronous=OFF; CREATE TABLE dashboard(id INTEGER PRIMARY KEY, title TEXT, data TEXT);").map_err(sql)?;
    for i in 0..200 {
        gdb.execute(
            "INSERT INTO dashboard(title, data) VALUES (?1, ?2)",
            params![format!("dash {i}"), sentence(&mut r, 300)],
        )
        .map_err(sql)?;
    }
    Ok(())
}

fn insert_rows(db: &Connection, r: &mut Rng, from: usize, count: usize) -> Result<()> {
    db.execute_batch("BEGIN").map_err(sql)?;
    for i in from..from + count {
        db.execute(
            "INSERT INTO embeddings(id, collection, document, vector) VALUES (?1, 'conversations', ?2, ?3)",
            params![i as i64, sentence(r, 30), r.embedding(DIM)],
        )
        .map_err(sql)?;
    }
    db.execute_batch("COMMIT").map_err(sql)
}

fn conversation(app: &Path, r: &mut Rng, i: usize) -> Result<()> {
    let turns: Vec<String> = (0..(4 + r.below(12)))
        .map(|t| {
            format!(
                "{{\"role\":\"{}\",\"content\":\"{}\"}}",
                if t % 2 == 0 { "user" } else { "assistant" },
                sentence(r, 60)
            )
        })
        .collect();
    let body = format!(
        "{{\"id\":\"conv-{i:06}\",\"messages\":[{}]}}\n",
        turns.join(",")
    );
    write(
        &app.join(format!("conversations/conv_{i:06}.json")),
        body.as_bytes(),
    )
}

/// Simulates one day of change; returns the bytes of files touched.
pub fn mutate(root: &Path, scale: f64) -> Result<u64> {
    let mut r = Rng::new(7);
    let chroma = root.join("chromadb");
    let dbp = chroma.join("chroma.sqlite3");
    let db = Connection::open(&dbp).map_err(sql)?;
    db.execute_batch("PRAGMA synchronous=OFF").map_err(sql)?;
    let n: i64 = db
        .query_row("SELECT count(*) FROM embeddings", [], |x| x.get(0))
        .map_err(sql)?;
    // 3% more embeddings and 1% updated in place, like a day of chats.
    insert_rows(&db, &mut r, n as usize, (n as usize * 3 / 100).max(1))?;
    db.execute_batch("BEGIN").map_err(sql)?;
    for _ in 0..(n / 100).max(1) {
        let id = r.below(n as u64) as i64;
        db.execute(
            "UPDATE embeddings SET vector = ?1 WHERE id = ?2",
            params![r.embedding(DIM), id],
        )
        .map_err(sql)?;
    }
    db.execute_batch("COMMIT").map_err(sql)?;
    drop(db);
    // Scattered in-place rewrites of 2% of the segment's 4 KiB blocks, plus growth.
    let segp = chroma.join(SEGMENT).join("data_level0.bin");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(&segp)
        .map_err(io(&segp))?;
    let len = f.metadata().map_err(io(&segp))?.len();
    for _ in 0..(len / 4096 / 50).max(1) {
        let off = r.below(len / 4096) * 4096;
        f.seek(SeekFrom::Start(off)).map_err(io(&segp))?;
        f.write_all(&r.embedding(1024)).map_err(io(&segp))?;
    }
    f.seek(SeekFrom::End(0)).map_err(io(&segp))?;
    f.write_all(&r.embedding(DIM * 40)).map_err(io(&segp))?;
    drop(f);
    let app = root.join("application");
    for i in 0..((25.0 * scale) as usize).max(2) {
        conversation(&app, &mut r, 1_000_000 + i)?;
    }
    let wal = root.join("volumes/prometheus/wal/00000001");
    let mut w = fs::OpenOptions::new()
        .append(true)
        .open(&wal)
        .map_err(io(&wal))?;
    w.write_all(&r.bytes(256 * 1024)).map_err(io(&wal))?;
    let touched = [dbp, segp, wal]
        .iter()
        .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    Ok(touched)
}
