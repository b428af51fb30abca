//! Live SQLite databases are captured consistently: a Python writer
//! commits into a WAL-mode or a rollback-journal database all through the
//! snapshots, and every
//! restored copy passes `PRAGMA integrity_check` and holds a whole prefix of
//! the writer's transactions. A quiet database is not read again.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};

use serde_json::{json, Value};

use crate::support::Env;

/// Fills `db` (in the journal mode given second: in WAL mode autocheckpoint
/// is off so commits stay in the WAL; a rollback-journal writer waits up
/// to 5 s, Python's default, while a capture holds the database),
/// prints `ready`, then commits batches of 20 rows until killed. Every
/// transaction also updates `meta`, so a consistent copy has
/// `count(*) == meta.rows` and only whole batches.
const WRITER: &str = r#"
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("pragma journal_mode=" + sys.argv[2])
db.execute("pragma wal_autocheckpoint=0")
db.execute("create table if not exists t(id integer primary key, batch int, payload blob)")
db.execute("create table if not exists meta(batch int, rows int)")
if db.execute("select count(*) from meta").fetchone()[0] == 0:
    db.execute("insert into meta values (0, 0)")
db.execute("begin")
for i in range(2000):
    db.execute("insert into t(batch, payload) values (0, randomblob(2000))")
db.execute("update meta set rows = rows + 2000")
db.execute("commit")
print("ready", flush=True)
b = 0
while True:
    b += 1
    db.execute("begin")
    for i in range(20):
        db.execute("insert into t(batch, payload) values (?, randomblob(200))", (b,))
    db.execute("update meta set batch = ?, rows = rows + 20", (b,))
    db.execute("commit")
    # A busy application, not a flood: the database grows ~2 MB/s at most.
    time.sleep(0.002)
"#;

/// Prints `integrity_check`, rows, meta rows, meta batch and the number of
/// incomplete batches, as JSON.
const CHECK: &str = r#"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
ic = db.execute("pragma integrity_check").fetchall()
rows = db.execute("select count(*) from t").fetchone()[0]
mb, mr = db.execute("select batch, rows from meta").fetchone()
partial = db.execute("select count(*) from (select batch, count(*) c from t where batch > 0 group by batch having c != 20)").fetchone()[0]
top = db.execute("select coalesce(max(batch), 0) from t").fetchone()[0]
print(json.dumps({"integrity": [r[0] for r in ic], "rows": rows, "meta_rows": mr, "meta_batch": mb, "partial": partial, "top": top}))
"#;

struct Writer(Child);

impl Writer {
    fn start(db: &Path, journal_mode: &str) -> Writer {
        let mut child = StdCommand::new("python3")
            .args(["-c", WRITER])
            .arg(db)
            .arg(journal_mode)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the writer started");
        Writer(child)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn check_db(db: &Path) -> Value {
    let out = StdCommand::new("python3")
        .args(["-c", CHECK])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn python(code: &str, db: &Path) {
    let st = StdCommand::new("python3")
        .args(["-c", code])
        .arg(db)
        .status()
        .unwrap();
    assert!(st.success());
}

fn sandbox() -> (Env, std::path::PathBuf) {
    let env = Env::with_repo();
    let dir = env.path("chroma");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("header.bin"), vec![1u8; 10_000]).unwrap();
    env.config_value(json!({
        "repository": env.repo,
        "components": { "chromadb": { "paths": [dir] } },
    }));
    (env, dir)
}

#[test]
fn a_wal_database_written_during_snapshots_restores_whole_and_consistent() {
    written_during_snapshots("wal");
}

/// ChromaDB's own mode: the file is read in place under the shared lock.
#[test]
fn a_rollback_journal_database_written_during_snapshots_restores_whole_and_consistent() {
    written_during_snapshots("delete");
}

fn written_during_snapshots(journal_mode: &str) {
    let (env, dir) = sandbox();
    let db = dir.join("chroma.sqlite3");
    let writer = Writer::start(&db, journal_mode);
    // A plaintext copy left by a run killed mid-copy (its pid is gone).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let scratch = env.index_dir().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let stale = scratch.join(format!(".opc-sqlite-{dead}-leftover"));
    std::fs::write(&stale, b"SQLite format 3\0plaintext").unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = env.snapshot(&["chromadb"]);
        assert_eq!(r["snapshot"]["summary"]["sqlite_captured"], 1, "{r}");
        ids.push(r["id"].as_str().unwrap()[..8].to_string());
    }
    drop(writer);
    assert!(!stale.exists(), "a dead run's database copy is removed");
    let out = std::process::Command::new("find")
        .arg(&env.repo)
        .arg(&scratch)
        .args(["-name", ".opc-sqlite*"])
        .output()
        .unwrap();
    let leftovers = String::from_utf8_lossy(&out.stdout);
    assert!(
        leftovers.is_empty(),
        "no database copy is left: {leftovers:?}"
    );
    let mut tops = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let target = env.path(&format!("restore-{i}"));
        env.restore(&[id, "--target", target.to_str().unwrap()]);
        let restored = target.join("chromadb");
        let names: Vec<String> = std::fs::read_dir(&restored)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with("-wal") || n.ends_with("-shm") || n.ends_with("-journal")),
            "the WAL, shared-memory and journal files are not stored: {names:?}"
        );
        let c = check_db(&restored.join("chroma.sqlite3"));
        assert_eq!(c["integrity"], json!(["ok"]), "{c}");
        assert_eq!(c["rows"], c["meta_rows"], "one commit's state: {c}");
        assert_eq!(c["partial"], 0, "only whole transactions: {c}");
        assert_eq!(c["top"], c["meta_batch"], "{c}");
        assert!(c["rows"].as_u64().unwrap() >= 2000, "{c}");
        tops.push(c["top"].as_u64().unwrap());
    }
    assert!(
        tops.windows(2).all(|w| w[0] <= w[1]),
        "later snapshots hold later commits: {tops:?}"
    );
    assert!(
        tops[2] > tops[0],
        "the writer was committing during the snapshots: {tops:?}"
    );
}

