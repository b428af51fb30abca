//! Exclude patterns, gitignore-like: a pattern without `/` matches any entry
//! name at any depth; a pattern with `/` matches the path relative to the
//! captured root. `**` crosses folders.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

/// Compiled exclude patterns.
#[derive(Clone, Debug)]
pub struct Excludes {
    names: GlobSet,
    paths: GlobSet,
}

impl Default for Excludes {
    fn default() -> Self {
        Excludes::new::<&str>(&[]).expect("no patterns compile")
    }
}

impl Excludes {
    /// Compiles `patterns`.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Excludes> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for p in patterns {
            let p = p.as_ref();
            let g = GlobBuilder::new(p.trim_start_matches('/').trim_end_matches('/'))
                .literal_separator(true)
                .build()
                .map_err(|e| Error::Config(format!("exclude pattern {p:?}: {e}")))?;
            if p.trim_end_matches('/').contains('/') {
                paths.add(g);
            } else {
                names.add(g);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::Config(format!("exclude patterns: {e}")))
        };
        Ok(Excludes {
            names: build(names)?,
            paths: build(paths)?,
        })
    }

    /// Whether the entry at relative path `rel` (named `name`) is excluded.
    pub fn is_excluded(&self, rel: &[u8], name: &[u8]) -> bool {
        let name = String::from_utf8_lossy(name);
        if self.names.is_match(name.as_ref()) {
            return true;
        }
        !self.paths.is_empty() && self.paths.is_match(String::from_utf8_lossy(rel).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        let e = Excludes::new(&["*.log", "cache/**", "/tmp"]).unwrap();
        assert!(e.is_excluded(b"a/b/x.log", b"x.log"));
        assert!(e.is_excluded(b"cache/x/y", b"y"));
        assert!(e.is_excluded(b"tmp", b"tmp"));
        assert!(!e.is_excluded(b"a/cache2/y", b"y"));
        assert!(!e.is_excluded(b"x.txt", b"x.txt"));
    }
}
