//! The library's error type. Every message says what went wrong and, where
//! there is one, what the user can do next. `Error::kind` gives the stable
//! category the CLI maps to an exit code (see `docs/RUNBOOK.md`).

use std::path::PathBuf;

/// Stable error categories; the CLI maps each to a documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Anything without a more specific category (I/O, unexpected state).
    Other,
    /// The path is not an opc-store repository.
    NoRepository,
    /// The password opened no key slot.
    WrongPassword,
    /// The repository was written by a newer, incompatible format version.
    UnsupportedVersion,
    /// Stored data failed authentication or a structural check.
    Integrity,
    /// A configuration file or option is invalid.
    Config,
    /// A snapshot, path or object the user named does not exist.
    NotFound,
    /// The repository is locked by another process.
    Locked,
    /// The storage service (S3) could not be reached or kept failing.
    StorageUnreachable,
    /// The storage service refused: bad credentials, no permission, or no
    /// such bucket.
    StorageRefused,
}

/// Errors returned by the opc-store library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named path.
    #[error("{action} {path}: {cause}")]
    Io {
        /// What we were doing ("reading", "creating", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error. Part of the message rather than a
        /// `source`, so error chains do not print it twice.
        cause: std::io::Error,
    },
    /// The folder holds no repository.
    #[error("{0} is not an opc-store repository (no repo.json); create one with `opc-store init --repo {0}` or check --repo / OPC_REPO")]
    NotARepository(PathBuf),
    /// A repository already exists where `init` was asked to create one.
    #[error("{0} already holds an opc-store repository; use it, or choose an empty folder")]
    AlreadyExists(PathBuf),
    /// `init` was pointed at a non-empty folder that is not a repository.
    #[error("{0} is not empty; init needs a new or empty folder")]
    NotEmpty(PathBuf),
    /// No key slot could be opened with the given password.
    #[error("wrong password or no key slot matches")]
    WrongPassword,
    /// The repository's format version is newer than this binary understands.
    #[error("repository format version {found} is newer than this opc-store supports (up to {supported}); upgrade opc-store")]
    UnsupportedVersion {
        /// Version found on disk.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// An object failed authentication (tampered with or corrupted).
    #[error("{what} failed authentication: it is corrupted or was tampered with; snapshots that do not use it can still be restored")]
    Authentication {
        /// Which object, e.g. "pack 3fa2… blob 9c1e…".
        what: String,
    },
    /// The repository's encryption mode changed from encrypted to none.
    #[error("repository {0} was encrypted when this host last opened it and now claims to be unencrypted: refusing to use it (the storage may have been replaced); investigate before trusting it")]
    Downgrade(String),
    /// An object's structure is invalid.
    #[error("{what} is malformed: {reason}")]
    Corrupt {
        /// Which object.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A blob the index or a tree references is missing.
    #[error("blob {0} is referenced but not stored in any pack; run `opc-store repair index`; if it stays missing, its data is lost and other snapshots must be used")]
    MissingBlob(String),
    /// Configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// The user named something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A configured hook command failed (or timed out); the message names
    /// the hook, the command and its last line of output.
    #[error("{0}")]
    Hook(String),
    /// Invalid user request (bad argument combination, refusing to clobber).
    #[error("{0}")]
    Invalid(String),
    /// The repository is locked.
    #[error("{0}")]
    Locked(String),
    /// `key remove` of the only key slot.
    #[error("key slot {0} is the last one: without it no password opens the repository; add another with `opc-store key add` first, or change this password with `opc-store key passwd`")]
    LastKeySlot(String),
    /// `key remove` of the slot the current password opened, when that
    /// password opens no other slot.
    #[error("key slot {0} is the one the current password opened and that password opens no other slot: removing it locks you out unless you know another password; use `opc-store key passwd` to change the password, or pass --force if another password is known to work")]
    WouldLockOut(String),
    /// A keyring change would leave other slots with the old keyring.
    #[error("other key slots exist ({0}): their keyring cannot be replaced without their passwords; remove them first with `opc-store key remove ID` and add them again afterwards with `opc-store key add`, or pass --remove-other-slots")]
    OtherKeySlots(String),
    /// Key slots changed between opening the repository and locking it.
    #[error("the repository's key slots changed while this command started (a `key` command ran meanwhile), so it may hold outdated keys; run it again")]
    KeysChanged,
    /// Objects sealed with an older key generation remain after re-encryption.
    #[error("{0} still sealed with an older key generation; run `opc-store key reencrypt` again")]
    StillOld(String),
    /// The storage service could not be reached, or kept failing after
    /// retries.
    #[error("storage at {endpoint}: {action} {name} failed: {cause}; check the endpoint in the repository URL, the network and that the service runs, then run the command again (an interrupted upload leaves nothing half-visible)")]
    StorageUnreachable {
        /// The endpoint, e.g. `https://s3.eu-west-1.amazonaws.com`.
        endpoint: String,
        /// What we were doing ("reading", "uploading", ...).
        action: &'static str,
        /// The object involved.
        name: String,
        /// The library's error, shortened.
        cause: String,
    },
    /// The storage service refused the credentials or the request.
    #[error("storage at {endpoint} refused access to bucket {bucket} ({cause}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or `s3:` in the configuration), AWS_REGION, and that this key may read, write, list and delete in the bucket")]
    StorageDenied {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// The service's answer, shortened.
        cause: String,
    },
    /// The bucket named in the repository URL does not exist.
    #[error("bucket {bucket} does not exist at {endpoint}: create it (or correct the bucket in the repository URL s3:ENDPOINT/BUCKET/PREFIX) and give the key read, write, list and delete access")]
    NoSuchBucket {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
    },
    /// The SQLite index failed.
    #[error("index database {path}: {cause}; the index is derived data: `opc-store repair index` rebuilds it from the packs")]
    Index {
        /// Path of the database.
        path: PathBuf,
        /// SQLite's error (in the message, not a `source`).
        cause: rusqlite::Error,
    },
}

impl Error {
    /// The stable category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotARepository(_) => ErrorKind::NoRepository,
            Error::WrongPassword => ErrorKind::WrongPassword,
            Error::UnsupportedVersion { .. } => ErrorKind::UnsupportedVersion,
            Error::Authentication { .. }
            | Error::Corrupt { .. }
            | Error::MissingBlob(_)
            | Error::Downgrade(_) => ErrorKind::Integrity,
            Error::Config(_) => ErrorKind::Config,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Locked(_) => ErrorKind::Locked,
            Error::StorageUnreachable { .. } => ErrorKind::StorageUnreachable,
            Error::StorageDenied { .. } | Error::NoSuchBucket { .. } => ErrorKind::StorageRefused,
            _ => ErrorKind::Other,
        }
    }

    /// Whether this error is about reaching storage or being let in
    /// (an unreachable endpoint, refused credentials, a permission or
    /// timeout error on a path), not about what is stored. What failed to
    /// read this way may be intact: `repair` and `check` stop on it rather
    /// than count the data as lost. (A local read error such as EIO is a
    /// bad disk: the data is lost, and counted so.)
    pub fn is_access_problem(&self) -> bool {
        use std::io::ErrorKind as K;
        match self {
            Error::StorageUnreachable { .. }
            | Error::StorageDenied { .. }
            | Error::NoSuchBucket { .. } => true,
            Error::Io { cause, .. } => matches!(
                cause.kind(),
                K::PermissionDenied
                    | K::TimedOut
                    | K::Interrupted
                    | K::WouldBlock
                    | K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::NotConnected
            ),
            _ => false,
        }
    }

    /// Shorthand for an [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            cause: source,
        }
    }

    /// Shorthand for an [`Error::Corrupt`].
    pub fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_out_of_reach_is_an_access_problem_and_damage_is_not() {
        let io = |k| Error::io("reading", "data/ab/ab12", std::io::Error::new(k, "x"));
        use std::io::ErrorKind as K;
        for k in [K::PermissionDenied, K::TimedOut, K::ConnectionReset] {
            assert!(io(k).is_access_problem(), "{k:?}");
        }
        let unreachable = Error::StorageUnreachable {
            endpoint: "http://127.0.0.1:9".into(),
            action: "reading",
            name: "data/ab/ab12".into(),
            cause: "connection refused".into(),
        };
        assert!(unreachable.is_access_problem());
        // Gone, cut short, unreadable from disk, or failing its checks: lost.
        for e in [
            io(K::NotFound),
            io(K::UnexpectedEof),
            Error::io("reading", "p", std::io::Error::from_raw_os_error(5)),
            Error::Authentication { what: "b".into() },
            Error::corrupt("b", "bad"),
            Error::MissingBlob("ab".into()),
        ] {
            assert!(!e.is_access_problem(), "{e}");
        }
    }
}
