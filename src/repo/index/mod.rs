//! The SQLite index: blob id -> pack, offset, length; the pack list; and a
//! cache of snapshot records. All of it is derived data, rebuilt from the
//! packs and snapshot objects by [`Repository::rebuild_index`](crate::repo::Repository::rebuild_index).

mod schema;
mod trust;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::pack::{GroupSlot, PackEntry};
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};

/// Where a blob is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// Data or tree.
    pub kind: BlobKind,
    /// The pack holding it.
    pub pack: Id,
    /// Offset of the sealed blob in the pack.
    pub offset: u64,
    /// Sealed length.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
    /// For a blob kept in a group: where in the group (`offset` and
    /// `length` are then the group's).
    pub group: Option<GroupSlot>,
}

impl BlobLocation {
    /// Stored bytes this blob accounts for (its share of a group's).
    pub fn stored_share(&self) -> u64 {
        super::pack::format::stored_share(self.length, self.raw_length, self.group)
    }
}

fn slot(inner: u32, group_raw: u32) -> Option<GroupSlot> {
    (group_raw > 0).then_some(GroupSlot {
        inner,
        total: group_raw,
    })
}

fn slot_columns(g: Option<GroupSlot>) -> (u32, u32) {
    g.map_or((0, 0), |g| (g.inner, g.total))
}

/// Totals over the index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexTotals {
    /// Number of packs.
    pub packs: u64,
    /// Sum of pack sizes.
    pub pack_bytes: u64,
    /// Number of blobs.
    pub blobs: u64,
    /// Sum of plaintext blob lengths.
    pub raw_bytes: u64,
    /// Sum of plaintext lengths of data (file content) blobs only.
    pub data_raw_bytes: u64,
}

/// The indexed blobs of one pack with their locations.
pub type PackBlobs = Vec<(Id, BlobLocation)>;

