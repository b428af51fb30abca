//! Trees: one directory's entries, CBOR-encoded, stored as a tree blob.
//! Format: `docs/FORMAT.md` §8.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;

/// The type of a filesystem entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Character device.
    Chardev,
    /// Block device.
    Blockdev,
    /// Unix socket (recorded, not recreated).
    Socket,
}

/// An extended attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    /// Attribute name, e.g. `user.comment`.
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// Raw value.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// File name bytes (any bytes but `/` and NUL).
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// Entry type.
    pub kind: NodeKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777` mask).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Status-change time (for change detection only, never restored).
    pub ctime_ns: i64,
    /// Inode number (change detection, hardlink groups).
    pub inode: u64,
    /// Device of the inode (hardlink groups).
    pub dev: u64,
    /// Link count; > 1 marks a hardlink group member.
    pub nlink: u64,
    /// Size in bytes (files), target length (symlinks), 0 otherwise.
    pub size: u64,
    /// File content as ordered data blob ids (files of at most
    /// [`INLINE_IDS`](super::INLINE_IDS) blobs, or in a repository of a
    /// format before 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Id>,
    /// Larger files (format 3): ids of list blobs, each holding the next
    /// [`LIST_IDS`](super::LIST_IDS) data blob ids (the last one fewer);
    /// `content` is then empty.
    /// A folder listing stays small however large its files are, so memory
    /// does not grow with them.
    #[serde(
        default,
        rename = "content_lists",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub lists: Vec<Id>,
    /// Directory listing (tree blob id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    /// Symlink target bytes.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub target: Option<Vec<u8>>,
    /// Device number for device nodes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rdev: u64,
    /// Extended attributes, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A directory listing, sorted by name bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Entries, sorted by name, names unique.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Encodes deterministically (entries sorted by name).
    pub fn encode(&mut self) -> Vec<u8> {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        // Sized up front: a folder holding a large database lists its
        // pages' ids (34 bytes each in CBOR), and a buffer grown by
        // doubling would hold up to twice that, copied at every step.
        let estimate: usize = self
            .nodes
            .iter()
            .map(|n| {
                let x: usize = n
                    .xattrs
                    .iter()
                    .map(|x| x.name.len() + x.value.len() + 8)
                    .sum();
                200 + n.name.len()
                    + (n.content.len() + n.lists.len()) * 34
                    + n.target.as_ref().map_or(0, Vec::len)
                    + x
            })
            .sum();
        let mut out = Vec::with_capacity(estimate);
        ciborium::into_writer(&*self, &mut out).expect("writing CBOR to memory cannot fail");
        out
    }

    /// Decodes and validates a tree blob.
    pub fn decode(b: &[u8]) -> Result<Tree> {
        let t: Tree =
            ciborium::from_reader(b).map_err(|e| Error::corrupt("tree", e.to_string()))?;
        for w in t.nodes.windows(2) {
            if w[0].name >= w[1].name {
                return Err(Error::corrupt("tree", "entries not sorted or not unique"));
            }
        }
        for n in &t.nodes {
            if n.name.is_empty()
                || n.name.contains(&b'/')
                || n.name.contains(&0)
                || n.name == b"."
                || n.name == b".."
            {
                return Err(Error::corrupt("tree", "invalid entry name"));
            }
            if !n.content.is_empty() && !n.lists.is_empty() {
                return Err(Error::corrupt(
                    "tree",
                    "a file has both inline content and content lists",
                ));
            }
        }
        Ok(t)
    }

    /// The entry named `name`.
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(name: &[u8]) -> Node {
        Node {
            name: name.to_vec(),
            kind: NodeKind::File,
            mode: 0o644,
            uid: 1,
            gid: 2,
            mtime_ns: -5,
            ctime_ns: 7,
            inode: 9,
            dev: 3,
            nlink: 1,
            size: 10,
            content: vec![Id([1; 32])],
            lists: vec![],
            subtree: None,
            target: Some(b"\xff\n".to_vec()),
            rdev: 0,
            xattrs: vec![Xattr {
                name: b"user.a".to_vec(),
                value: vec![0, 1],
            }],
        }
    }

    #[test]
    fn round_trip_sorted() {
        let mut t = Tree {
            nodes: vec![node(b"b"), node(b"a\xff\n")],
        };
        let enc = t.encode();
        let d = Tree::decode(&enc).unwrap();
        assert_eq!(d, t);
        assert_eq!(d.nodes[0].name, b"a\xff\n");
        assert!(d.get(b"b").is_some());
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Tree::decode(&b);
        }
    }
}
