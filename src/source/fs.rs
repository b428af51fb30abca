//! Reading entries and metadata from the local filesystem. Names stay raw
//! bytes end to end, so non-UTF-8 and newline names survive.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::{Error, Result};
use crate::snapshot::{Node, NodeKind, Xattr};

/// Names in `dir` with whether each is a folder, sorted by name bytes.
pub fn list_dir(dir: &Path) -> Result<Vec<(Vec<u8>, bool)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    let mut names = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::io("listing", dir, e))?;
        let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
        names.push((ent.file_name().as_bytes().to_vec(), is_dir));
    }
    names.sort();
    Ok(names)
}

/// A node for `path` (not following symlinks), without content or subtree;
/// `prev` is the same entry in the previous snapshot, when there is one.
pub fn stat_node(path: &Path, name: &[u8], prev: Option<&Node>) -> Result<Node> {
    let md =
        std::fs::symlink_metadata(path).map_err(|e| Error::io("reading metadata of", path, e))?;
    let mut node = node_from_metadata(name, &md);
    if node.kind == NodeKind::Symlink {
        let t = std::fs::read_link(path).map_err(|e| Error::io("reading link", path, e))?;
        node.target = Some(t.as_os_str().as_bytes().to_vec());
    }
    // Setting or removing an attribute changes the ctime: with the same
    // inode and ctime the previous snapshot's attributes are still true,
    // and a listxattr per file is saved on an unchanged tree.
    node.xattrs = match prev {
        Some(p) if p.kind == node.kind && p.inode == node.inode && p.ctime_ns == node.ctime_ns => {
            p.xattrs.clone()
        }
        _ => read_xattrs(path),
    };
    Ok(node)
}

/// Converts metadata to a node.
pub fn node_from_metadata(name: &[u8], md: &Metadata) -> Node {
    let ft = md.file_type();
    let kind = if ft.is_file() {
        NodeKind::File
    } else if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_char_device() {
        NodeKind::Chardev
    } else if ft.is_block_device() {
        NodeKind::Blockdev
    } else {
        NodeKind::Socket
    };
    Node {
        name: name.to_vec(),
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
        ctime_ns: md.ctime() * 1_000_000_000 + md.ctime_nsec(),
        inode: md.ino(),
        dev: md.dev(),
        nlink: md.nlink(),
        size: if matches!(kind, NodeKind::File | NodeKind::Symlink) {
            md.size()
        } else {
            0
        },
        content: Vec::new(),
        lists: Vec::new(),
        subtree: None,
        target: None,
        rdev: if matches!(kind, NodeKind::Chardev | NodeKind::Blockdev) {
            md.rdev()
        } else {
            0
        },
        xattrs: Vec::new(),
    }
}

/// The `user.*` and other readable extended attributes of `path`, not
/// following symlinks. Filesystems without xattr support give none.
pub fn read_xattrs(path: &Path) -> Vec<Xattr> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out: Vec<Xattr> = names
        .filter_map(|n| {
            let v = xattr::get(path, &n).ok().flatten()?;
            Some(Xattr {
                name: OsStr::as_bytes(&n).to_vec(),
                value: v,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
