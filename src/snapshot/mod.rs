//! Layer 2: what a snapshot is. Trees (directory listings stored as blobs)
//! and snapshot records, and finding snapshots. Knows nothing of which
//! components exist: a snapshot has an opaque `type` and named parts.

mod catalog;
mod content;
mod record;
mod sanitized;
mod tree;

pub use catalog::{find, list, resolve, resolve_with};
pub use content::{
    decode_list, encode_list, for_each_segment, read_list, Content, ContentBuilder, INLINE_IDS,
    LISTS_SINCE_VERSION, LIST_IDS,
};
pub use record::{Part, PartPath, Snapshot, Summary, SNAPSHOT_VERSION};
pub use sanitized::{PartSanitize, SanitizeAction, SanitizedEntry};
pub use tree::{Node, NodeKind, Tree, Xattr};
