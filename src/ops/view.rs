//! How a part looks to users: with one source path, the part *is* that
//! path (`<part>/...`); with several, a folder holding one entry per path
//! (`<part>/<entry>/...`). Restore, ls and diff share this view.

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;
use crate::snapshot::{Node, NodeKind, Part, Snapshot, Tree};

/// The node that stands for `part` of `snap`, named after the part.
pub fn part_view(repo: &Repository, snap: &Snapshot, part: &Part) -> Result<Node> {
    let root = Tree::decode(&repo.read_blob(&part.tree)?)?;
    if part.paths.len() == 1 {
        let mut n = root
            .get(part.paths[0].entry.as_bytes())
            .cloned()
            .ok_or_else(|| {
                Error::corrupt(format!("part {}", part.name), "root tree lacks its entry")
            })?;
        n.name = part.name.as_bytes().to_vec();
        return Ok(n);
    }
    let t = snap.datetime();
    let ns = t.timestamp() * 1_000_000_000 + t.timestamp_subsec_nanos() as i64;
    Ok(synthetic_dir(part.name.as_bytes(), part.tree, ns))
}

// A folder that did not exist on the source: it gets the snapshot's time
// and the caller's ownership.
fn synthetic_dir(name: &[u8], tree: Id, mtime_ns: i64) -> Node {
    Node {
        name: name.to_vec(),
        kind: NodeKind::Dir,
        mode: 0o755,
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        mtime_ns,
        ctime_ns: 0,
        inode: 0,
        dev: 0,
        nlink: 1,
        size: 0,
        content: vec![],
        lists: vec![],
        subtree: Some(tree),
        target: None,
        rdev: 0,
        xattrs: vec![],
    }
}