/// The index database. Internally serialised; safe to share across threads.
pub struct Index {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Index {
    /// Opens (creating if missing) the index at `path`. Returns the index and
    /// whether it was created empty (and so needs a rebuild).
    pub fn open(path: &Path) -> Result<(Index, bool)> {
        let existed = path.exists();
        let err = |e| Error::Index {
            path: path.to_path_buf(),
            cause: e,
        };
        // SQLite gives -wal and -shm the database file's mode: make it 0600
        // before SQLite creates anything, and fix side files left by older runs.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io("creating", path, e))?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = PathBuf::from(p);
            if p.exists() {
                crate::util::set_mode(&p, 0o600)?;
            }
        }
        let conn = Connection::open(path).map_err(err)?;
        // A bounded page cache, whatever the repository's size. Batch
        // probes run in id order, so each page is read once per batch
        // whatever the cache holds. 4 MiB: at 8 MiB, SQLite held about 20 MB
        // at a first backup's peak (a third of the heap) and the peak grew
        // with the index; at 4 MiB backup and restore peaks were about 10 MB
        // lower at both scales measured, with no measurable loss of speed.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000; PRAGMA cache_size=-4096;",
        )
        .map_err(err)?;
        conn.execute_batch(schema::DDL).map_err(err)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let mut fresh = !existed || version.is_none();
        if version.as_deref() != Some(&schema::SCHEMA_VERSION.to_string()) {
            // Another schema: everything in it is derived, so start over.
            conn.execute_batch(
                "DROP TABLE IF EXISTS blobs; DROP TABLE IF EXISTS packs; DROP TABLE IF EXISTS snapshots; DROP TABLE IF EXISTS trusted_trees;",
            )
            .map_err(err)?;
            conn.execute_batch(schema::DDL).map_err(err)?;
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?1)",
                [schema::SCHEMA_VERSION.to_string()],
            )
            .map_err(err)?;
            fresh = true;
        }
        Ok((
            Index {
                path: path.to_path_buf(),
                conn: Mutex::new(conn),
            },
            fresh,
        ))
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::Index {
            path: self.path.clone(),
            cause: e,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a blob is stored.
    pub fn contains(&self, id: &Id) -> Result<bool> {
        let c = self.conn();
        let mut st = c
            .prepare_cached("SELECT 1 FROM blobs WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        st.exists([&id.0[..]]).map_err(|e| self.err(e))
    }

    /// Whether each of `ids` is stored, in one read transaction: one lock
    /// round trip for the batch instead of one per blob.
    pub fn contains_many(&self, ids: &[Id]) -> Result<Vec<bool>> {
        let c = self.conn();
        let tx = c.unchecked_transaction().map_err(|e| self.err(e))?;
        let mut st = tx
            .prepare_cached("SELECT 1 FROM blobs WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        let out = ids
            .iter()
            .map(|id| st.exists([&id.0[..]]).map_err(|e| self.err(e)))
            .collect::<Result<Vec<bool>>>()?;
        drop(st);
        tx.finish().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Where each of `ids` is stored (`None` when not), in one read
    /// transaction.
    pub fn lookup_many(&self, ids: &[Id]) -> Result<Vec<Option<BlobLocation>>> {
        // One statement for the whole batch: a restore looks up every block
        // of every file, and taking a cached statement per row showed in
        // its profile. (Pack ids stay a join: a map of the packs, read once
        // per call, costs as much as a call for a small file in a large
        // repository, and kept longer it could miss another process's pack.)
        let mut out = vec![None; ids.len()];
        self.probe_sorted(LOOKUP, ids, |i, st| {
            out[i] = Self::lookup_with(st, &ids[i])
                .map_err(|e| self.err(e))?
                .transpose()?;
            Ok(())
        })?;
        Ok(out)
    }

    /// Where each of `ids` is, in their order; a missing one is an error.
    pub fn locate_all(&self, ids: &[Id]) -> Result<Vec<BlobLocation>> {
        let found = self.lookup_many(ids)?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, l) in ids.iter().zip(found) {
            out.push(l.ok_or_else(|| Error::MissingBlob(id.to_hex()))?);
        }
        Ok(out)
    }

    /// The sum of the plaintext lengths of `ids` (each counted as often as
    /// it is listed), without keeping their locations: a restore checks a
    /// large file's size before writing it a segment at a time.
    pub fn raw_total(&self, ids: &[Id]) -> Result<u64> {
        let mut total = 0u64;
        self.probe_sorted(RAW_LENGTH, ids, |i, st| {
            let len: Option<u64> = st
                .query_row([&ids[i].0[..]], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            total += len.ok_or_else(|| Error::MissingBlob(ids[i].to_hex()))?;
            Ok(())
        })?;
        Ok(total)
    }

    /// Runs `each(i, statement)` for every index into `ids`, in id order,
    /// with `sql` prepared once, in one read transaction (when there is
    /// more than one id, so that all see the same index). Probed in id
    /// order, consecutive probes walk the B-tree's leaves in order: each
    /// leaf is read into the page cache once per batch, not once per probe
    /// that lands on it (a file's block ids are random).
    fn probe_sorted(
        &self,
        sql: &str,
        ids: &[Id],
        mut each: impl FnMut(usize, &mut rusqlite::Statement<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_unstable_by_key(|&i| &ids[i as usize].0);
        // Statements cached on the connection: a restore of many small
        // files makes a batch per file, and parsing the SQL (the batch's
        // and BEGIN's and COMMIT's) each time showed in its profile. One
        // probe needs no transaction.
        let c = self.conn();
        let tx = ids.len() > 1;
        let run = |sql: &str| c.prepare_cached(sql).and_then(|mut st| st.execute([]));
        if tx {
            run("BEGIN").map_err(|e| self.err(e))?;
        }
        let res = c
            .prepare_cached(sql)
            .map_err(|e| self.err(e))
            .and_then(|mut st| {
                order
                    .into_iter()
                    .try_for_each(|i| each(i as usize, &mut st))
            });
        if tx {
            // After a failed probe, its error is the one to report.
            let end = run(if res.is_ok() { "COMMIT" } else { "ROLLBACK" });
            if res.is_ok() {
                end.map_err(|e| self.err(e))?;
            }
        }
        res
    }

    /// Where a blob is stored.
    pub fn lookup(&self, id: &Id) -> Result<Option<BlobLocation>> {
        let c = self.conn();
        Self::lookup_in(&c, id)
            .map_err(|e| self.err(e))?
            .transpose()
    }

    /// One lookup on `c`; the inner result flags an unreadable row.
    #[allow(clippy::type_complexity)]
    fn lookup_in(c: &Connection, id: &Id) -> rusqlite::Result<Option<Result<BlobLocation>>> {
        let mut st = c.prepare_cached(LOOKUP)?;
        Self::lookup_with(&mut st, id)
    }

    /// One lookup with the prepared [`LOOKUP`] statement `st`.
    #[allow(clippy::type_complexity)]
    fn lookup_with(
        st: &mut rusqlite::Statement<'_>,
        id: &Id,
    ) -> rusqlite::Result<Option<Result<BlobLocation>>> {
        let row = st
            .query_row([&id.0[..]], |r| {
                // Read in place: no allocation per probe.
                let pack = Id::from_slice(r.get_ref(1)?.as_blob()?);
                let g = slot(r.get(5)?, r.get(6)?);
                Ok((r.get::<_, u8>(0)?, pack, r.get(2)?, r.get(3)?, r.get(4)?, g))
            })
            .optional()?;
        Ok(row.map(|(kind, pack, offset, length, raw_length, group)| {
            Ok(BlobLocation {
                kind: BlobKind::from_u8(kind)
                    .ok_or_else(|| Error::corrupt("index", "unknown blob kind"))?,
                pack: pack.ok_or_else(|| Error::corrupt("index", "bad pack id"))?,
                offset,
                length,
                raw_length,
                group,
            })
        }))
    }

    /// Records a durable pack and its blobs, in one transaction. Blobs
    /// already indexed elsewhere keep their first location.
    pub fn add_pack(&self, pack: &Id, size: u64, entries: &[PackEntry]) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(|e| self.err(e))?;
        insert_pack(&tx, pack, size, entries).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Replaces every pack and blob row with `packs`, in one transaction:
    /// an interrupted rebuild leaves the previous index intact.
    pub fn replace_packs<I>(&self, packs: I) -> Result<()>
    where
        I: Iterator<Item = (Id, u64, Vec<PackEntry>)>,
    {
        let mut c = self.conn();
        let tx = c.transaction().map_err(|e| self.err(e))?;
        tx.execute_batch("DELETE FROM blobs; DELETE FROM packs;")
            .map_err(|e| self.err(e))?;
        for (id, size, entries) in packs {
            insert_pack(&tx, &id, size, &entries).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// In one durable transaction: forgets the packs `old` and their blobs,
    /// and records the packs `new`. Prune calls this after the new packs
    /// are durable and before it deletes the old ones.
    pub fn swap_packs(&self, old: &[Id], new: &[(Id, u64, Vec<PackEntry>)]) -> Result<()> {
        let mut c = self.conn();
        // FULL: the commit itself is fsynced, not only ordered (WAL with
        // NORMAL may lose the last commits on power loss).
        c.execute_batch("PRAGMA synchronous=FULL;")
            .map_err(|e| self.err(e))?;
        let res = (|| {
            let tx = c.transaction()?;
            for p in old {
                tx.execute(
                    "DELETE FROM blobs WHERE pid = (SELECT pid FROM packs WHERE id = ?1)",
                    [&p.0[..]],
                )?;
                tx.execute("DELETE FROM packs WHERE id = ?1", [&p.0[..]])?;
            }
            for (id, size, entries) in new {
                insert_pack(&tx, id, *size, entries)?;
            }
            tx.commit()
        })();
        let restore = c.execute_batch("PRAGMA synchronous=NORMAL;");
        res.map_err(|e| self.err(e))?;
        restore.map_err(|e| self.err(e))
    }

    /// Points blob `id` at another stored copy (`repair snapshots` healing
    /// a damaged blob). The pack must already be indexed.
    pub fn relocate_blob(&self, id: &Id, pack: &Id, e: &PackEntry) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE blobs SET pid = (SELECT pid FROM packs WHERE id = ?2), kind = ?3,
                 offset = ?4, length = ?5, raw_length = ?6, inner = ?7, group_raw = ?8
                 WHERE id = ?1",
                params![
                    &id.0[..],
                    &pack.0[..],
                    e.kind as u8,
                    e.offset,
                    e.length,
                    e.raw_length,
                    slot_columns(e.group).0,
                    slot_columns(e.group).1
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Drops blob `id`'s row, so the next snapshot that meets its content
    /// stores it again (used for damaged blobs with no intact copy).
    pub fn forget_blob(&self, id: &Id) -> Result<()> {
        self.conn()
            .execute("DELETE FROM blobs WHERE id = ?1", [&id.0[..]])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Forgets a pack and the blobs it held.
    pub fn remove_pack(&self, pack: &Id) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM blobs WHERE pid = (SELECT pid FROM packs WHERE id = ?1)",
            [&pack.0[..]],
        )
        .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM packs WHERE id = ?1", [&pack.0[..]])
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Every indexed pack with its size.
    pub fn packs(&self) -> Result<Vec<(Id, u64)>> {
        Ok(self
            .pack_contents()?
            .into_iter()
            .map(|(id, size, _)| (id, size))
            .collect())
    }

    /// Every indexed pack with its size and the stored bytes of all the
    /// blobs its trailer lists (see [`PackEntry::stored_share`]), including
    /// copies whose rows were ignored because another pack was indexed first.
    pub fn pack_contents(&self) -> Result<Vec<(Id, u64, u64)>> {
        let c = self.conn();
        let mut st = c
            .prepare("SELECT id, size, content FROM packs ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u64>(1)?,
                    r.get::<_, u64>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, size, content) = row.map_err(|e| self.err(e))?;
            out.push((
                Id::from_slice(&id).ok_or_else(|| Error::corrupt("index", "bad pack id"))?,
                size,
                content,
            ));
        }
        Ok(out)
    }

    /// Every indexed blob as (id, location), ordered by pack and offset.
    pub fn all_blobs(&self) -> Result<Vec<(Id, BlobLocation)>> {
        let c = self.conn();
        let mut st = c
            .prepare(
                "SELECT b.id, b.kind, p.id, b.offset, b.length, b.raw_length, b.inner, b.group_raw
                 FROM blobs b JOIN packs p ON p.pid = b.pid ORDER BY p.id, b.offset, b.inner",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, u64>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, u32>(5)?,
                    slot(r.get(6)?, r.get(7)?),
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, pack, offset, length, raw_length, group) =
                row.map_err(|e| self.err(e))?;
            let bad = || Error::corrupt("index", "malformed row");
            out.push((
                Id::from_slice(&id).ok_or_else(bad)?,
                BlobLocation {
                    kind: BlobKind::from_u8(kind).ok_or_else(bad)?,
                    pack: Id::from_slice(&pack).ok_or_else(bad)?,
                    offset,
                    length,
                    raw_length,
                    group,
                },
            ));
        }
        Ok(out)
    }

    /// The indexed blobs of each of `packs`, in offset order.
    pub fn blobs_of_packs(&self, packs: &[Id]) -> Result<Vec<(Id, PackBlobs)>> {
        let c = self.conn();
        let mut st = c
            .prepare_cached(
                "SELECT b.id, b.kind, b.offset, b.length, b.raw_length, b.inner, b.group_raw
                 FROM blobs b JOIN packs p ON p.pid = b.pid WHERE p.id = ?1
                 ORDER BY b.offset, b.inner",
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for pack in packs {
            let rows = st
                .query_map([&pack.0[..]], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, u8>(1)?,
                        r.get::<_, u64>(2)?,
                        r.get::<_, u32>(3)?,
                        r.get::<_, u32>(4)?,
                        slot(r.get(5)?, r.get(6)?),
                    ))
                })
                .map_err(|e| self.err(e))?;
            let mut blobs = Vec::new();
            for row in rows {
                let (id, kind, offset, length, raw_length, group) = row.map_err(|e| self.err(e))?;
                let bad = || Error::corrupt("index", "malformed row");
                blobs.push((
                    Id::from_slice(&id).ok_or_else(bad)?,
                    BlobLocation {
                        kind: BlobKind::from_u8(kind).ok_or_else(bad)?,
                        pack: *pack,
                        offset,
                        length,
                        raw_length,
                        group,
                    },
                ));
            }
            out.push((*pack, blobs));
        }
        Ok(out)
    }

    /// Totals for `stats`.
    pub fn totals(&self) -> Result<IndexTotals> {
        let c = self.conn();
        let (packs, pack_bytes): (u64, u64) = c
            .query_row(
                "SELECT count(*), coalesce(sum(size),0) FROM packs",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let (blobs, raw_bytes): (u64, u64) = c
            .query_row(
                "SELECT count(*), coalesce(sum(raw_length),0) FROM blobs",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let data_raw_bytes: u64 = c
            .query_row(
                "SELECT coalesce(sum(raw_length),0) FROM blobs WHERE kind = 0",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(IndexTotals {
            packs,
            pack_bytes,
            blobs,
            raw_bytes,
            data_raw_bytes,
        })
    }

    /// Removes every pack and blob row (before a rebuild).
    pub fn clear_packs(&self) -> Result<()> {
        self.conn()
            .execute_batch("DELETE FROM blobs; DELETE FROM packs;")
            .map_err(|e| self.err(e))
    }

    /// Cached snapshot records as (id, sealed bytes).
    pub fn snapshots(&self) -> Result<Vec<(Id, Vec<u8>)>> {
        let c = self.conn();
        let mut st = c
            .prepare("SELECT id, sealed FROM snapshots ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, sealed) = row.map_err(|e| self.err(e))?;
            out.push((
                Id::from_slice(&id).ok_or_else(|| Error::corrupt("index", "bad snapshot id"))?,
                sealed,
            ));
        }
        Ok(out)
    }

    /// Caches a sealed snapshot record.
    pub fn put_snapshot(&self, id: &Id, sealed: &[u8]) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO snapshots(id, sealed) VALUES (?1, ?2)",
                params![&id.0[..], sealed],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Drops a cached snapshot record.
    pub fn remove_snapshot(&self, id: &Id) -> Result<()> {
        self.conn()
            .execute("DELETE FROM snapshots WHERE id = ?1", [&id.0[..]])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A blob's plaintext length.
const RAW_LENGTH: &str = "SELECT raw_length FROM blobs WHERE id = ?1";

/// Where a blob is: its row and its pack's id.
const LOOKUP: &str = "SELECT b.kind, p.id, b.offset, b.length, b.raw_length, b.inner, b.group_raw
     FROM blobs b JOIN packs p ON p.pid = b.pid WHERE b.id = ?1";

fn insert_pack(
    tx: &rusqlite::Transaction<'_>,
    pack: &Id,
    size: u64,
    entries: &[PackEntry],
) -> rusqlite::Result<()> {
    let content: u64 = entries.iter().map(PackEntry::stored_share).sum();
    tx.execute(
        "INSERT OR IGNORE INTO packs(id, size, content) VALUES (?1, ?2, ?3)",
        params![&pack.0[..], size, content],
    )?;
    let pid: i64 = tx.query_row("SELECT pid FROM packs WHERE id = ?1", [&pack.0[..]], |r| {
        r.get(0)
    })?;
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO blobs(id, kind, pid, offset, length, raw_length, inner, group_raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    // In id order: each insert then lands beside the last in the B-tree
    // rather than on a random page of it.
    let mut sorted: Vec<&PackEntry> = entries.iter().collect();
    sorted.sort_unstable_by_key(|e| e.id.0);
    for e in sorted {
        let (inner, group_raw) = slot_columns(e.group);
        st.execute(params![
            &e.id.0[..],
            e.kind as u8,
            pid,
            e.offset,
            e.length,
            e.raw_length,
            inner,
            group_raw
        ])?;
    }
    Ok(())
}
