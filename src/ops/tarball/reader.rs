//! Reading archives safely: gzip (or plain tar), one top folder, member
//! paths that stay inside it. Every way a member could escape is refused
//! here, once, for import, restore and verify alike.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::pax::{self, LastPax, PaxSpy};
use crate::error::{Error, Result};
use crate::snapshot::Xattr;

/// Longest member path accepted, and deepest nesting: past these a member
/// cannot have come from a filesystem, and deep trees would exhaust the
/// stack when written back.
const MAX_PATH: usize = 4096;
const MAX_DEPTH: usize = 512;

/// The type of an archive member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberKind {
    /// Regular file (also contiguous and sparse members).
    File,
    /// Folder.
    Dir,
    /// Symlink with its target bytes.
    Symlink(Vec<u8>),
    /// Hardlink to an earlier member, by path below the top folder.
    Hardlink(Vec<u8>),
    /// Named pipe.
    Fifo,
    /// Character device.
    Chardev,
    /// Block device.
    Blockdev,
}

/// One member, its path relative to the top folder.
#[derive(Clone, Debug)]
pub struct Member {
    /// Path below `<backup_name>/`; empty for the top folder itself.
    pub rel: Vec<u8>,
    /// Type.
    pub kind: MemberKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time in nanoseconds (PAX precision when present).
    pub mtime_ns: i64,
    /// Content length (the real size for sparse members).
    pub size: u64,
    /// Device number.
    pub rdev: u64,
    /// `SCHILY.xattr.*` records, sorted by name.
    pub xattrs: Vec<Xattr>,
}

