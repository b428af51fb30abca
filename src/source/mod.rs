//! What gets read: filesystem entries with their metadata, excludes, and
//! file content. Store-agnostic: depends on nothing above `snapshot`'s
//! node type.

mod exclude;
mod fs;
pub mod sanitize;

pub use exclude::Excludes;
pub use fs::{list_dir, node_from_metadata, read_xattrs, stat_node};
