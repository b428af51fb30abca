//! Writes trees back to a filesystem with their metadata.
//!
//! Entries of a folder are restored in parallel. Folder metadata (mode,
//! times) is applied last, deepest first, because creating children changes
//! a folder's mtime and a read-only folder could not be filled. Hardlinks
//! are created after all files exist. Every blob is authenticated and its
//! content checked against its keyed hash when read; with `verify`, each
//! file is also read back from disk and re-hashed.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use rayon::prelude::*;

use super::Progress;
use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::snapshot::{for_each_segment, Node, NodeKind, Tree};

mod slices;
mod small;

/// How to restore.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Replace existing entries (files are removed and written anew).
    pub overwrite: bool,
    /// Read every restored file back and check it against its blob ids.
    pub verify: bool,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            overwrite: false,
            verify: true,
        }
    }
}

/// Counters of a restore.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreStats {
    /// Regular files written (hardlinks excluded).
    pub files: u64,
    /// Folders created.
    pub dirs: u64,
    /// Symlinks, FIFOs and devices created.
    pub others: u64,
    /// Hardlinks created.
    pub hardlinks: u64,
    /// Content bytes written or left as holes.
    pub bytes: u64,
    /// Files read back and verified.
    pub verified: u64,
}

impl RestoreStats {
    /// Adds another restore's counters.
    pub fn add(&mut self, o: &RestoreStats) {
        self.files += o.files;
        self.dirs += o.dirs;
        self.others += o.others;
        self.hardlinks += o.hardlinks;
        self.bytes += o.bytes;
        self.verified += o.verified;
    }
}