/// Opens `path` as a gzip-compressed (or plain) tar stream.
pub fn open_archive(path: &Path) -> Result<Box<dyn Read + Send>> {
    let f = File::open(path).map_err(|e| Error::io("opening archive", path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let head = std::io::BufRead::fill_buf(&mut r).map_err(|e| Error::io("reading", path, e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(r)))
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Ok(Box::new(r))
    } else {
        Err(Error::corrupt(
            format!("archive {}", path.display()),
            "it is neither gzip-compressed nor a tar file",
        ))
    }
}

/// Calls `f` with each member and a reader of its content, in archive
/// order, after checking that it stays inside the one top folder. Returns
/// the top folder's name.
pub fn for_each_member(
    input: Box<dyn Read + Send>,
    what: &str,
    mut f: impl FnMut(&Member, &mut dyn Read) -> Result<()>,
) -> Result<String> {
    let bad = |reason: String| Error::corrupt(format!("archive {what}"), reason);
    let damaged =
        |e: std::io::Error| bad(format!("cannot be read ({e}); it is truncated or damaged"));
    let last_pax: LastPax = Default::default();
    let mut ar = tar::Archive::new(PaxSpy::new(input, last_pax.clone()));
    let mut top: Option<Vec<u8>> = None;
    // Symlink members so far: nothing may be placed below one.
    let mut symlinks: HashSet<Vec<u8>> = HashSet::new();
    for entry in ar.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let ty = entry.header().entry_type();
        let pax = last_pax.lock().unwrap_or_else(|p| p.into_inner()).take();
        if ty.is_pax_global_extensions() {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        if is_dot(&raw) {
            continue; // `./`, as `tar -C dir .` writes first
        }
        let (first, rel) = split_top(&raw).map_err(&bad)?;
        let mut prefix = Vec::new();
        for c in rel.split(|&b| b == b'/') {
            if !prefix.is_empty() && symlinks.contains(&prefix) {
                return Err(bad(format!(
                    "{} lies below the symlink {}: extracting it would write through the link; refusing the archive",
                    String::from_utf8_lossy(rel),
                    String::from_utf8_lossy(&prefix)
                )));
            }
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(c);
        }
        match &top {
            None => top = Some(first.to_vec()),
            Some(t) if t.as_slice() != first => {
                return Err(bad(format!(
                    "it has more than one top folder ({} and {}); an opc backup holds exactly one, <backup_name>/",
                    String::from_utf8_lossy(t),
                    String::from_utf8_lossy(first)
                )))
            }
            Some(_) => {}
        }
        let h = entry.header();
        let num = |r: std::io::Result<u64>| r.map_err(damaged);
        let mut mtime_ns = num(h.mtime())? as i64 * 1_000_000_000;
        let mode = h.mode().map_err(damaged)? & 0o7777;
        let uid = u32::try_from(num(h.uid())?).unwrap_or(u32::MAX);
        let gid = u32::try_from(num(h.gid())?).unwrap_or(u32::MAX);
        let mut size = num(h.size())?;
        if ty.is_gnu_sparse() {
            size = h
                .as_gnu()
                .ok_or_else(|| bad("a sparse member lacks its GNU header".into()))?
                .real_size()
                .map_err(damaged)?;
        }
        let rdev = match (h.device_major(), h.device_minor()) {
            (Ok(Some(ma)), Ok(Some(mi))) if ty.is_character_special() || ty.is_block_special() => {
                nix::sys::stat::makedev(ma.into(), mi.into())
            }
            _ => 0,
        };
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut xattrs = Vec::new();
        // Only when the crate saw a PAX header for this member is the
        // spied block this member's (and not, say, a global header's).
        let has_pax = entry.pax_extensions().map_err(damaged)?.is_some();
        if let (true, Some(pax)) = (has_pax, pax) {
            for (key, value) in pax::records(&pax).map_err(&bad)? {
                if key == b"mtime" {
                    if let Some(ns) = std::str::from_utf8(&value).ok().and_then(parse_pax_time) {
                        mtime_ns = ns;
                    }
                } else if key.starts_with(b"GNU.sparse.") {
                    return Err(bad(format!(
                        "{} is a PAX-format sparse member (tar --sparse --format=posix), which opc-store does not read; re-create the archive with --format=gnu",
                        String::from_utf8_lossy(&raw)
                    )));
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push(Xattr {
                        name: name.to_vec(),
                        value,
                    });
                }
            }
        }
        xattrs.sort_by(|a, b| a.name.cmp(&b.name));
        let kind = if ty.is_file() || ty.is_contiguous() || ty.is_gnu_sparse() {
            MemberKind::File
        } else if ty.is_dir() {
            MemberKind::Dir
        } else if ty.is_symlink() {
            MemberKind::Symlink(link.ok_or_else(|| bad("a symlink member has no target".into()))?)
        } else if ty.is_hard_link() {
            let l = link.ok_or_else(|| bad("a hardlink member has no target".into()))?;
            let (lt, lrel) = split_top(&l).map_err(&bad)?;
            if Some(lt) != top.as_deref() || lrel.is_empty() {
                return Err(bad(format!(
                    "hardlink {} points outside the backup folder",
                    String::from_utf8_lossy(&raw)
                )));
            }
            MemberKind::Hardlink(lrel.to_vec())
        } else if ty.is_fifo() {
            MemberKind::Fifo
        } else if ty.is_character_special() {
            MemberKind::Chardev
        } else if ty.is_block_special() {
            MemberKind::Blockdev
        } else {
            return Err(bad(format!(
                "member {} has a type opc-store cannot restore ({:?})",
                String::from_utf8_lossy(&raw),
                ty
            )));
        };
        if rel.is_empty() && kind != MemberKind::Dir {
            return Err(bad("the top of the archive must be a folder".into()));
        }
        if kind != MemberKind::File {
            size = 0;
        }
        if matches!(kind, MemberKind::Symlink(_)) {
            symlinks.insert(rel.to_vec());
        } else {
            // A later member of the same name replaces the link.
            symlinks.remove(rel);
        }
        let m = Member {
            rel: rel.to_vec(),
            kind,
            mode,
            uid,
            gid,
            mtime_ns,
            size,
            rdev,
            xattrs,
        };
        f(&m, &mut entry)?;
    }
    // Read to the end so gzip checks its CRC and length trailer: damage in
    // data no manifest digest covers would otherwise go unnoticed.
    let mut rest = ar.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(damaged)?;
    top.map(|t| String::from_utf8_lossy(&t).into_owned())
        .ok_or_else(|| bad("it holds no members".into()))
}

/// Splits a member path into its top folder and the rest, after removing
/// `./` and trailing `/`; refuses absolute paths and `..`.
fn split_top(raw: &[u8]) -> std::result::Result<(&[u8], &[u8]), String> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    if raw.first() == Some(&b'/') {
        return Err(format!(
            "member {} has an absolute path; refusing the archive",
            shown()
        ));
    }
    if raw.len() > MAX_PATH {
        return Err(format!(
            "a member path is {} bytes long, more than any filesystem allows",
            raw.len()
        ));
    }
    let mut p = raw;
    while let Some(rest) = p.strip_prefix(b"./") {
        p = rest;
    }
    while let Some(rest) = p.strip_suffix(b"/") {
        p = rest;
    }
    let parts: Vec<&[u8]> = p.split(|&b| b == b'/').collect();
    if parts.len() > MAX_DEPTH {
        return Err("a member is nested deeper than any real folder tree".into());
    }
    for c in &parts {
        if *c == b".." {
            return Err(format!(
                "member {} contains `..` and would escape the target; refusing the archive",
                shown()
            ));
        }
        if c.is_empty() || *c == b"." {
            return Err(format!(
                "member {} has an empty or `.` path component",
                shown()
            ));
        }
    }
    let first = parts[0];
    let rest = if p.len() > first.len() {
        &p[first.len() + 1..]
    } else {
        &[][..]
    };
    Ok((first, rest))
}

