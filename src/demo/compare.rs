//! Entry-by-entry comparison of two folders (type, mode, size, content,
//! mtime, link target).

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
        if ma.len() != mb.len() {
            return Err(differ(b, "size"));
        }
        let ha = hash(a)?;
        if ha != hash(b)? {
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
