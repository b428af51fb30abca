//! Library-level integration tests of the repository layer (blobs, packs,
//! index, keys, locks, prune), mostly without the snapshot pipeline.

mod common;
/// Python HTTP and SMTP servers on 127.0.0.1.
#[path = "../shared/peers.rs"]
mod peers;

/// Layer rules of docs/ARCHITECTURE.md, checked on the source.
mod architecture;

/// Content-defined chunk boundaries survive insertions; SQLite page cuts.
mod chunking;
/// `copy` with shared ids gives large files the target format's form.
mod copy_forms;
/// Distinct errors for wrong password, no repository, newer version, ...
mod errors;
/// Small blobs sealed in groups read back; prune keeps used members only.
mod groups;
/// The index rebuilt from the packs equals the original.
mod index_rebuild;
/// Key rotation against a process holding the old keyring.
mod keys;
/// Vector blobs compressed over their byte lanes (format version 2).
mod lanes;
/// Slack, webhook and e-mail notifications reach real peers; failures are bounded.
mod notify;
/// Padmé hides exact blob sizes.
mod padding;
/// Files 0600, folders 0700.
mod permissions;
/// No stored plaintext in an encrypted repository's files.
mod plaintext_leak;
/// Prune repacks; other clients' caches find moved blobs; locks exclude.
mod prune_caches;
/// Blobs round-trip byte for byte at every size edge; dedup stores once.
mod repo_roundtrip;
/// A folder's small files restore in pack order, each group opened once.
mod small_files;
/// Every flipped bit of a pack is detected, never returned as data.
mod tamper;
