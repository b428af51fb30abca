//! Exit codes; the table is mirrored in `docs/RUNBOOK.md`.

use opc_store::ErrorKind;

/// Success.
pub const OK: u8 = 0;
/// Completed, but with warnings (e.g. unreadable files skipped).
pub const WARNINGS: u8 = 1;
/// Command-line usage error (clap's own code).
pub const USAGE: u8 = 2;
/// Any other failure.
pub const FAILURE: u8 = 3;
/// Not a repository.
pub const NO_REPOSITORY: u8 = 10;
/// Repository locked by another process.
pub const LOCKED: u8 = 11;
/// Wrong password.
pub const WRONG_PASSWORD: u8 = 12;
/// Repository format too new.
pub const UNSUPPORTED_VERSION: u8 = 13;
/// Corruption or tampering detected.
pub const INTEGRITY: u8 = 14;
/// Invalid configuration.
pub const CONFIG: u8 = 15;
/// A named snapshot, component or path does not exist.
pub const NOT_FOUND: u8 = 16;
/// `status`: a type is overdue or its last run failed.
pub const ALERT: u8 = 17;
/// The storage service (S3) could not be reached or kept failing.
pub const STORAGE_UNREACHABLE: u8 = 18;
/// The storage service refused: credentials, permission or missing bucket.
pub const STORAGE_REFUSED: u8 = 19;

/// The exit code for an error chain: the first library error in it decides.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<opc_store::Error>() {
            return match e.kind() {
                ErrorKind::NoRepository => NO_REPOSITORY,
                ErrorKind::WrongPassword => WRONG_PASSWORD,
                ErrorKind::UnsupportedVersion => UNSUPPORTED_VERSION,
                ErrorKind::Integrity => INTEGRITY,
                ErrorKind::Config => CONFIG,
                ErrorKind::NotFound => NOT_FOUND,
                ErrorKind::Locked => LOCKED,
                ErrorKind::StorageUnreachable => STORAGE_UNREACHABLE,
                ErrorKind::StorageRefused => STORAGE_REFUSED,
                ErrorKind::Other => FAILURE,
            };
        }
    }
    FAILURE
}
