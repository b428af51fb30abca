//! SQLite schema of the index. Format: `docs/FORMAT.md` §7.

/// Bumped when the schema changes; an index of another version is rebuilt.
pub const SCHEMA_VERSION: i64 = 4;

/// DDL run on a new database.
pub const DDL: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packs (
    pid  INTEGER PRIMARY KEY,
    id   BLOB NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    -- Stored bytes of every blob the trailer lists, indexed here or not:
    -- a copy another writer indexed first is waste prune must see.
    content INTEGER NOT NULL
);
-- WITHOUT ROWID: the 32-byte id is the key; one B-tree, one lookup.
CREATE TABLE IF NOT EXISTS blobs (
    id         BLOB PRIMARY KEY,
    kind       INTEGER NOT NULL,
    pid        INTEGER NOT NULL,
    offset     INTEGER NOT NULL,
    length     INTEGER NOT NULL,
    raw_length INTEGER NOT NULL,
    -- A blob inside a group (docs/FORMAT.md §5.5): its offset in the
    -- group's plaintext and the group's length; group_raw 0 = not grouped.
    inner      INTEGER NOT NULL DEFAULT 0,
    group_raw  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs(pid);
-- Snapshot records exactly as stored in snapshots/<id>: still sealed, so
-- the cache reveals no more than the repository files do.
CREATE TABLE IF NOT EXISTS snapshots (
    id     BLOB PRIMARY KEY,
    sealed BLOB NOT NULL
);
-- Counts blob rows ever removed (prune, repair, a pack deleted elsewhere,
-- a rebuild): a tree checked at one count has all its blobs while the
-- count stays the same (see trust.rs).
INSERT OR IGNORE INTO meta(key, value) VALUES ('blob_removals', '0');
CREATE TRIGGER IF NOT EXISTS count_blob_removals AFTER DELETE ON blobs BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'blob_removals';
END;
-- Part root trees whose every blob was indexed at `removals`.
CREATE TABLE IF NOT EXISTS trusted_trees (
    tree     BLOB PRIMARY KEY,
    removals INTEGER NOT NULL
) WITHOUT ROWID;
";
