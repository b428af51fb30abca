//! A metadata-only walk to size the work for progress bars.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::source::Excludes;

/// Counts files and bytes under `paths`, honouring excludes; unreadable
/// entries are ignored here (the real walk reports them).
pub fn scan_totals(paths: &[&Path], excludes: &Excludes) -> (u64, u64) {
    fn walk(p: &Path, rel: &[u8], ex: &Excludes, acc: &mut (u64, u64)) {
        let Ok(md) = std::fs::symlink_metadata(p) else {
            return;
        };
        if md.is_file() {
            acc.0 += 1;
            acc.1 += md.len();
        } else if md.is_dir() {
            let Ok(rd) = std::fs::read_dir(p) else { return };
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.as_bytes();
                let child_rel = join_rel(rel, name);
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if !ex.is_excluded(&child_rel, name, is_dir) {
                    walk(&e.path(), &child_rel, ex, acc);
                }
            }
        }
    }
    let mut acc = (0, 0);
    for p in paths {
        walk(p, b"", excludes, &mut acc);
    }
    acc
}

/// `rel/name`, or `name` at the root.
pub(crate) fn join_rel(rel: &[u8], name: &[u8]) -> Vec<u8> {
    if rel.is_empty() {
        name.to_vec()
    } else {
        let mut v = Vec::with_capacity(rel.len() + 1 + name.len());
        v.extend_from_slice(rel);
        v.push(b'/');
        v.extend_from_slice(name);
        v
    }
}
