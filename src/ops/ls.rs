//! Listing the entries of a snapshot.

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;
use crate::snapshot::{self as snap, Node, NodeKind, Snapshot, Tree};

/// One listed entry.
#[derive(Clone, Debug)]
pub struct LsEntry {
    /// Path as `<part>/...`, raw bytes.
    pub path: Vec<u8>,
    /// The entry.
    pub node: Node,
}

/// Lists the snapshot `spec` recursively, below `path` (`<part>/sub/dir`)
/// when given.
pub fn ls(
    repo: &Repository,
    spec: &str,
    path: Option<&[u8]>,
) -> Result<(Id, Snapshot, Vec<LsEntry>)> {
    let (id, record) = snap::find(repo, spec, None)?;
    let want: Vec<&[u8]> = path
        .map(|p| p.split(|b| *b == b'/').filter(|c| !c.is_empty()).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for part in &record.parts {
        if let Some(first) = want.first() {
            if *first != part.name.as_bytes() {
                continue;
            }
        }
        let mut node = super::part_view(repo, &record, part)?;
        let mut prefix = part.name.as_bytes().to_vec();
        for comp in want.iter().skip(1) {
            let tree = subtree(repo, &node)?;
            node = tree.get(comp).cloned().ok_or_else(|| {
                Error::NotFound(format!(
                    "{} is not in snapshot {}",
                    String::from_utf8_lossy(path.unwrap_or_default()),
                    id.short()
                ))
            })?;
            prefix.push(b'/');
            prefix.extend_from_slice(comp);
        }
        walk(repo, &node, prefix, &mut out)?;
    }
    if out.is_empty() {
        if let Some(p) = path {
            return Err(Error::NotFound(format!(
                "{} is not in snapshot {}; paths start with a component name",
                String::from_utf8_lossy(p),
                id.short()
            )));
        }
    }
    Ok((id, record, out))
}

fn subtree(repo: &Repository, node: &Node) -> Result<Tree> {
    match (node.kind, node.subtree) {
        (NodeKind::Dir, Some(t)) => Tree::decode(&repo.read_blob(&t)?),
        _ => Ok(Tree::default()),
    }
}

fn walk(repo: &Repository, node: &Node, path: Vec<u8>, out: &mut Vec<LsEntry>) -> Result<()> {
    let children = subtree(repo, node)?;
    out.push(LsEntry {
        path: path.clone(),
        node: node.clone(),
    });
    for c in &children.nodes {
        let mut p = path.clone();
        p.push(b'/');
        p.extend_from_slice(&c.name);
        walk(repo, c, p, out)?;
    }
    Ok(())
}
