//! Entry-by-entry comparison of two folders (type, mode, size, content,
//! mtime, link target). A live SQLite database is stored as a consistent
//! copy made by SQLite's backup API, which is the same database but not
//! always the same bytes (header counters, commits still in the source's
//! WAL): databases are compared by schema and rows.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Checks that `b` mirrors `a`; returns the number of files compared.
pub fn compare_trees(a: &Path, b: &Path) -> Result<u64> {
    let differ = |p: &Path, what: &str| {
        Error::Invalid(format!(
            "restored {} differs from the source: {what}",
            p.display()
        ))
    };
    let ma = std::fs::symlink_metadata(a).map_err(|e| Error::io("reading", a, e))?;
    let mb = std::fs::symlink_metadata(b).map_err(|_| differ(b, "missing"))?;
    if ma.file_type() != mb.file_type() {
        return Err(differ(b, "type"));
    }
    if ma.mode() != mb.mode() {
        return Err(differ(b, "mode"));
    }
    if !ma.is_dir() && (ma.mtime(), ma.mtime_nsec()) != (mb.mtime(), mb.mtime_nsec()) {
        return Err(differ(b, "mtime"));
    }
    let mut files = 0;
    if ma.is_file() {
        if is_sqlite(a) && is_sqlite(b) {
            if database_digest(a)? != database_digest(b)? {
                return Err(differ(b, "database content"));
            }
        } else if ma.len() != mb.len() {
            return Err(differ(b, "size"));
        } else if hash(a)? != hash(b)? {
            return Err(differ(b, "content"));
        }
        files += 1;
    } else if ma.file_type().is_symlink() {
        if std::fs::read_link(a).ok() != std::fs::read_link(b).ok() {
            return Err(differ(b, "link target"));
        }
    } else if ma.is_dir() {
        let names = |p: &Path| -> Result<Vec<_>> {
            let mut v: Vec<_> = std::fs::read_dir(p)
                .map_err(|e| Error::io("listing", p, e))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            v.sort();
            Ok(v)
        };
        let (na, nb) = (names(a)?, names(b)?);
        if na != nb {
            return Err(differ(b, "entries"));
        }
        for n in na {
            files += compare_trees(&a.join(&n), &b.join(&n))?;
        }
        if (ma.mtime(), ma.mtime_nsec()) != (mb.mtime(), mb.mtime_nsec()) {
            return Err(differ(b, "folder mtime"));
        }
    }
    Ok(files)
}

fn hash(p: &Path) -> Result<blake3::Hash> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(p).map_err(|e| Error::io("reading", p, e))?)
        .map_err(|e| Error::io("reading", p, e))?;
    Ok(h.finalize())
}

fn is_sqlite(p: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == crate::source::sqlite::SQLITE_MAGIC
}

/// A digest of a database's schema and of every row of its ordinary
/// tables, in key order; fails unless `PRAGMA integrity_check` is ok.
fn database_digest(p: &Path) -> Result<blake3::Hash> {
    use rusqlite::{types::ValueRef, Connection, OpenFlags};
    let bad = |e: rusqlite::Error| Error::Invalid(format!("{}: SQLite: {e}", p.display()));
    let c = Connection::open_with_flags(p, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(bad)?;
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(bad)?;
    if ok != "ok" {
        return Err(Error::Invalid(format!(
            "{}: integrity_check: {ok}",
            p.display()
        )));
    }
    let mut h = blake3::Hasher::new();
    let mut tables = Vec::new();
    {
        let mut st = c
            .prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name")
            .map_err(bad)?;
        let mut rows = st.query([]).map_err(bad)?;
        while let Some(r) = rows.next().map_err(bad)? {
            let (kind, name, sql): (String, String, String) = (
                r.get(0).map_err(bad)?,
                r.get(1).map_err(bad)?,
                r.get(2).map_err(bad)?,
            );
            h.update(format!("{kind}\0{name}\0{sql}\0").as_bytes());
            if kind == "table" && !sql.starts_with("CREATE VIRTUAL") {
                tables.push(name);
            }
        }
    }
    for t in tables {
        // A table scan visits rows in rowid (or primary key) order,
        // whatever the page layout.
        let mut st = c
            .prepare(&format!("SELECT * FROM \"{}\"", t.replace('"', "\"\"")))
            .map_err(bad)?;
        let n = st.column_count();
        let mut rows = st.query([]).map_err(bad)?;
        while let Some(r) = rows.next().map_err(bad)? {
            for i in 0..n {
                match r.get_ref(i).map_err(bad)? {
                    ValueRef::Null => h.update(b"n"),
                    ValueRef::Integer(v) => h.update(b"i").update(&v.to_le_bytes()),
                    ValueRef::Real(v) => h.update(b"r").update(&v.to_le_bytes()),
                    ValueRef::Text(v) => h
                        .update(b"t")
                        .update(&(v.len() as u64).to_le_bytes())
                        .update(v),
                    ValueRef::Blob(v) => h
                        .update(b"b")
                        .update(&(v.len() as u64).to_le_bytes())
                        .update(v),
                };
            }
        }
    }
    Ok(h.finalize())
}