#[test]
fn a_quiet_database_is_not_read_again_and_a_new_commit_is_seen() {
    let (env, dir) = sandbox();
    let db = dir.join("app.db");
    python(
        "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute('pragma journal_mode=wal'); \
         d.execute('create table t(v)'); d.execute('insert into t values (1)'); d.commit(); \
         d.execute('pragma wal_checkpoint(truncate)'); d.close()",
        &db,
    );
    let first = env.snapshot(&["chromadb"]);
    assert_eq!(first["snapshot"]["summary"]["sqlite_captured"], 1);
    let second = env.snapshot(&["chromadb"]);
    assert_eq!(
        second["snapshot"]["summary"]["files_read"], 0,
        "nothing changed: {second}"
    );
    // A commit that is only in the WAL: the database file itself is
    // untouched, yet the next snapshot must hold the new row.
    python(
        "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute('pragma wal_autocheckpoint=0'); \
         d.execute('insert into t values (2)'); d.commit(); import os; os._exit(0)",
        &db,
    );
    let third = env.snapshot(&["chromadb"]);
    assert_eq!(
        third["snapshot"]["summary"]["sqlite_captured"], 1,
        "{third}"
    );
    let target = env.path("r");
    env.restore(&[
        &third["id"].as_str().unwrap()[..8],
        "--target",
        target.to_str().unwrap(),
    ]);
    let out = StdCommand::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select group_concat(v) from t').fetchone()[0])",
        ])
        .arg(target.join("chromadb/app.db"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1,2");
}

#[test]
fn turned_off_the_database_and_its_wal_are_stored_as_files() {
    let (env, dir) = sandbox();
    env.config_value(json!({
        "repository": env.repo,
        "components": { "chromadb": { "paths": [dir], "sqlite": false } },
    }));
    let db = dir.join("x.db");
    python(
        "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute('pragma journal_mode=wal'); \
         d.execute('pragma wal_autocheckpoint=0'); d.execute('create table t(v)'); \
         d.execute('insert into t values (1)'); d.commit(); import os; os._exit(0)",
        &db,
    );
    let r = env.snapshot(&["chromadb"]);
    assert_eq!(r["snapshot"]["summary"]["sqlite_captured"], 0);
    let target = env.path("r");
    env.restore(&[
        &r["id"].as_str().unwrap()[..8],
        "--target",
        target.to_str().unwrap(),
    ]);
    assert!(
        target.join("chromadb/x.db-wal").exists(),
        "raw files, WAL included"
    );
}

#[test]
fn a_database_of_more_pages_than_a_restore_segment_restores_byte_for_byte() {
    // 512-byte pages, about 80,000 of them: the restore locates and writes
    // a file's blobs 65,536 at a time, and every page after the first
    // segment must land at its own offset.
    let (env, dir) = sandbox();
    let db = dir.join("big.db");
    python(
        "import sqlite3,sys,random; r=random.Random(7); d=sqlite3.connect(sys.argv[1]); \
         d.execute('pragma page_size=512'); d.execute('create table t(v)'); \
         [d.execute('insert into t values (?)', (r.randbytes(1200),)) for _ in range(32000)]; \
         d.commit(); d.close()",
        &db,
    );
    let pages = std::fs::metadata(&db).unwrap().len() / 512;
    assert!(pages > 70_000, "{pages} pages");
    let snap = env.snapshot(&["chromadb"]);
    assert_eq!(snap["snapshot"]["summary"]["sqlite_captured"], 1, "{snap}");
    let target = env.path("r");
    env.restore(&[
        &snap["id"].as_str().unwrap()[..8],
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    let restored = std::fs::read(target.join("chromadb/big.db")).unwrap();
    assert!(
        restored == std::fs::read(&db).unwrap(),
        "restored database differs"
    );
}
