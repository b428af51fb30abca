//! What gets read: filesystem entries with their metadata, excludes, and
//! file content. Store-agnostic: depends on nothing above `snapshot`'s
//! node type.

pub mod dbpage;
mod exclude;
mod fs;
pub mod hooks;
pub mod sanitize;
pub mod sqlite;

pub use exclude::Excludes;
pub use fs::{list_dir, node_from_metadata, read_xattrs, stat_node};
pub use hooks::{run_hook, HookRun, HookSet};
pub use sqlite::SqliteCapture;
