//! Exclude patterns, gitignore-like: a pattern without `/` matches any entry
//! name at any depth; a pattern with `/` matches the path relative to the
//! captured root; a trailing `/` matches folders only. `**` crosses folders.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

/// Compiled exclude patterns.
#[derive(Clone, Debug)]
pub struct Excludes {
    names: GlobSet,
    paths: GlobSet,
    dir_names: GlobSet,
    dir_paths: GlobSet,
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
        let mut dir_names = GlobSetBuilder::new();
        let mut dir_paths = GlobSetBuilder::new();
        for p in patterns {
            let p = p.as_ref();
            let dir_only = p.ends_with('/');
            let g = GlobBuilder::new(p.trim_start_matches('/').trim_end_matches('/'))
                .literal_separator(true)
                .build()
                .map_err(|e| Error::Config(format!("exclude pattern {p:?}: {e}")))?;
            let anchored = p.trim_end_matches('/').contains('/');
            match (dir_only, anchored) {
                (false, true) => paths.add(g),
                (false, false) => names.add(g),
                (true, true) => dir_paths.add(g),
                (true, false) => dir_names.add(g),
            };
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::Config(format!("exclude patterns: {e}")))
        };
        Ok(Excludes {
            names: build(names)?,
            paths: build(paths)?,
            dir_names: build(dir_names)?,
            dir_paths: build(dir_paths)?,
        })
    }

    /// Whether the entry at relative path `rel` (named `name`) is
    /// excluded; `is_dir` tells whether it is a folder.
    pub fn is_excluded(&self, rel: &[u8], name: &[u8], is_dir: bool) -> bool {
        let name = String::from_utf8_lossy(name);
        let rel = String::from_utf8_lossy(rel);
        let hit = |names: &GlobSet, paths: &GlobSet| {
            names.is_match(name.as_ref()) || (!paths.is_empty() && paths.is_match(rel.as_ref()))
        };
        hit(&self.names, &self.paths) || (is_dir && hit(&self.dir_names, &self.dir_paths))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        let e = Excludes::new(&["*.log", "cache/**", "/tmp", "build/"]).unwrap();
        assert!(e.is_excluded(b"a/b/x.log", b"x.log", false));
        assert!(e.is_excluded(b"cache/x/y", b"y", false));
        assert!(e.is_excluded(b"tmp", b"tmp", false));
        assert!(!e.is_excluded(b"a/cache2/y", b"y", false));
        assert!(!e.is_excluded(b"x.txt", b"x.txt", false));
        assert!(e.is_excluded(b"a/build", b"build", true));
        assert!(
            !e.is_excluded(b"a/build", b"build", false),
            "trailing / is folders only"
        );
    }
}
