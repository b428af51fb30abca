//! `restore FILE.tar.gz`: writes an archive's components under a target
//! folder, like the legacy `restore.sh backup_file.tar.gz <component>`.
//!
//! The archive is verified first (structure, hostile members, manifest
//! digests), so a bad archive writes nothing. While writing, every folder
//! on a member's way is checked to be a real folder, never a symlink, so
//! nothing is written outside the target whatever the archive holds.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::stat::{Mode, SFlag};
use serde::Serialize;

use super::reader::{for_each_member, link_stays_inside, open_archive, Member, MemberKind};
use super::verify::verify_archive;
use crate::error::{Error, Result};
use crate::pipeline::{clear_entry, set_mtime, write_sparse, Progress};

/// What to restore from an archive.
#[derive(Clone, Debug)]
pub struct ExtractRequest {
    /// Components to restore; empty means all.
    pub parts: Vec<String>,
    /// Folder that receives `<component>/...`.
    pub target: PathBuf,
    /// Replace existing files.
    pub force: bool,
    /// Check the archive (and its manifest digests) before writing.
    pub verify: bool,
}

/// Counters of a restore from an archive.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExtractReport {
    /// Components restored.
    pub components: Vec<String>,
    /// Files written.
    pub files: u64,
    /// Folders created.
    pub dirs: u64,
    /// Symlinks, FIFOs and devices.
    pub others: u64,
    /// Hardlinks.
    pub hardlinks: u64,
    /// Bytes of content.
    pub bytes: u64,
    /// Files checked against the manifest before writing.
    pub verified_files: u64,
    /// Non-fatal problems.
    pub warnings: Vec<String>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Restores components of the archive at `path` under `req.target`.
