//! Read-only connections for batch probes, one per thread that probes at
//! the same time. A restore looks up every block of every file: with one
//! connection behind one lock, a thread locating a large file's 65,536
//! blocks held the lock for 150 ms while the other thread, wanting the
//! locations of another file, sat idle. SQLite in WAL mode serves readers
//! on separate connections side by side, each seeing the last committed
//! state when its read transaction begins, which is all a probe needs:
//! every write (a pack's blobs, a swap of packs) commits before the call
//! that made it returns.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

/// Page cache of each reader, KiB. Batches probe in id order, so each
/// B-tree page is read once per batch whatever the cache holds; a small
/// cache keeps memory flat when several readers are open.
const READER_CACHE_KIB: i64 = 1024;

/// A pool of read-only connections to one index database.
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Idle readers kept for the next batch: one per thread that may
    /// probe, so a restore opens its readers once, not per file.
    max_idle: usize,
}

impl Readers {
    /// A pool for the database at `path`; connections open on first use.
    pub(super) fn new(path: &Path) -> Readers {
        Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            max_idle: rayon::current_num_threads().max(2),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A panic elsewhere cannot leave a parked connection half-used.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on an idle reader (opened if there is none), then parks it.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        let parked = self.idle().pop();
        let c = match parked {
            Some(c) => c,
            None => open_reader(&self.path).map_err(|e| crate::error::Error::Index {
                path: self.path.clone(),
                cause: e,
            })?,
        };
        let out = f(&c);
        // A reader left inside a transaction (a failed ROLLBACK) would pin
        // an old state of the index: close it instead of parking it.
        if c.is_autocommit() {
            let mut idle = self.idle();
            if idle.len() < self.max_idle {
                idle.push(c);
            }
        }
        out
    }
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    rusqlite::vtab::array::load_module(&c)?;
    c.execute_batch(&format!(
        "PRAGMA busy_timeout=30000; PRAGMA cache_size=-{READER_CACHE_KIB}; PRAGMA query_only=1;"
    ))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL database with an empty table `t`: its writer and a pool.
    fn wal_table() -> (tempfile::TempDir, Connection, Readers) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.sqlite");
        let w = Connection::open(&path).unwrap();
        w.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x INTEGER);")
            .unwrap();
        let readers = Readers::new(&path);
        (dir, w, readers)
    }

    #[test]
    fn readers_see_what_the_writer_committed_and_cannot_write() {
        let (_dir, w, readers) = wal_table();
        let count = |r: &Readers| {
            r.with(|c| {
                Ok(
                    c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                        .unwrap(),
                )
            })
            .unwrap()
        };
        assert_eq!(count(&readers), 0);
        // The parked reader sees a row committed after it was opened.
        w.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_eq!(count(&readers), 1);
        assert_eq!(readers.idle().len(), 1);
        // Its page cache stays the small one set when it was opened.
        let cache = readers.with(|c| {
            Ok(c.query_row("PRAGMA cache_size", [], |r| r.get::<_, i64>(0))
                .unwrap())
        });
        assert_eq!(cache.unwrap(), -READER_CACHE_KIB);
        let wrote = readers.with(|c| Ok(c.execute("INSERT INTO t VALUES (2)", []).is_err()));
        assert!(wrote.unwrap(), "a reader must refuse writes");
    }

    #[test]
    fn two_threads_probe_at_once_on_two_connections() {
        let (_dir, _w, readers) = wal_table();
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    readers
                        .with(|_| {
                            // Both inside `with` at once: the pool must not
                            // hand one connection to two threads or block.
                            barrier.wait();
                            Ok(())
                        })
                        .unwrap()
                });
            }
        });
        assert_eq!(readers.idle().len(), 2);
    }
}
