//! Layer 3: the operations users ask for. Each returns a report struct and
//! never prints; the CLI renders reports as text or JSON.

mod check;
mod copy;
mod diff;
mod drill;
mod forget;
mod hooks;
mod ls;
pub mod policy;
mod prune;
mod repair;
mod restore;
mod snapshot;
mod stats;
pub mod tarball;
mod view;

pub use check::{check, Affected, CheckProblem, CheckReport, ReadData};
pub use copy::{copy, CopiedSnapshot, CopyReport, CopyRequest, SkippedSnapshot};
pub use diff::{diff, Change, ChangeKind};
pub use drill::{drill, DatabaseCheck, DrillReport, DrillRequest};
pub use forget::{forget, ForgetReport, ForgetRequest};
pub use ls::{ls, LsEntry};
pub use prune::{prune, PruneOptions, PruneReport};
pub use repair::{repair_snapshots, RepairReport, RepairedSnapshot};
pub use restore::{restore, RestoreDest, RestoreReport, RestoreRequest};
pub use snapshot::{dry_run, snapshot, DryRunPart, PartSource, SnapshotReport, SnapshotRequest};
pub use stats::{stats, StatsReport};
pub use view::part_view;