fn is_dot(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'/').all(|c| c.is_empty() || c == b".")
}

/// `123`, `123.456`, `-1.5` seconds as nanoseconds.
fn parse_pax_time(v: &str) -> Option<i64> {
    let (neg, v) = match v.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let s: i64 = s.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let ns: i64 = format!("{digits:0<9}").parse().ok()?;
    let total = s.checked_mul(1_000_000_000)?.checked_add(ns)?;
    Some(if neg { -total } else { total })
}

/// Whether symlink `target`, found at `rel` (below the restore target),
/// resolves lexically inside the restore target.
pub fn link_stays_inside(rel: &[u8], target: &[u8]) -> bool {
    if target.first() == Some(&b'/') || target.is_empty() {
        return false;
    }
    // Depth of the folder holding the link, below the target.
    let mut depth = rel.split(|&b| b == b'/').count() as i64 - 1;
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_and_checked() {
        assert_eq!(split_top(b"./top/a/b").unwrap(), (&b"top"[..], &b"a/b"[..]));
        assert_eq!(split_top(b"top/").unwrap(), (&b"top"[..], &b""[..]));
        assert!(split_top(b"/etc/passwd").is_err());
        assert!(split_top(b"top/../../x").is_err());
        assert!(split_top(b"top//x").is_err());
    }

    #[test]
    fn pax_times_parse() {
        assert_eq!(parse_pax_time("12"), Some(12_000_000_000));
        assert_eq!(parse_pax_time("1.5"), Some(1_500_000_000));
        assert_eq!(parse_pax_time("-1.25"), Some(-1_250_000_000));
        assert_eq!(parse_pax_time("1.0000000019"), Some(1_000_000_001));
        assert_eq!(parse_pax_time("x"), None);
    }

    #[test]
    fn link_targets_are_checked() {
        assert!(link_stays_inside(b"c/a/l", b"../b"));
        assert!(link_stays_inside(b"c/l", b"x/y"));
        assert!(!link_stays_inside(b"c/l", b"../../etc"));
        assert!(!link_stays_inside(b"c/l", b"/etc/passwd"));
        assert!(!link_stays_inside(b"l", b".."));
    }
}