/// Restores nodes below a destination; call [`Restorer::finish`] at the end.
pub struct Restorer<'a> {
    repo: &'a Repository,
    opts: RestoreOptions,
    progress: &'a dyn Progress,
    is_root: bool,
    stats: Mutex<RestoreStats>,
    warnings: Mutex<Vec<String>>,
    first_links: Mutex<HashMap<(u64, u64), PathBuf>>,
    pending_links: Mutex<Vec<(PathBuf, PathBuf)>>,
    dirs: Mutex<Vec<(PathBuf, Node)>>,
    roots: Mutex<Vec<PathBuf>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<'a> Restorer<'a> {
    /// A restorer reading from `repo`.
    pub fn new(
        repo: &'a Repository,
        opts: RestoreOptions,
        progress: &'a dyn Progress,
    ) -> Restorer<'a> {
        Restorer {
            repo,
            opts,
            progress,
            is_root: nix::unistd::geteuid().is_root(),
            stats: Mutex::new(RestoreStats::default()),
            warnings: Mutex::new(Vec::new()),
            first_links: Mutex::new(HashMap::new()),
            pending_links: Mutex::new(Vec::new()),
            dirs: Mutex::new(Vec::new()),
            roots: Mutex::new(Vec::new()),
        }
    }

    fn warn(&self, msg: String) {
        self.progress.warn(&msg);
        lock(&self.warnings).push(msg);
    }

    /// Restores `node` (and everything below it) as `dest`.
    pub fn restore(&self, node: &Node, dest: &Path) -> Result<()> {
        lock(&self.roots).push(dest.to_path_buf());
        let fresh = std::fs::symlink_metadata(dest).is_err();
        self.restore_entry(node, dest, fresh)
    }

    /// `fresh`: nothing is at `dest` (its folder was created by this
    /// restore), so there is nothing to clear: one `stat` less per entry.
    fn restore_entry(&self, node: &Node, dest: &Path, fresh: bool) -> Result<()> {
        if !fresh && node.kind != NodeKind::Socket {
            self.clear(dest, node.kind == NodeKind::Dir)?;
        }
        match node.kind {
            NodeKind::Dir => self.dir(node, dest, fresh),
            NodeKind::File => self.file(node, dest),
            NodeKind::Symlink => self.symlink(node, dest),
            NodeKind::Fifo | NodeKind::Chardev | NodeKind::Blockdev => self.special(node, dest),
            NodeKind::Socket => {
                self.warn(format!("skipped socket {}", dest.display()));
                Ok(())
            }
        }
    }

    fn clear(&self, dest: &Path, want_dir: bool) -> Result<()> {
        clear_entry(dest, self.opts.overwrite, want_dir)
    }

    fn dir(&self, node: &Node, dest: &Path, fresh: bool) -> Result<()> {
        let create = fresh || !dest.is_dir();
        if create {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dest)
                .map_err(|e| Error::io("creating folder", dest, e))?;
        } else {
            // Owner must be able to fill it; the real mode comes last.
            let _ = std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o700));
        }
        let tree = match node.subtree {
            Some(id) => Tree::decode(&self.repo.read_blob(&id)?)?,
            None => Tree::default(),
        };
        let (small, others): (Vec<&Node>, Vec<&Node>) =
            tree.nodes.iter().partition(|n| small::is_small(n));
        let (small, others) = rayon::join(
            || self.small_files(dest, &small, create),
            || {
                others
                    .par_iter()
                    .map(|child| {
                        let path = dest.join(OsStr::from_bytes(&child.name));
                        self.restore_entry(child, &path, create)
                    })
                    .collect::<Vec<Result<()>>>()
            },
        );
        for r in others {
            r?;
        }
        small?;
        lock(&self.stats).dirs += 1;
        lock(&self.dirs).push((dest.to_path_buf(), node.clone()));
        Ok(())
    }

    fn file(&self, node: &Node, dest: &Path) -> Result<()> {
        if node.nlink > 1 {
            let mut first = lock(&self.first_links);
            if let Some(p) = first.get(&(node.dev, node.inode)) {
                lock(&self.pending_links).push((p.clone(), dest.to_path_buf()));
                return Ok(());
            }
            first.insert((node.dev, node.inode), dest.to_path_buf());
        }
        let f = create_file(dest)?;
        let written = self.write_content(&f, dest, node);
        self.finish_file(f, node, dest, written)
    }

    /// Completes a file whose content was written (`written`: its length,
    /// or why it could not be): checks the length against the snapshot,
    /// reads it back with `verify`, then sets owner, xattrs, mode and
    /// times. A snapshot that lacks a blob, holds a damaged one or
    /// disagrees with itself leaves an empty file, not a wrong one.
    fn finish_file(&self, f: File, node: &Node, dest: &Path, written: Result<u64>) -> Result<()> {
        let io = |e| Error::io("writing", dest, e);
        let written = written.and_then(|off| {
            if off == node.size {
                return Ok(off);
            }
            Err(Error::corrupt(
                format!("file {}", dest.display()),
                format!(
                    "stored content is {off} bytes, the snapshot records {}",
                    node.size
                ),
            ))
        });
        let off = match written {
            Ok(off) => off,
            Err(e) => {
                f.set_len(0).map_err(io)?;
                return Err(e);
            }
        };
        f.set_len(off).map_err(io)?;
        if self.opts.verify {
            self.verify(dest, node)?;
        }
        // chown clears security.capability: owner first, then xattrs.
        self.set_owner(dest, node);
        self.set_xattrs(dest, node);
        f.set_permissions(std::fs::Permissions::from_mode(node.mode))
            .map_err(io)?;
        set_times(dest, node)?;
        let mut s = lock(&self.stats);
        s.files += 1;
        s.bytes += off;
        if self.opts.verify {
            s.verified += 1;
        }
        self.progress.advance(1, 0);
        Ok(())
    }

    fn verify(&self, dest: &Path, node: &Node) -> Result<()> {
        let f = File::open(dest).map_err(|e| Error::io("reading back", dest, e))?;
        let mut at = 0u64;
        for_each_segment(self.repo, node, |segment| {
            // A slice's locations at a time, as when writing: a whole
            // list's are 4 MB.
            for ids in segment.chunks(slices::LOCATE_SLICE) {
                let locs = self.repo.index().locate_all(ids)?;
                let offsets = file_offsets(&locs, &mut at);
                ids.par_iter()
                    .zip(locs.par_iter())
                    .zip(offsets.par_iter())
                    .try_for_each(|((id, loc), off)| {
                        let mut buf = vec![0u8; loc.raw_length as usize];
                        f.read_exact_at(&mut buf, *off)
                            .map_err(|e| Error::io("reading back", dest, e))?;
                        if self.repo.blob_id(&buf) != *id {
                            return Err(Error::corrupt(
                                format!("restored file {}", dest.display()),
                                "content read back differs from the snapshot (disk or filesystem error)",
                            ));
                        }
                        Ok(())
                    })?;
            }
            Ok(())
        })
    }

    fn symlink(&self, node: &Node, dest: &Path) -> Result<()> {
        let target = node.target.as_deref().unwrap_or_default();
        std::os::unix::fs::symlink(OsStr::from_bytes(target), dest)
            .map_err(|e| Error::io("creating symlink", dest, e))?;
        self.set_owner(dest, node);
        set_times(dest, node)?;
        lock(&self.stats).others += 1;
        Ok(())
    }

    fn special(&self, node: &Node, dest: &Path) -> Result<()> {
        let mode = Mode::from_bits_truncate(node.mode);
        let res = match node.kind {
            NodeKind::Fifo => nix::unistd::mkfifo(dest, mode),
            NodeKind::Chardev => nix::sys::stat::mknod(dest, SFlag::S_IFCHR, mode, node.rdev),
            _ => nix::sys::stat::mknod(dest, SFlag::S_IFBLK, mode, node.rdev),
        };
        if let Err(e) = res {
            self.warn(format!(
                "skipped {:?} {}: {e} (device nodes need root)",
                node.kind,
                dest.display()
            ));
            return Ok(());
        }
        self.set_owner(dest, node);
        let _ = std::fs::set_permissions(dest, std::fs::Permissions::from_mode(node.mode));
        set_times(dest, node)?;
        lock(&self.stats).others += 1;
        Ok(())
    }

    fn set_xattrs(&self, dest: &Path, node: &Node) {
        for x in &node.xattrs {
            if let Err(e) = xattr::set(dest, OsStr::from_bytes(&x.name), &x.value) {
                self.warn(format!(
                    "could not set xattr {} on {}: {e}",
                    String::from_utf8_lossy(&x.name),
                    dest.display()
                ));
            }
        }
    }

    fn set_owner(&self, dest: &Path, node: &Node) {
        if !self.is_root {
            return;
        }
        let r = nix::unistd::fchownat(
            None,
            dest,
            Some(nix::unistd::Uid::from_raw(node.uid)),
            Some(nix::unistd::Gid::from_raw(node.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        if let Err(e) = r {
            self.warn(format!("could not set owner of {}: {e}", dest.display()));
        }
    }

    /// Creates pending hardlinks and applies folder metadata; returns the
    /// counters and warnings.
    pub fn finish(self) -> Result<(RestoreStats, Vec<String>)> {
        for (first, link) in std::mem::take(&mut *lock(&self.pending_links)) {
            std::fs::hard_link(&first, &link)
                .map_err(|e| Error::io("creating hardlink", &link, e))?;
            lock(&self.stats).hardlinks += 1;
            self.progress.advance(1, 0);
        }
        let mut dirs = std::mem::take(&mut *lock(&self.dirs));
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.as_os_str().len()));
        for (path, node) in &dirs {
            self.set_owner(path, node);
            self.set_xattrs(path, node);
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode))
                .map_err(|e| Error::io("setting permissions of", path, e))?;
            set_times(path, node)?;
        }
        // One syncfs instead of an fsync per file: restored data is durable
        // when restore reports success.
        if let Some(p) = lock(&self.roots).first() {
            let f = File::open(p.parent().unwrap_or(Path::new("/")))
                .map_err(|e| Error::io("opening", p, e))?;
            use std::os::fd::AsRawFd;
            nix::unistd::syncfs(f.as_raw_fd()).map_err(|e| Error::io("syncing", p, e.into()))?;
        }
        let stats = self.stats.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok((
            stats,
            self.warnings
                .into_inner()
                .unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

/// Makes room for an entry restored at `dest`: nothing to do when nothing
/// is there, or (`keep_dir`) a folder is there and a folder is wanted;
/// else what is there is removed with `overwrite`, and refused without.
pub fn clear_entry(dest: &Path, overwrite: bool, keep_dir: bool) -> Result<()> {
    let Ok(md) = std::fs::symlink_metadata(dest) else {
        return Ok(());
    };
    if keep_dir && md.is_dir() {
        return Ok(());
    }
    if !overwrite {
        return Err(Error::Invalid(format!(
            "{} exists; restore into an empty target, or pass --force to overwrite",
            dest.display()
        )));
    }
    let r = if md.is_dir() {
        std::fs::remove_dir_all(dest)
    } else {
        std::fs::remove_file(dest)
    };
    r.map_err(|e| Error::io("removing", dest, e))
}

/// Creates `dest`, which must not exist, for writing (owner-only until
/// its mode is set at the end).
fn create_file(dest: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| Error::io("writing", dest, e))
}

/// The offset in the file of each blob at `locs`, the first at `*at`;
/// `*at` moves past the last.
pub(super) fn file_offsets(locs: &[crate::repo::BlobLocation], at: &mut u64) -> Vec<u64> {
    locs.iter()
        .map(|l| {
            let o = *at;
            *at += u64::from(l.raw_length);
            o
        })
        .collect()
}

fn set_times(dest: &Path, node: &Node) -> Result<()> {
    set_mtime(dest, node.mtime_ns)
}

/// Sets access and modification time of `dest` (not following symlinks)
/// to `mtime_ns` nanoseconds since the epoch.
pub fn set_mtime(dest: &Path, mtime_ns: i64) -> Result<()> {
    let ts = TimeSpec::new(
        mtime_ns.div_euclid(1_000_000_000),
        mtime_ns.rem_euclid(1_000_000_000),
    );
    nix::sys::stat::utimensat(None, dest, &ts, &ts, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| Error::io("setting times of", dest, e.into()))
}
