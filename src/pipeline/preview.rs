//! A dry run: walks source paths like a snapshot, applies excludes and
//! sanitization, and stores nothing. Answers "what would be captured, and
//! what would be redacted or left out".

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::file::FileError;
use super::sanitize::SanitizeCtx;
use super::scan::join_rel;
use crate::snapshot::PartSanitize;
use crate::source::sanitize::Sanitizer;
use crate::source::Excludes;

/// What a dry run of one part found.
#[derive(Clone, Debug, Default)]
pub struct Preview {
    /// Files that would be stored.
    pub files: u64,
    /// Folders.
    pub dirs: u64,
    /// Bytes of the files' source content.
    pub bytes: u64,
    /// What sanitization would do, when it is on.
    pub sanitize: Option<PartSanitize>,
    /// Problems the snapshot would warn about.
    pub warnings: Vec<String>,
}

struct Walk<'a> {
    excludes: &'a Excludes,
    sanitize: Option<&'a SanitizeCtx>,
    out: Preview,
}

impl Walk<'_> {
    fn walk(&mut self, p: &Path, rel: &[u8], name: &[u8]) {
        let md = match std::fs::symlink_metadata(p) {
            Ok(md) => md,
            Err(e) => return self.out.warnings.push(format!("{}: {e}", p.display())),
        };
        if md.is_dir() {
            self.out.dirs += 1;
            let rd = match std::fs::read_dir(p) {
                Ok(rd) => rd,
                Err(e) => return self.out.warnings.push(format!("{}: {e}", p.display())),
            };
            let mut kids: Vec<_> = rd.flatten().collect();
            kids.sort_by_key(|e| e.file_name());
            for e in kids {
                let name = e.file_name();
                let name = name.as_bytes();
                let child_rel = join_rel(rel, name);
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if self.excludes.is_excluded(&child_rel, name, is_dir)
                    || self
                        .sanitize
                        .is_some_and(|s| s.excluded_entry(&child_rel, name, is_dir))
                {
                    continue;
                }
                self.walk(&e.path(), &child_rel, name);
            }
        } else if md.is_file() {
            let rel = if rel.is_empty() { name } else { rel };
            let format = self.sanitize.and_then(|s| Some((s, s.format(rel, name)?)));
            let size = match format {
                Some((s, f)) => match s.read(p, rel, f, md.len()) {
                    Ok((data, _)) => data.len() as u64,
                    Err(FileError::Source(e) | FileError::Repo(e)) => {
                        return self.out.warnings.push(format!("skipped: {e}"))
                    }
                },
                None => md.len(),
            };
            self.out.files += 1;
            self.out.bytes += size;
        }
    }
}

/// Walks `paths` as a snapshot of one part would, storing nothing.
/// `part` names the part in the recorded paths.
pub fn preview(
    part: &str,
    paths: &[PathBuf],
    excludes: &Excludes,
    sanitizer: Option<Sanitizer>,
) -> Preview {
    let ctx = sanitizer.map(|s| SanitizeCtx::new(Some(s), None, part));
    let mut w = Walk {
        excludes,
        sanitize: ctx.as_ref(),
        out: Preview::default(),
    };
    for (path, name) in paths.iter().zip(super::entry_names(paths)) {
        if let Some(s) = w.sanitize {
            s.set_root(&name, paths.len() == 1);
        }
        w.walk(path, b"", &name);
    }
    let mut out = w.out;
    out.sanitize = ctx.and_then(SanitizeCtx::finish);
    out
}