pub fn extract(
    path: &Path,
    req: &ExtractRequest,
    progress: &dyn Progress,
) -> Result<ExtractReport> {
    let started = Instant::now();
    let mut report = ExtractReport::default();
    let what = path.display().to_string();
    if req.verify {
        let v = verify_archive(path, progress)?;
        if let Some(p) = v.problems.first() {
            return Err(Error::corrupt(
                format!("archive {what}"),
                format!(
                    "{p}{}; nothing was restored",
                    if v.problems.len() > 1 {
                        format!(
                            " (and {} more problems: run `opc-store verify`)",
                            v.problems.len() - 1
                        )
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        let wanted = |l: &&String| {
            req.parts.is_empty() || req.parts.iter().any(|p| l.starts_with(&format!("{p}/")))
        };
        if let Some(l) = v.outward_symlinks.iter().find(wanted) {
            return Err(Error::corrupt(
                format!("archive {what}"),
                format!(
                    "symlink {l} points outside the target; refusing the archive (nothing was restored). GNU tar would create it; extract such an archive with tar if you trust it"
                ),
            ));
        }
        for c in &req.parts {
            if !v.components.contains(c) {
                return Err(Error::NotFound(format!(
                    "{what} has no component {c}; it has: {}",
                    v.components.join(", ")
                )));
            }
        }
        report.verified_files = v.verified_files;
    }
    std::fs::create_dir_all(&req.target)
        .map_err(|e| Error::io("creating folder", &req.target, e))?;
    let mut x = Extractor {
        req,
        what: what.clone(),
        is_root: nix::unistd::geteuid().is_root(),
        dirs: Vec::new(),
        seen_parts: Vec::new(),
        written: HashMap::new(),
        report,
        progress,
    };
    for_each_member(open_archive(path)?, &what, |m, r| x.member(m, r))?;
    x.finish()?;
    let mut report = x.report;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

struct Extractor<'a> {
    req: &'a ExtractRequest,
    what: String,
    is_root: bool,
    // Folders to give their metadata at the end, deepest first.
    dirs: Vec<(PathBuf, Member)>,
    seen_parts: Vec<String>,
    // Files written, by member path, for hardlinks.
    written: HashMap<Vec<u8>, PathBuf>,
    report: ExtractReport,
    progress: &'a dyn Progress,
}

impl Extractor<'_> {
    fn bad(&self, reason: String) -> Error {
        Error::corrupt(format!("archive {}", self.what), reason)
    }

    fn member(&mut self, m: &Member, r: &mut dyn Read) -> Result<()> {
        let part = m.rel.split(|&b| b == b'/').next().unwrap_or_default();
        let part = String::from_utf8_lossy(part).into_owned();
        // A component captured from one file is a file at the top.
        let is_component = m.rel != b"manifest.json";
        if m.rel.is_empty() || !is_component {
            return Ok(()); // the top folder, manifest.json, loose files
        }
        if !self.req.parts.is_empty() && !self.req.parts.contains(&part) {
            return Ok(());
        }
        if !self.seen_parts.contains(&part) {
            let dest = self.req.target.join(&part);
            if !self.req.force && non_empty(&dest) {
                return Err(Error::Invalid(format!(
                    "{} exists and is not empty; restore into an empty target, or pass --force to overwrite",
                    dest.display()
                )));
            }
            self.seen_parts.push(part.clone());
            self.report.components.push(part);
        }
        let dest = self.prepare(&m.rel)?;
        match &m.kind {
            MemberKind::Dir => {
                if !dest.is_dir() {
                    self.clear(&dest)?;
                    std::fs::DirBuilder::new()
                        .mode(0o700)
                        .create(&dest)
                        .map_err(|e| Error::io("creating folder", &dest, e))?;
                }
                self.report.dirs += 1;
                self.dirs.push((dest, m.clone()));
            }
            MemberKind::File => {
                self.clear(&dest)?;
                let io = |e| Error::io("writing", &dest, e);
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                    .open(&dest)
                    .map_err(io)?;
                let mut off = 0u64;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = r.read(&mut buf).map_err(|e| {
                        self.bad(format!("cannot be read ({e}); it is truncated or damaged"))
                    })?;
                    if n == 0 {
                        break;
                    }
                    write_sparse(&f, &buf[..n], off).map_err(io)?;
                    off += n as u64;
                    self.progress.advance(0, n as u64);
                }
                f.set_len(off).map_err(io)?;
                self.meta(&dest, m, true)?;
                self.written.insert(m.rel.clone(), dest);
                self.report.files += 1;
                self.report.bytes += off;
                self.progress.advance(1, 0);
            }
            MemberKind::Hardlink(target) => {
                let Some(first) = self.written.get(target).cloned() else {
                    self.report.warnings.push(format!(
                        "left out hardlink {}: its file {} was not restored",
                        String::from_utf8_lossy(&m.rel),
                        String::from_utf8_lossy(target)
                    ));
                    return Ok(());
                };
                self.clear(&dest)?;
                std::fs::hard_link(&first, &dest)
                    .map_err(|e| Error::io("creating hardlink", &dest, e))?;
                self.report.hardlinks += 1;
            }
            MemberKind::Symlink(t) => {
                if !link_stays_inside(&m.rel, t) {
                    return Err(self.bad(format!(
                        "symlink {} points outside the target ({}); refusing it",
                        String::from_utf8_lossy(&m.rel),
                        String::from_utf8_lossy(t)
                    )));
                }
                self.clear(&dest)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(t), &dest)
                    .map_err(|e| Error::io("creating symlink", &dest, e))?;
                self.owner(&dest, m);
                set_mtime(&dest, m.mtime_ns)?;
                self.report.others += 1;
            }
            MemberKind::Fifo | MemberKind::Chardev | MemberKind::Blockdev => {
                self.clear(&dest)?;
                let mode = Mode::from_bits_truncate(m.mode);
                let res = match m.kind {
                    MemberKind::Fifo => nix::unistd::mkfifo(&dest, mode),
                    MemberKind::Chardev => {
                        nix::sys::stat::mknod(&dest, SFlag::S_IFCHR, mode, m.rdev)
                    }
                    _ => nix::sys::stat::mknod(&dest, SFlag::S_IFBLK, mode, m.rdev),
                };
                match res {
                    Ok(()) => {
                        self.meta(&dest, m, false)?;
                        self.report.others += 1;
                    }
                    Err(e) => self.report.warnings.push(format!(
                        "left out {}: {e} (device nodes need root)",
                        dest.display()
                    )),
                }
            }
        }
        Ok(())
    }

    /// The destination of `rel`, with every folder on its way created and
    /// checked to be a real folder inside the target.
    fn prepare(&mut self, rel: &[u8]) -> Result<PathBuf> {
        let mut p = self.req.target.clone();
        let comps: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
        let (last, parents) = comps.split_last().expect("non-empty");
        for c in parents {
            p.push(OsStr::from_bytes(c));
            match std::fs::symlink_metadata(&p) {
                Ok(md) if md.is_dir() => {}
                Ok(_) => {
                    return Err(self.bad(format!(
                        "{} lies below {}, which is not a folder; refusing to write through it",
                        String::from_utf8_lossy(rel),
                        p.display()
                    )))
                }
                Err(_) => std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&p)
                    .map_err(|e| Error::io("creating folder", &p, e))?,
            }
        }
        p.push(OsStr::from_bytes(last));
        Ok(p)
    }

    fn clear(&self, dest: &Path) -> Result<()> {
        clear_entry(dest, self.req.force, false)
    }

    fn meta(&mut self, dest: &Path, m: &Member, xattrs: bool) -> Result<()> {
        // chown clears security.capability: owner first, then xattrs.
        self.owner(dest, m);
        if xattrs {
            for x in &m.xattrs {
                if let Err(e) = xattr::set(dest, OsStr::from_bytes(&x.name), &x.value) {
                    self.report.warnings.push(format!(
                        "could not set xattr {} on {}: {e}",
                        String::from_utf8_lossy(&x.name),
                        dest.display()
                    ));
                }
            }
        }
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(m.mode))
            .map_err(|e| Error::io("setting permissions of", dest, e))?;
        set_mtime(dest, m.mtime_ns)
    }

    fn owner(&mut self, dest: &Path, m: &Member) {
        if !self.is_root {
            return;
        }
        let r = nix::unistd::fchownat(
            None,
            dest,
            Some(nix::unistd::Uid::from_raw(m.uid)),
            Some(nix::unistd::Gid::from_raw(m.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        if let Err(e) = r {
            self.report
                .warnings
                .push(format!("could not set owner of {}: {e}", dest.display()));
        }
    }

    fn finish(&mut self) -> Result<()> {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.as_os_str().len()));
        for (path, m) in &dirs {
            self.meta(path, m, true)?;
        }
        for c in &self.req.parts {
            if !self.seen_parts.contains(c) {
                return Err(Error::NotFound(format!(
                    "{} has no component {c}",
                    self.what
                )));
            }
        }
        // Durable before success is reported.
        let f =
            File::open(&self.req.target).map_err(|e| Error::io("opening", &self.req.target, e))?;
        use std::os::fd::AsRawFd;
        nix::unistd::syncfs(f.as_raw_fd())
            .map_err(|e| Error::io("syncing", &self.req.target, e.into()))
    }
}

fn non_empty(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Err(_) => false,
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true),
        Ok(_) => true,
    }
}
