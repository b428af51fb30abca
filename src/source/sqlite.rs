//! Consistent captures of live SQLite databases.
//!
//! Copying a database file byte by byte while a writer commits gives pages
//! from different transactions: a corrupt database. A database is instead
//! read inside one SQLite read transaction, so what is stored is the
//! database as of one commit, including what is still only in its WAL:
//! page by page through `sqlite_dbpage` ([`super::dbpage`]), or, where
//! that table is missing, as a copy made with the online backup API in a
//! single step ([`consistent_copy`]). In WAL mode writers go on meanwhile;
//! in rollback-journal mode they wait (with their busy timeout) until the
//! read ends. [`CaptureGuard`] keeps this process from dropping SQLite's
//! lock behind its back.
//!
//! Because a capture already holds the committed content of the WAL, the
//! `-wal`, `-shm` and `-journal` files beside a captured database are not
//! stored: restoring a stale WAL next to the copy could make SQLite replay
//! old frames onto it.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use globset::{Glob, GlobSet, GlobSetBuilder};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// The first 16 bytes of every SQLite 3 database file.
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Files SQLite keeps beside a database.
const SIDECARS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Which files of a part are captured through SQLite.
#[derive(Clone, Debug)]
pub struct SqliteCapture {
    enabled: bool,
    globs: GlobSet,
}

impl Default for SqliteCapture {
    fn default() -> Self {
        SqliteCapture {
            enabled: true,
            globs: GlobSet::empty(),
        }
    }
}

impl SqliteCapture {
    /// Capture files with the SQLite header, and files whose path relative
    /// to the part (or name) matches one of `globs` (which must then be
    /// SQLite databases: a match that is not one is an error). `enabled:
    /// false` stores every file as raw bytes.
    pub fn new(enabled: bool, globs: &[String]) -> Result<SqliteCapture> {
        let mut b = GlobSetBuilder::new();
        for g in globs {
            b.add(Glob::new(g).map_err(|e| Error::Config(format!("sqlite glob {g:?}: {e}")))?);
        }
        Ok(SqliteCapture {
            enabled,
            globs: b
                .build()
                .map_err(|e| Error::Config(format!("sqlite globs: {e}")))?,
        })
    }

    /// Raw bytes for every file.
    pub fn off() -> SqliteCapture {
        SqliteCapture {
            enabled: false,
            globs: GlobSet::empty(),
        }
    }

    /// Whether the file at `path` (`rel` inside its part) is a database to
    /// capture through SQLite.
    pub fn wants(&self, path: &Path, rel: &[u8]) -> bool {
        self.wants_file(path, rel, None)
    }

    /// [`wants`](Self::wants) for a regular file of `size` bytes. A
    /// database is a whole number of pages of at least 512 bytes, so a
    /// file of another size is not opened to read its header: on a tree of
    /// thousands of JSON files that is an open and a read saved per file.
    pub fn wants_file(&self, path: &Path, rel: &[u8], size: Option<u64>) -> bool {
        if !self.enabled || sidecar_base(path).is_some() {
            return false;
        }
        let rel = Path::new(std::ffi::OsStr::from_bytes(rel));
        self.globs.is_match(rel)
            || rel.file_name().is_some_and(|n| self.globs.is_match(n))
            || (size.is_none_or(|n| n >= 512 && n % 512 == 0) && has_sqlite_header(path))
    }

    /// Whether `path` is a `-wal`, `-shm` or `-journal` file of a database
    /// beside it that is captured through SQLite (so it is not stored).
    pub fn is_sidecar_of_captured(&self, path: &Path, rel: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        let Some(base) = sidecar_base(path) else {
            return false;
        };
        let cut = path.as_os_str().len() - base.as_os_str().len();
        let base_rel = &rel[..rel.len().saturating_sub(cut)];
        base.is_file() && self.wants(&base, base_rel)
    }
}

/// The database a `-wal`/`-shm`/`-journal` path belongs to.
fn sidecar_base(path: &Path) -> Option<PathBuf> {
    let bytes = path.as_os_str().as_bytes();
    SIDECARS.iter().find_map(|s| {
        bytes
            .strip_suffix(s.as_bytes())
            .filter(|b| !b.is_empty() && !b.ends_with(b"/"))
            .map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(b)))
    })
}

/// Inodes (device, inode) of the databases this process is reading
/// through SQLite right now, once per reader.
///
/// POSIX record locks belong to the process, and closing *any* descriptor
/// of a file drops all of them, SQLite's shared lock included. A header
/// read with a descriptor of our own on a database being captured (its
/// `-journal` checked on another thread, or a hardlink to it) would let a
/// writer commit in the middle of the capture: a torn copy. Header reads
/// hold this mutex from the check to the close, and a capture registers
/// under it before SQLite opens the file, so the two never overlap.
static CAPTURING: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

