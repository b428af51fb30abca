//! Differences between two snapshots, entry by entry. Subtrees with equal
//! ids are skipped without being read.

use serde::Serialize;

use crate::error::Result;
use crate::repo::Repository;
use crate::snapshot::{self as snap, for_each_segment, Node, NodeKind, Tree};

/// What changed about an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ChangeKind {
    /// Only in the second snapshot (`+`).
    Added,
    /// Only in the first (`-`).
    Removed,
    /// Content differs (`M`).
    Modified,
    /// Only metadata (mode, owner, times, xattrs, link target) differs (`U`).
    Metadata,
    /// Entry type differs (`T`).
    TypeChanged,
}

impl ChangeKind {
    /// The one-letter marker shown by `diff`.
    pub fn marker(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Modified => 'M',
            ChangeKind::Metadata => 'U',
            ChangeKind::TypeChanged => 'T',
        }
    }
}

/// One difference.
#[derive(Clone, Debug)]
pub struct Change {
    /// What changed.
    pub kind: ChangeKind,
    /// `<part>/...` path.
    pub path: Vec<u8>,
}

/// Compares snapshots `a` and `b` (ids or `latest`).
pub fn diff(repo: &Repository, a: &str, b: &str) -> Result<Vec<Change>> {
    let all = snap::list(repo)?;
    let (_, sa) = snap::resolve(all.clone(), a, None)?;
    let (_, sb) = snap::resolve(all, b, None)?;
    let mut out = Vec::new();
    let mut names: Vec<&str> = sa
        .parts
        .iter()
        .chain(&sb.parts)
        .map(|p| p.name.as_str())
        .collect();
    names.sort();
    names.dedup();
    for n in names {
        let na = sa
            .part(n)
            .map(|p| super::part_view(repo, &sa, p))
            .transpose()?;
        let nb = sb
            .part(n)
            .map(|p| super::part_view(repo, &sb, p))
            .transpose()?;
        compare(
            repo,
            na.as_ref(),
            nb.as_ref(),
            n.as_bytes().to_vec(),
            &mut out,
        )?;
    }
    Ok(out)
}

fn children(repo: &Repository, n: Option<&Node>) -> Result<Tree> {
    match n {
        Some(Node {
            kind: NodeKind::Dir,
            subtree: Some(t),
            ..
        }) => Tree::decode(&repo.read_blob(t)?),
        _ => Ok(Tree::default()),
    }
}

/// Whether two file nodes hold the same blobs. Equal content stored the
/// same way has equal fields; only a file stored inline in one snapshot
/// and in lists in the other (copied from an older repository) needs its
/// ids read, and then only their digests are kept.
fn same_content(repo: &Repository, x: &Node, y: &Node) -> Result<bool> {
    if x.content == y.content && x.lists == y.lists {
        return Ok(true);
    }
    if x.lists.is_empty() == y.lists.is_empty() {
        return Ok(false);
    }
    let digest = |n: &Node| -> Result<blake3::Hash> {
        let mut h = blake3::Hasher::new();
        for_each_segment(repo, n, |ids| {
            for id in ids {
                h.update(&id.0);
            }
            Ok(())
        })?;
        Ok(h.finalize())
    };
    Ok(digest(x)? == digest(y)?)
}

fn compare(
    repo: &Repository,
    a: Option<&Node>,
    b: Option<&Node>,
    path: Vec<u8>,
    out: &mut Vec<Change>,
) -> Result<()> {
    let kind = match (a, b) {
        (None, None) => return Ok(()),
        (None, Some(_)) => Some(ChangeKind::Added),
        (Some(_), None) => Some(ChangeKind::Removed),
        (Some(x), Some(y)) if x.kind != y.kind => Some(ChangeKind::TypeChanged),
        (Some(x), Some(y)) if x.size != y.size || !same_content(repo, x, y)? => {
            Some(ChangeKind::Modified)
        }
        (Some(x), Some(y))
            if x.mode != y.mode
                || x.uid != y.uid
                || x.gid != y.gid
                || x.mtime_ns != y.mtime_ns
                || x.xattrs != y.xattrs
                || x.target != y.target =>
        {
            Some(ChangeKind::Metadata)
        }
        _ => None,
    };
    if let Some(k) = kind {
        out.push(Change {
            kind: k,
            path: path.clone(),
        });
    }
    let (sa, sb) = (a.and_then(|n| n.subtree), b.and_then(|n| n.subtree));
    if sa == sb {
        return Ok(());
    }
    let (ta, tb) = (children(repo, a)?, children(repo, b)?);
    let mut names: Vec<&[u8]> = ta
        .nodes
        .iter()
        .chain(&tb.nodes)
        .map(|n| n.name.as_slice())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let mut p = path.clone();
        p.push(b'/');
        p.extend_from_slice(name);
        compare(repo, ta.get(name), tb.get(name), p, out)?;
    }
    Ok(())
}
