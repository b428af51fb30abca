//! The legacy archive format, kept working: `opc_backup_<type>_<time>.tar.gz`
//! holding `<backup_name>/manifest.json` first, then one folder per
//! component. Layout and manifest schema: `docs/TARBALL.md`.
//!
//! - [`export`](write_export): a snapshot as an archive, streamed through a
//!   parallel gzip writer;
//! - [`import`]: an archive (ours or the old scripts') as a snapshot;
//! - [`extract`]: an archive straight to a folder;
//! - [`verify_archive`]: structure and manifest digests, no repository.

mod export;
mod extract;
mod import;
mod manifest;
mod name;
mod pax;
pub(crate) mod reader;
mod verify;
mod writer;

pub use export::{plan_export, write_export, ExportPlan, ExportReport, ExportRequest};
pub use extract::{extract, ExtractReport, ExtractRequest};
pub use import::{already_imported, import, ImportReport, ImportRequest};
pub use manifest::{
    read_loose, LooseManifest, Manifest, ManifestComponent, ManifestFile, ManifestPath,
    MANIFEST_FORMAT,
};
pub use name::{backup_name, parse_backup_name, strip_archive_suffix};
pub use reader::{for_each_member, open_archive, Member, MemberKind};
pub use verify::{verify_archive, VerifyReport};
