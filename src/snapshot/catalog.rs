//! Listing and finding snapshots: `latest`, id prefixes, by part.

use super::Snapshot;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;

/// Every snapshot, oldest first.
pub fn list(repo: &Repository) -> Result<Vec<(Id, Snapshot)>> {
    let mut out = Vec::new();
    for (id, sealed) in repo.index().snapshots()? {
        let json = repo.open_object("snapshots", &id, &sealed)?;
        let s: Snapshot = serde_json::from_slice(&json)
            .map_err(|e| Error::corrupt(format!("snapshot {}", id.short()), e.to_string()))?;
        out.push((id, s));
    }
    out.sort_by(|a, b| a.1.datetime().cmp(&b.1.datetime()).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// Resolves `latest` or a unique hex prefix. With `part`, `latest` means the
/// newest snapshot containing that part.
pub fn find(repo: &Repository, spec: &str, part: Option<&str>) -> Result<(Id, Snapshot)> {
    resolve(list(repo)?, spec, part)
}

/// [`find`] over an already loaded list.
pub fn resolve(all: Vec<(Id, Snapshot)>, spec: &str, part: Option<&str>) -> Result<(Id, Snapshot)> {
    resolve_with(all, spec, part.as_slice())
}

/// Resolves `latest` (the newest snapshot containing every one of `parts`)
/// or a unique hex prefix.
pub fn resolve_with(
    all: Vec<(Id, Snapshot)>,
    spec: &str,
    parts: &[&str],
) -> Result<(Id, Snapshot)> {
    if spec == "latest" {
        return all
            .into_iter()
            .rev()
            .find(|(_, s)| parts.iter().all(|p| s.part(p).is_some()))
            .ok_or_else(|| {
                Error::NotFound(if parts.is_empty() {
                    "the repository has no snapshots yet; take one with `opc-store snapshot`".into()
                } else {
                    format!(
                        "no snapshot contains {}; take one with `opc-store snapshot {}`",
                        parts.join(" and "),
                        if parts.len() == 1 { parts[0] } else { "full" }
                    )
                })
            });
    }
    let prefix = spec.to_ascii_lowercase();
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NotFound(format!(
            "{spec:?} is not a snapshot id; use `latest` or an id prefix from `opc-store snapshots`"
        )));
    }
    let mut hits: Vec<_> = all
        .into_iter()
        .filter(|(id, _)| id.to_hex().starts_with(&prefix))
        .collect();
    match hits.len() {
        0 => Err(Error::NotFound(format!(
            "no snapshot id starts with {spec}; see `opc-store snapshots`"
        ))),
        1 => Ok(hits.pop().expect("one")),
        n => Err(Error::NotFound(format!(
            "{spec} matches {n} snapshots; give more digits"
        ))),
    }
}