fn capturing() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    CAPTURING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks a database as being read through SQLite until dropped (in the
/// process-wide registry of inodes being captured, whose header reads then
/// leave it alone). Take it before opening the database.
pub struct CaptureGuard(Option<(u64, u64)>);

impl CaptureGuard {
    /// Registers the database at `path` (nothing when it cannot be
    /// stat'ed: opening it will fail too).
    pub fn new(path: &Path) -> CaptureGuard {
        let key = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        if let Some(k) = key {
            capturing().push(k);
        }
        CaptureGuard(key)
    }
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        if let Some(k) = self.0 {
            let mut held = capturing();
            if let Some(i) = held.iter().position(|h| *h == k) {
                held.swap_remove(i);
            }
        }
    }
}

fn has_sqlite_header(path: &Path) -> bool {
    use std::io::Read;
    let held = capturing();
    if let Ok(m) = std::fs::metadata(path) {
        if held.contains(&(m.dev(), m.ino())) {
            // Being captured, so a database; opening it here would drop
            // the capture's lock.
            return true;
        }
    }
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|_| &head == SQLITE_MAGIC)
        .unwrap_or(false)
}

/// Whether the database's last snapshot can stand for it: the file itself
/// is unchanged (checked by the caller) and nothing newer waits in a WAL or
/// journal. A WAL modified after the database file may hold commits the
/// previous copy lacks; a journal means a write is in progress.
pub fn sidecars_quiet(db: &Path, db_mtime_ns: i64) -> bool {
    let with = |s: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(s);
        PathBuf::from(p)
    };
    if std::fs::symlink_metadata(with("-journal")).is_ok_and(|m| m.len() > 0) {
        return false;
    }
    match std::fs::symlink_metadata(with("-wal")) {
        Err(_) => true,
        Ok(m) if m.len() == 0 => true,
        Ok(m) => m.mtime() * 1_000_000_000 + m.mtime_nsec() < db_mtime_ns,
    }
}

/// Name prefix of the plaintext copies; the process id follows so that
/// copies of a killed run can be told from those of a live one.
const COPY_PREFIX: &str = ".opc-sqlite-";

/// The folder for database copies, `<cache>/scratch`, with the copies left
/// by runs that no longer live (kill -9, power loss) removed. It is in the
/// local cache, never in the repository: a copy is the plaintext database.
pub fn scratch_dir(cache_dir: &Path) -> PathBuf {
    let dir = cache_dir.join("scratch");
    // Errors surface when a copy is made there, with the folder named.
    let _ = std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .recursive(true)
        .create(&dir);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(COPY_PREFIX))
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            if crate::util::process_gone(pid) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    dir
}

