//! The legacy system's schedules and retention, which stay our defaults.

/// Snapshot types of One-Place-Chat with their legacy schedule (cron) and
/// retention in days: `backup.sh full 7`, `chromadb 3`, `application 14`,
/// `volumes 30`.
pub const LEGACY: [(&str, &str, u32); 4] = [
    ("full", "0 2 * * *", 7),
    ("chromadb", "0 */6 * * *", 3),
    ("application", "0 3 * * *", 14),
    ("volumes", "0 1 * * 0", 30),
];

/// Legacy retention for a type; other types get the `full` figure.
pub fn retention_days(kind: &str) -> u32 {
    LEGACY
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map(|x| x.2)
        .unwrap_or(7)
}

/// Legacy schedule for a type, as a cron expression.
pub fn schedule(kind: &str) -> Option<&'static str> {
    LEGACY.iter().find(|(k, _, _)| *k == kind).map(|x| x.1)
}

/// The legacy default repository location.
pub const REPOSITORY: &str = "/opt/backups/one-place-chat/repo";

/// The legacy log file, which scheduled runs append to.
pub const LOG_FILE: &str = "/var/log/opc-backup.log";

/// The index cache of scheduled runs (systemd's `CacheDirectory=opc-store`).
pub const CACHE_DIR: &str = "/var/cache/opc-store";

/// Where scheduled runs keep their state (systemd's `StateDirectory=opc-store`).
pub const STATE_DIR: &str = "/var/lib/opc-store";

/// Optional environment file of the systemd services: notification secrets
/// and `ENVIRONMENT`, kept out of the configuration and the units.
pub const ENV_FILE: &str = "/etc/opc-store/env";
