//! Layer 3: the operations users ask for. Each returns a report struct and
//! never prints; the CLI renders reports as text or JSON.

mod diff;
mod forget;
mod ls;
pub mod policy;
mod prune;
mod restore;
mod snapshot;
mod stats;
pub mod tarball;
mod view;

pub use diff::{diff, Change, ChangeKind};
pub use forget::{forget, ForgetReport, ForgetRequest};
pub use ls::{ls, LsEntry};
pub use prune::{prune, PruneOptions, PruneReport};
pub use restore::{restore, RestoreDest, RestoreReport, RestoreRequest};
pub use snapshot::{snapshot, PartSource, SnapshotReport, SnapshotRequest};
pub use stats::{stats, StatsReport};
pub use view::part_view;