/// Copies the database at `src` into a new temporary file in `tmp_dir`
/// (see [`scratch_dir`]) with the online backup API, as of one commit. The
/// copy is deleted when the returned file is dropped.
pub fn consistent_copy(src: &Path, tmp_dir: &Path) -> Result<tempfile::NamedTempFile> {
    let fail = |what: &str, e: rusqlite::Error| {
        Error::Invalid(format!(
            "{}: SQLite {what} failed: {e}; it is stored as raw bytes instead, which may be inconsistent",
            src.display()
        ))
    };
    // Read-only and no URI tricks: opening must never create, convert or
    // checkpoint anything in the folder of the program that owns it.
    let source = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| fail("open", e))?;
    source
        .busy_timeout(std::time::Duration::from_secs(60))
        .map_err(|e| fail("busy_timeout", e))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{COPY_PREFIX}{}-", std::process::id()))
        .tempfile_in(tmp_dir)
        .map_err(|e| Error::io("creating a temporary file in", tmp_dir, e))?;
    let mut dest = Connection::open(tmp.path()).map_err(|e| fail("open of the copy", e))?;
    {
        let backup =
            rusqlite::backup::Backup::new(&source, &mut dest).map_err(|e| fail("backup", e))?;
        // All pages in one step: one read transaction, so one commit's
        // state. Busy (a rollback-journal writer) is retried a while.
        let mut tries = 0;
        loop {
            match backup.step(-1).map_err(|e| fail("backup", e))? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::Busy | rusqlite::backup::StepResult::Locked
                    if tries < 600 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                rusqlite::backup::StepResult::More => {}
                other => {
                    return Err(Error::Invalid(format!(
                        "{}: the database stayed locked ({other:?}) for a minute; it is stored as raw bytes instead",
                        src.display()
                    )))
                }
            }
        }
    }
    dest.close()
        .map_err(|(_, e)| fail("close of the copy", e))?;
    Ok(tmp)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn sidecars_name_their_database() {
        assert_eq!(
            sidecar_base(Path::new("/d/chroma.sqlite3-wal")),
            Some(PathBuf::from("/d/chroma.sqlite3"))
        );
        assert_eq!(
            sidecar_base(Path::new("/d/x-journal")),
            Some(PathBuf::from("/d/x"))
        );
        assert_eq!(sidecar_base(Path::new("/d/-wal")), None);
        assert_eq!(sidecar_base(Path::new("/d/plain.db")), None);
    }

    #[test]
    fn copies_left_by_dead_runs_are_removed_and_live_ones_kept() {
        let cache = tempfile::tempdir().unwrap();
        let dir = scratch_dir(cache.path());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.join(format!("{COPY_PREFIX}{dead}-x1"));
        let live = dir.join(format!("{COPY_PREFIX}{}-x2", std::process::id()));
        let other = dir.join("unrelated");
        for p in [&stale, &live, &other] {
            std::fs::write(p, b"SQLite format 3\0 plaintext").unwrap();
        }
        assert_eq!(scratch_dir(cache.path()), dir);
        assert!(!stale.exists(), "a dead run's plaintext copy must go");
        assert!(live.exists() && other.exists());
        let db = cache.path().join("d.db");
        Connection::open(&db)
            .unwrap()
            .execute_batch("create table t(v);")
            .unwrap();
        let copy = consistent_copy(&db, &dir).unwrap();
        assert!(copy.path().starts_with(&dir));
        let name = copy.path().file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(&format!("{COPY_PREFIX}{}-", std::process::id())));
    }

    /// `dir/x.db` in WAL mode with three rows in `t`, all of them only in
    /// its WAL while the returned connection stays open.
    pub(crate) fn wal_only_rows(dir: &Path) -> (PathBuf, Connection) {
        let db = dir.join("x.db");
        let c = Connection::open(&db).unwrap();
        c.pragma_update(None, "journal_mode", "wal").unwrap();
        c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        c.execute_batch("create table t(v); insert into t values (1),(2),(3);")
            .unwrap();
        (db, c)
    }

    #[test]
    fn a_copy_holds_what_is_committed_in_the_wal() {
        let d = tempfile::tempdir().unwrap();
        let (db, c) = wal_only_rows(d.path());
        // The rows are only in the WAL: a raw copy of x.db would lack them.
        let cap = SqliteCapture::default();
        assert!(cap.wants(&db, b"x.db"));
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        assert!(cap.is_sidecar_of_captured(Path::new(&wal), b"x.db-wal"));
        let copy = consistent_copy(&db, d.path()).unwrap();
        let n: i64 = Connection::open(copy.path())
            .unwrap()
            .query_row("select count(*) from t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        assert!(
            !sidecars_quiet(&db, 0),
            "a non-empty WAL newer than the file"
        );
        drop(c);
    }

    #[test]
    fn a_file_being_captured_is_not_opened_for_its_header() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("data.bin");
        std::fs::write(&f, vec![9u8; 4096]).unwrap();
        let cap = SqliteCapture::default();
        assert!(!cap.wants(&f, b"data.bin"));
        // Not a database, yet held: taken as one without being opened
        // (the open and close would drop a capture's lock).
        let guard = CaptureGuard::new(&f);
        let twice = CaptureGuard::new(&f);
        assert!(cap.wants(&f, b"data.bin"));
        drop(guard);
        assert!(cap.wants(&f, b"data.bin"), "still held once");
        drop(twice);
        assert!(!cap.wants(&f, b"data.bin"));
    }

    #[test]
    fn globs_and_off() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("notes.txt");
        std::fs::write(&f, b"not a database").unwrap();
        assert!(!SqliteCapture::default().wants(&f, b"notes.txt"));
        let cap = SqliteCapture::new(true, &["*.txt".into()]).unwrap();
        assert!(cap.wants(&f, b"sub/notes.txt"));
        // A database has whole pages: other sizes are not opened at all.
        let db = d.path().join("x.db");
        Connection::open(&db)
            .unwrap()
            .execute_batch("create table t(v);")
            .unwrap();
        let size = std::fs::metadata(&db).unwrap().len();
        assert!(SqliteCapture::default().wants_file(&db, b"x.db", Some(size)));
        let gone = d.path().join("missing.db");
        assert!(!SqliteCapture::default().wants_file(&gone, b"missing.db", Some(4096)));
        assert!(!SqliteCapture::default().wants_file(&db, b"x.db", Some(size + 1)));
        assert!(!SqliteCapture::off().wants(&f, b"notes.txt"));
    }
}
