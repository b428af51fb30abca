//! Trusted trees: the unchanged-file shortcut without a lookup per blob.
//!
//! A file unchanged since the parent snapshot reuses the parent's blob ids,
//! which is safe only while those blobs are still indexed. Checking that is
//! one B-tree probe per blob: on a tree of 100k blobs most of the time of a
//! snapshot of unchanged data. Instead, blob rows are only ever removed
//! through statements that a trigger counts (`blob_removals`); a snapshot
//! that committed while the count did not move had every blob it names
//! indexed, so its part trees are recorded here with that count. The next
//! snapshot skips the per-blob checks below such a parent while the count
//! is still the same; after a prune, a repair or a pack deleted elsewhere it
//! checks one folder at a time, as before, and records its own trees anew.

use rusqlite::OptionalExtension;

use super::Index;
use crate::error::Result;
use crate::id::Id;

impl Index {
    /// How many blob rows have ever been removed from this index.
    pub fn blob_removals(&self) -> Result<i64> {
        self.conn()
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'blob_removals'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|v| v.unwrap_or(0))
            .map_err(|e| self.err(e))
    }

    /// Records that every blob below `tree` was indexed when the removal
    /// count was `removals`; rows of older counts can no longer be used
    /// and are dropped.
    pub fn trust_tree(&self, tree: &Id, removals: i64) -> Result<()> {
        let c = self.conn();
        c.execute("DELETE FROM trusted_trees WHERE removals <> ?1", [removals])
            .map_err(|e| self.err(e))?;
        c.execute(
            "INSERT OR REPLACE INTO trusted_trees(tree, removals) VALUES (?1, ?2)",
            rusqlite::params![&tree.0[..], removals],
        )
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    /// Whether every blob below `tree` is still indexed, as far as the
    /// removal count tells (false when unsure).
    pub fn is_trusted(&self, tree: &Id) -> bool {
        let Ok(now) = self.blob_removals() else {
            return false;
        };
        self.conn()
            .query_row(
                "SELECT 1 FROM trusted_trees WHERE tree = ?1 AND removals = ?2",
                rusqlite::params![&tree.0[..], now],
                |_| Ok(()),
            )
            .optional()
            .is_ok_and(|x| x.is_some())
    }
}

#[cfg(test)]
mod tests {
    use crate::id::Id;
    use crate::repo::index::Index;
    use crate::repo::pack::PackEntry;

    #[test]
    fn any_blob_removal_withdraws_trust() {
        let d = tempfile::tempdir().unwrap();
        let (idx, _) = Index::open(&d.path().join("i.sqlite")).unwrap();
        let pack = Id::random();
        let blob = Id::random();
        let entry = PackEntry {
            kind: crate::id::BlobKind::Data,
            id: blob,
            offset: 0,
            length: 10,
            raw_length: 10,
            group: None,
        };
        idx.add_pack(&pack, 10, std::slice::from_ref(&entry))
            .unwrap();
        let tree = Id::random();
        let n = idx.blob_removals().unwrap();
        idx.trust_tree(&tree, n).unwrap();
        assert!(idx.is_trusted(&tree));
        assert!(!idx.is_trusted(&Id::random()));
        idx.forget_blob(&blob).unwrap();
        assert_eq!(idx.blob_removals().unwrap(), n + 1);
        assert!(!idx.is_trusted(&tree), "a removed blob withdraws trust");
        idx.trust_tree(&tree, n + 1).unwrap();
        assert!(idx.is_trusted(&tree));
        let other = Id::random();
        idx.add_pack(&other, 10, &[entry]).unwrap();
        idx.remove_pack(&other).unwrap();
        assert!(!idx.is_trusted(&tree), "so does a removed pack");
    }
}
