//! Entry-by-entry description of a tree, and the comparison of two.
//! Paths are raw bytes relative to the root (`""` is the root itself), so
//! non-UTF-8 names compare exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// What is compared about one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    /// Permission bits with set-id and sticky; 0 for symlinks (not settable).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Files and symlinks only: folder sizes depend on the filesystem.
    pub size: Option<u64>,
    /// blake3 of a file's content.
    pub hash: Option<String>,
    pub mtime_ns: i64,
    pub target: Option<Vec<u8>>,
    pub rdev: u64,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A whole tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub entries: BTreeMap<Vec<u8>, Entry>,
    /// Hardlink groups: sets of paths sharing an inode (two or more).
    pub links: BTreeSet<Vec<Vec<u8>>>,
    /// st_blocks per regular file, to check holes.
    pub blocks: BTreeMap<Vec<u8>, u64>,
}

impl Manifest {
    pub fn get(&self, rel: &str) -> &Entry {
        self.entries
            .get(rel.as_bytes())
            .unwrap_or_else(|| panic!("no entry {rel:?}"))
    }
}

/// Describes the tree at `root` (not following symlinks).
pub fn manifest(root: &Path) -> Manifest {
    let mut m = Manifest {
        entries: BTreeMap::new(),
        links: BTreeSet::new(),
        blocks: BTreeMap::new(),
    };
    let mut inodes: BTreeMap<(u64, u64), Vec<Vec<u8>>> = BTreeMap::new();
    visit(root, Vec::new(), &mut m, &mut inodes);
    m.links = inodes.into_values().filter(|g| g.len() > 1).collect();
    m
}

fn visit(
    path: &Path,
    rel: Vec<u8>,
    m: &mut Manifest,
    inodes: &mut BTreeMap<(u64, u64), Vec<Vec<u8>>>,
) {
    let md = path
        .symlink_metadata()
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    let ft = md.file_type();
    let kind = if ft.is_file() {
        "file"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "chardev"
    } else if ft.is_block_device() {
        "blockdev"
    } else {
        "socket"
    };
    let xattrs = xattr::list(path)
        .map(|names| {
            names
                .filter_map(|n| Some((n.as_bytes().to_vec(), xattr::get(path, &n).ok()??)))
                .collect()
        })
        .unwrap_or_default();
    let mut e = Entry {
        kind,
        mode: if ft.is_symlink() {
            0
        } else {
            md.mode() & 0o7777
        },
        uid: md.uid(),
        gid: md.gid(),
        size: (ft.is_file() || ft.is_symlink()).then_some(md.size()),
        hash: None,
        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
        target: None,
        rdev: if ft.is_char_device() || ft.is_block_device() {
            md.rdev()
        } else {
            0
        },
        xattrs,
    };
    if ft.is_file() {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        e.hash = Some(blake3::hash(&data).to_hex().to_string());
        inodes
            .entry((md.dev(), md.ino()))
            .or_default()
            .push(rel.clone());
        m.blocks.insert(rel.clone(), md.blocks());
    } else if ft.is_symlink() {
        e.target = Some(
            std::fs::read_link(path)
                .expect("readlink")
                .as_os_str()
                .as_bytes()
                .to_vec(),
        );
    }
    m.entries.insert(rel.clone(), e);
    if ft.is_dir() {
        let mut names: Vec<Vec<u8>> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", path.display()))
            .map(|d| d.expect("entry").file_name().as_bytes().to_vec())
            .collect();
        names.sort();
        for n in names {
            let child_rel = if rel.is_empty() {
                n.clone()
            } else {
                [rel.as_slice(), b"/", &n].concat()
            };
            visit(&path.join(OsStr::from_bytes(&n)), child_rel, m, inodes);
        }
    }
}

/// A path for messages, with non-UTF-8 bytes and control characters escaped.
pub fn show(rel: &[u8]) -> String {
    if rel.is_empty() {
        return ".".into();
    }
    rel.escape_ascii().to_string()
}

/// Lists every difference between two manifests (empty when equal), so a
/// failure shows all of them at once instead of the first.
pub fn differences(expected: &Manifest, actual: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, e) in &expected.entries {
        match actual.entries.get(rel) {
            None => out.push(format!("missing: {}", show(rel))),
            Some(a) if a != e => {
                let mut s = format!("differs: {}:", show(rel));
                let mut field = |name: &str, x: String, y: String| {
                    if x != y {
                        let _ = write!(s, " {name} {x} != {y};");
                    }
                };
                field("kind", e.kind.into(), a.kind.into());
                field("mode", format!("{:o}", e.mode), format!("{:o}", a.mode));
                field("uid", e.uid.to_string(), a.uid.to_string());
                field("gid", e.gid.to_string(), a.gid.to_string());
                field("size", format!("{:?}", e.size), format!("{:?}", a.size));
                field("hash", format!("{:?}", e.hash), format!("{:?}", a.hash));
                field("mtime_ns", e.mtime_ns.to_string(), a.mtime_ns.to_string());
                field(
                    "target",
                    format!("{:?}", e.target),
                    format!("{:?}", a.target),
                );
                field("rdev", e.rdev.to_string(), a.rdev.to_string());
                field(
                    "xattrs",
                    format!("{:?}", e.xattrs),
                    format!("{:?}", a.xattrs),
                );
                out.push(s);
            }
            Some(_) => {}
        }
    }
    for rel in actual
        .entries
        .keys()
        .filter(|r| !expected.entries.contains_key(*r))
    {
        out.push(format!("unexpected: {}", show(rel)));
    }
    if expected.links != actual.links {
        let fmt = |l: &BTreeSet<Vec<Vec<u8>>>| {
            l.iter()
                .map(|g| g.iter().map(|p| show(p)).collect::<Vec<_>>().join(" = "))
                .collect::<Vec<_>>()
        };
        out.push(format!(
            "hardlink groups: expected {:?}, got {:?}",
            fmt(&expected.links),
            fmt(&actual.links)
        ));
    }
    out
}

/// Asserts that `actual` holds the same entries as `expected`, with the
/// same metadata and hardlink groups.
pub fn assert_same(expected: &Manifest, actual: &Manifest) {
    let d = differences(expected, actual);
    assert!(
        d.is_empty(),
        "{} differences:\n  {}",
        d.len(),
        d.join("\n  ")
    );
}

/// Asserts that the trees at `expected` and `actual` are the same.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    assert_same(&manifest(expected), &manifest(actual));
}
