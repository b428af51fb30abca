//! The SQLite index: blob id -> pack, offset, length; the pack list; and a
//! cache of snapshot records. All of it is derived data, rebuilt from the
//! packs and snapshot objects by [`Repository::rebuild_index`](crate::repo::Repository::rebuild_index).

mod filter;
mod readers;
mod schema;
mod trust;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use std::rc::Rc;

use rusqlite::types::Value;
use rusqlite::vtab::array::Array;
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

    /// Whether a reader writing this blob out takes it a piece at a time
    /// ([`super::Repository::stream_blob`]): stored alone, and large.
    pub fn streams(&self) -> bool {
        self.group.is_none() && self.raw_length as usize >= super::blob::STREAM_MIN
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
    /// Every write, and reads of whole tables.
    conn: Mutex<Connection>,
    /// Blob lookups, side by side on several threads.
    readers: readers::Readers,
    /// The ids indexed, for [`Index::contains_many`]; built on its first
    /// call, dropped when rows are replaced wholesale. Written only while
    /// `conn` is held, so no commit falls between a build and its install.
    filter: RwLock<Option<Arc<filter::IdFilter>>>,
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
        //
        // Checkpoints every 20,000 pages of log (80 MB) rather than 1,000:
        // each pack's rows land on leaves all over the id-ordered B-tree,
        // and copying them back to the database after every pack's commit
        // made indexing the reference data's first backup (23 packs) take
        // 0.87-1.04 s; with 20,000 it took 0.59-0.61 s (8,000: 0.65-0.75;
        // 50,000: 0.52-0.59). The log is deleted when the index closes.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000; \
             PRAGMA cache_size=-4096; PRAGMA wal_autocheckpoint=20000;",
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
                readers: readers::Readers::new(path),
                filter: RwLock::new(None),
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
        self.conn()
            .prepare_cached("SELECT 1 FROM blobs WHERE id = ?1")
            .and_then(|mut st| st.exists([&id.0[..]]))
            .map_err(|e| self.err(e))
    }

    /// Whether each of `ids` is stored, in one read transaction: one lock
    /// round trip for the batch instead of one per blob. On the writing
    /// connection, a statement stepped per id: a backup asks this of every
    /// file, and both further connections (each with its page cache) and
    /// the small copies an array of ids takes (see [`PROBE_BATCH`]) raised
    /// a first backup's peak at `--scale 4` by about 10 MB.
    ///
    /// Ids the in-memory filter (`filter.rs`) has never seen are answered
    /// without SQLite or its lock: in a first backup, all of them.
    pub fn contains_many(&self, ids: &[Id]) -> Result<Vec<bool>> {
        let filter = self.filter()?;
        let maybe: Vec<usize> = (0..ids.len())
            .filter(|&i| filter.may_contain(&ids[i]))
            .collect();
        let mut out = vec![false; ids.len()];
        if maybe.is_empty() {
            return Ok(out);
        }
        let c = self.conn();
        let tx = c.unchecked_transaction().map_err(|e| self.err(e))?;
        let mut st = tx
            .prepare_cached("SELECT 1 FROM blobs WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        for i in maybe {
            out[i] = st.exists([&ids[i].0[..]]).map_err(|e| self.err(e))?;
        }
        drop(st);
        tx.finish().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// The filter of indexed ids, built (again, larger, once full) from
    /// the blob rows.
    fn filter(&self) -> Result<Arc<filter::IdFilter>> {
        let current =
            |slot: &Option<Arc<filter::IdFilter>>| slot.as_ref().filter(|f| !f.is_full()).cloned();
        if let Some(f) = current(&self.filter.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(f);
        }
        let c = self.conn();
        if let Some(f) = current(&self.filter.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(f);
        }
        let built = (|| {
            let rows: i64 = c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
            let f = filter::IdFilter::with_room_for(rows.max(0) as usize);
            let mut st = c.prepare("SELECT id FROM blobs")?;
            let mut q = st.query([])?;
            while let Some(r) = q.next()? {
                if let Ok(id) = <[u8; 32]>::try_from(r.get_ref(0)?.as_blob()?) {
                    f.insert(&Id(id));
                }
            }
            Ok(Arc::new(f))
        })()
        .map_err(|e| self.err(e))?;
        *self.filter.write().unwrap_or_else(|p| p.into_inner()) = Some(built.clone());
        Ok(built)
    }

    /// Adds `entries` to the filter, if one is built. Call with `conn`
    /// held, after the commit that indexed them.
    fn filter_add(&self, entries: &[PackEntry]) {
        if let Some(f) = self
            .filter
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            for e in entries {
                f.insert(&e.id);
            }
        }
    }

    /// Drops the filter (rows replaced wholesale); the next
    /// [`Index::contains_many`] builds it again. Call with `conn` held.
    fn filter_drop(&self) {
        *self.filter.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Where each of `ids` is stored (`None` when not), in one read
    /// transaction. (Pack ids stay a join: a map of the packs, read once
    /// per call, costs as much as a call for a small file in a large
    /// repository, and kept longer it could miss another process's pack.)
    ///
    /// The ids are probed in id order, [`PROBE_BATCH`] per statement over
    /// `rarray(?1)`, not one statement per id: binding, stepping and
    /// resetting a statement per blob (opening its cursors every time)
    /// showed in a restore's profile. In id order, consecutive probes walk
    /// the B-tree's leaves in order: each leaf is read into the page cache
    /// once per batch, not once per probe that lands on it (a file's block
    /// ids are random).
    pub fn lookup_many(&self, ids: &[Id]) -> Result<Vec<Option<BlobLocation>>> {
        let mut out = vec![None; ids.len()];
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_unstable_by_key(|&i| &ids[i as usize].0);
        // On a reader, so that threads locating different files probe
        // side by side (see readers.rs).
        self.readers.with(|c| {
            let tx = ids.len() > PROBE_BATCH;
            let run = |sql: &str| c.prepare_cached(sql).and_then(|mut st| st.execute([]));
            if tx {
                run("BEGIN").map_err(|e| self.err(e))?;
            }
            let res = (|| {
                let mut st = c.prepare_cached(LOOKUP_MANY).map_err(|e| self.err(e))?;
                for part in order.chunks(PROBE_BATCH) {
                    let array: Array = Rc::new(
                        part.iter()
                            .map(|&i| Value::Blob(ids[i as usize].0.to_vec()))
                            .collect(),
                    );
                    let mut rows = st.query([array]).map_err(|e| self.err(e))?;
                    for &i in part {
                        let row = rows.next().map_err(|e| self.err(e))?.ok_or_else(|| {
                            Error::corrupt("index", "a batch lookup returned too few rows")
                        })?;
                        out[i as usize] = location_of(row).map_err(|e| self.err(e))?.transpose()?;
                    }
                }
                Ok(())
            })();
            if tx {
                // After a failed probe, its error is the one to report.
                let end = run(if res.is_ok() { "COMMIT" } else { "ROLLBACK" });
                if res.is_ok() {
                    end.map_err(|e| self.err(e))?;
                }
            }
            res
        })?;
        Ok(out)
    }

    /// Where each of `ids` is, in their order; a missing one is an error.
    pub fn locate_all(&self, ids: &[Id]) -> Result<Vec<BlobLocation>> {
        let found = self.lookup_many(ids)?;
        if let Some(i) = found.iter().position(Option::is_none) {
            return Err(Error::MissingBlob(ids[i].to_hex()));
        }
        // Collected in place, in `found`'s allocation: a restore locates
        // 16,384 blobs at a time, and a second vector was 1 MB more at
        // its peak.
        Ok(found.into_iter().map_while(|l| l).collect())
    }

    /// Where a blob is stored.
    pub fn lookup(&self, id: &Id) -> Result<Option<BlobLocation>> {
        // On a reader too: every tree a restore reads is looked up here.
        self.readers.with(|c| {
            let mut st = c.prepare_cached(LOOKUP).map_err(|e| self.err(e))?;
            let mut rows = st.query([&id.0[..]]).map_err(|e| self.err(e))?;
            match rows.next().map_err(|e| self.err(e))? {
                Some(r) => location_of(r).map_err(|e| self.err(e))?.transpose(),
                None => Ok(None),
            }
        })
    }

    /// Records a durable pack and its blobs, in one transaction. Blobs
    /// already indexed elsewhere keep their first location.
    pub fn add_pack(&self, pack: &Id, size: u64, entries: &[PackEntry]) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(|e| self.err(e))?;
        insert_pack(&tx, pack, size, entries).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        self.filter_add(entries);
        Ok(())
    }

    /// Replaces every pack and blob row with `packs`, in one transaction:
    /// an interrupted rebuild leaves the previous index intact.
    pub fn replace_packs<I>(&self, packs: I) -> Result<()>
    where
        I: Iterator<Item = (Id, u64, Vec<PackEntry>)>,
    {
        let mut c = self.conn();
        self.filter_drop();
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
        // The old packs' ids stay in the filter: a removed id is only a
        // false positive, which SQLite answers; the filter is not rebuilt.
        for (_, _, entries) in new {
            self.filter_add(entries);
        }
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

/// Ids probed with one statement: the array's values are copies (about
/// 80 bytes an id), so a file of 65,536 blocks costs 330 KB, not 5 MB.
const PROBE_BATCH: usize = 4096;

/// The columns of a blob's location; with a left join, all NULL when the
/// blob is not indexed. (A macro so the queries below are constants.)
macro_rules! location_columns {
    () => {
        "b.kind, p.id, b.offset, b.length, b.raw_length, b.inner, b.group_raw"
    };
}

/// Where each blob of an array is, a row per element in order. The left
/// joins keep the array the outer loop: one primary-key search per id.
const LOOKUP_MANY: &str = concat!(
    "SELECT ",
    location_columns!(),
    " FROM rarray(?1) a LEFT JOIN blobs b ON b.id = a.value LEFT JOIN packs p ON p.pid = b.pid"
);

/// Where a blob is: its row and its pack's id.
const LOOKUP: &str = concat!(
    "SELECT ",
    location_columns!(),
    " FROM blobs b JOIN packs p ON p.pid = b.pid WHERE b.id = ?1"
);

/// The location in a row of `location_columns!()` (`None` when they are
/// NULL: not indexed); the inner result flags an unreadable row.
fn location_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Result<BlobLocation>>> {
    let Some(kind) = r.get::<_, Option<u8>>(0)? else {
        return Ok(None);
    };
    // Read in place: no allocation per probe.
    let pack = Id::from_slice(r.get_ref(1)?.as_blob()?);
    let (offset, length, raw_length) = (r.get(2)?, r.get(3)?, r.get(4)?);
    let group = slot(r.get(5)?, r.get(6)?);
    Ok(Some((|| {
        Ok(BlobLocation {
            kind: BlobKind::from_u8(kind)
                .ok_or_else(|| Error::corrupt("index", "unknown blob kind"))?,
            pack: pack.ok_or_else(|| Error::corrupt("index", "bad pack id"))?,
            offset,
            length,
            raw_length,
            group,
        })
    })()))
}

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

#[cfg(test)]
mod tests;
