//! Command-line arguments. Defaults live in the library types, not here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use super::copy_args::*;
pub use super::key_args::*;

/// Deduplicating, encrypted backups of One-Place-Chat.
#[derive(Parser, Debug)]
#[command(
    name = "opc-store",
    version,
    about,
    after_help = "\
Examples:
  opc-store init --repo /opt/backups/one-place-chat/repo
  opc-store snapshot full              # legacy: backup.sh full 7
  opc-store snapshot chromadb          # legacy: backup.sh chromadb 3
  opc-store restore latest --component chromadb --target /tmp/restore
  opc-store demo                       # try it on generated data

Exit codes: 0 ok, 1 completed with warnings, 2 usage, 3 failure, 10 not a repository,
11 locked, 12 wrong password, 13 repository too new, 14 corruption detected,
15 invalid configuration, 16 snapshot/component/path not found,
17 (status) a type is overdue or failing."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug)]
pub struct Global {
    /// Repository folder, or s3:https://HOST[:PORT]/BUCKET[/PREFIX] [default: `repository` from the configuration]
    #[arg(long, global = true, env = "OPC_REPO", value_name = "PATH")]
    pub repo: Option<PathBuf>,
    /// S3: path-style addressing (ENDPOINT/BUCKET/KEY) [default: for an IP address or localhost; also OPC_S3_PATH_STYLE=1]
    #[arg(long, global = true)]
    pub s3_path_style: bool,
    /// File holding the password (else OPC_PASSWORD, else a prompt)
    #[arg(long, global = true, env = "OPC_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Configuration file [default: ./backup-config.yml, ./devops/backup/backup-config.yml, /etc/opc-store/backup-config.yml]
    #[arg(long, global = true, env = "OPC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Local cache folder (the index) [default: $XDG_CACHE_HOME/opc-store or ~/.cache/opc-store]
    #[arg(long, global = true, env = "OPC_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// How long to wait for a repository lock held by another process, e.g. 30s, 10min, 2h
    #[arg(long, global = true, env = "OPC_LOCK_WAIT", value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_wait: std::time::Duration,
    /// Print machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars or informational output
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a repository
    #[command(
        after_help = "Example:\n  OPC_PASSWORD_FILE=/root/.opc-pw opc-store init --repo /opt/backups/one-place-chat/repo"
    )]
    Init(InitArgs),
    /// Take a snapshot of all components (full) or one component
    #[command(
        visible_alias = "backup",
        after_help = "\
Examples:
  opc-store snapshot                   # full: every component (legacy backup.sh full 7)
  opc-store snapshot chromadb --retention-days 3
  opc-store snapshot application --tag before-upgrade --json"
    )]
    Snapshot(SnapshotArgs),
    /// Restore a snapshot, or some of its components
    #[command(after_help = "\
Examples:
  opc-store restore latest --target /tmp/restore
  opc-store restore latest --component chromadb --target /tmp/restore   # lands in /tmp/restore/chromadb
  opc-store restore 3fa2c1d0 --component application --in-place --force")]
    Restore(RestoreArgs),
    /// List snapshots
    #[command(
        after_help = "Examples:\n  opc-store snapshots\n  opc-store snapshots --component chromadb --json"
    )]
    Snapshots(SnapshotsArgs),
    /// List the files of a snapshot
    #[command(
        after_help = "Examples:\n  opc-store ls latest\n  opc-store ls 3fa2c1d0 chromadb/some/dir"
    )]
    Ls(LsArgs),
    /// Stored versus logical size, dedup and compression ratios
    #[command(after_help = "Example:\n  opc-store stats --json")]
    Stats,
    /// Show what changed between two snapshots
    #[command(after_help = "Example:\n  opc-store diff 3fa2c1d0 latest")]
    Diff(DiffArgs),
    /// Write a snapshot as a legacy opc_backup_<type>_<time>.tar.gz
    #[command(after_help = "\
Examples:
  opc-store export latest --output-dir /opt/backups/one-place-chat
  opc-store export latest --component chromadb -o /tmp/chromadb.tar.gz
  opc-store export 3fa2c1d0 -o - | ssh backup-host 'cat > opc.tar.gz'
  tar -xzf opc_backup_full_20241201_020000.tar.gz opc_backup_full_20241201_020000/manifest.json -O | jq .")]
    Export(ExportArgs),
    /// Import legacy tar.gz backups as snapshots
    #[command(after_help = "\
Examples:
  opc-store import /opt/backups/one-place-chat/opc_backup_full_20241201_020000.tar.gz
  opc-store import --all /opt/backups/one-place-chat      # oldest first, skips those already imported")]
    Import(ImportArgs),
    /// Check a tar.gz backup: gzip, tar and every SHA-256 in its manifest
    #[command(
        after_help = "Example:\n  opc-store verify opc_backup_full_20241201_020000.tar.gz && echo good"
    )]
    Verify(VerifyArgs),
    /// Remove snapshots by retention policy (per-type days plus --keep-* rules) or by id
    #[command(after_help = "\
Examples:
  opc-store forget --dry-run                     # what the per-type retention days would remove, and why the rest stays
  opc-store forget --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --prune
  opc-store forget --type chromadb --keep-last 10
  opc-store forget 3fa2c1d0                       # exactly this snapshot")]
    Forget(ForgetArgs),
    /// Free the space of data no snapshot references
    #[command(
        after_help = "Examples:\n  opc-store prune --dry-run\n  opc-store prune --max-unused 5"
    )]
    Prune(PruneArgs),
    /// Remove stale locks (of processes gone from this host), or all with --remove-all
    #[command(after_help = "Example:\n  opc-store unlock")]
    Unlock(UnlockArgs),
    /// Check that every snapshot can be restored: structure, and with --read-data every byte
    #[command(after_help = "\
Examples:
  opc-store check                        # structure: keys, packs against the index, every tree and blob reference
  opc-store check --read-data            # also decrypt and verify every blob
  opc-store check --read-data-subset 10% # a tenth of the packs, the next tenth on the next run
  opc-store check --read-data-subset 2/7 # slice 2 of 7 (e.g. by weekday)")]
    Check(CheckArgs),
    /// Copy snapshots to another repository (e.g. off-site), sending only data it lacks
    Copy(CopyArgs),
    /// Restore drill: restore the latest snapshot to a temp folder, verify every file, check SQLite databases
    #[command(
        after_help = "Examples:\n  opc-store drill chromadb\n  opc-store drill --scratch /var/tmp"
    )]
    Drill(DrillArgs),
    /// The unattended job: snapshot, retention, prune when due, log, record, notify (never prompts)
    #[command(after_help = "\
Examples (legacy scheduled-backup.sh TYPE DAYS):
  opc-store --config /etc/opc-store/backup-config.yml run full 7
  BACKUP_TYPE=chromadb RETENTION_DAYS=3 opc-store run
Exit codes: 0 snapshot taken, 1 taken with warnings, other codes: failed (see opc-store --help).")]
    Run(RunArgs),
    /// Last success and failure per type, next run, overdue (exit 17 when overdue or failing)
    #[command(after_help = "Example:\n  opc-store status --json")]
    Status(StatusArgs),
    /// Repair derived data
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Passwords (key slots) and key rotation
    #[command(subcommand)]
    Key(KeyCommand),
    /// Generate, install or remove systemd timers or a crontab for unattended runs
    #[command(after_help = "\
Examples:
  opc-store schedule print                              # systemd units for the configured schedules
  opc-store schedule print --cron --user backup         # /etc/cron.d/opc-store instead
  sudo opc-store schedule install --randomized-delay 10min
  opc-store schedule install --root pkg/ --bin /usr/bin/opc-store   # for packaging
  sudo opc-store schedule remove")]
    Schedule(ScheduleArgs),
    /// Run a demonstration on generated One-Place-Chat data
    #[command(after_help = "Example:\n  cargo run --release -- demo")]
    Demo(DemoArgs),
}

/// `init` options.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// `xchacha20poly1305` (default) or `none` (no encryption, not recommended)
    #[arg(long, default_value = "xchacha20poly1305", value_parser = ["xchacha20poly1305", "none"])]
    pub encryption: String,
    /// Argon2id memory in KiB [default: 65536]
    #[arg(long, value_name = "KIB")]
    pub argon2_memory_kib: Option<u32>,
    /// Argon2id passes [default: 3]
    #[arg(long, value_name = "N")]
    pub argon2_iterations: Option<u32>,
    /// zstd level, 0 to disable; 3 and up trade backup speed for size on text-heavy data
    /// [default: 1]
    #[arg(long, value_name = "LEVEL", value_parser = clap::value_parser!(i32).range(0..=22))]
    pub compression_level: Option<i32>,
    /// Chunking rule GLOB=MIN/AVG/MAX in KiB, e.g. '*.bin=4/16/64', or GLOB=SIZE for fixed
    /// blocks of SIZE KiB, e.g. 'data_level0.bin=4' (repeatable; first match wins; without `/`
    /// the glob matches file names) [default: data_level0.bin = 4; *.bin, *.pickle, *.hnsw =
    /// 4/16/64]
    #[arg(long = "chunk-rule", value_name = "GLOB=MIN/AVG/MAX")]
    pub chunk_rules: Vec<String>,
    /// SQLite pages per chunk for files with an SQLite header, 0 to treat them like other files [default: 1]
    #[arg(long, value_name = "N")]
    pub sqlite_pages_per_chunk: Option<u32>,
    /// Pack target size in MiB [default: 32]
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub pack_size_mib: Option<u64>,
    /// Share the blob-id key, chunker secret and chunking policy of the repository at PATH
    /// (its password: --from-password-file, OPC_FROM_PASSWORD_FILE, OPC_FROM_PASSWORD), so
    /// `copy` between the two skips re-cutting files
    #[arg(long, value_name = "PATH", conflicts_with_all = ["chunk_rules", "sqlite_pages_per_chunk"])]
    pub copy_chunker_params_from: Option<PathBuf>,
    /// File holding the password of the --copy-chunker-params-from repository
    #[arg(long, env = "OPC_FROM_PASSWORD_FILE", value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
}

/// `snapshot` options.
#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// `full` or a component name
    #[arg(default_value = "full")]
    pub kind: String,
    /// Retention asked for, in days [default: from the configuration / legacy defaults]
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Snapshot time (RFC 3339) instead of now
    #[arg(long, value_name = "RFC3339")]
    pub time: Option<String>,
    /// Walk the sources and report what would be captured; store nothing
    #[arg(long)]
    pub dry_run: bool,
    /// List the files sanitization redacted or left out (path, action, keys)
    #[arg(long)]
    pub show_sanitized: bool,
}

/// `restore` options.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id prefix, `latest`, or a .tar.gz backup file
    pub snapshot: String,
    /// Restore only this component (repeatable)
    #[arg(long = "component", value_name = "NAME")]
    pub components: Vec<String>,
    /// Restore under DIR/<component>/
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "in_place",
        conflicts_with = "in_place"
    )]
    pub target: Option<PathBuf>,
    /// Restore to the original paths (the current content is kept as <path>.pre-restore-<time>)
    #[arg(long)]
    pub in_place: bool,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
    /// Also read every restored file back from disk and check it against the
    /// snapshot (every blob is always authenticated and hash-checked as it is
    /// read from the repository; this adds a second pass over the written data)
    #[arg(long)]
    pub verify: bool,
    /// From a tar.gz: do not check the whole archive before writing. (A snapshot is not
    /// read back unless --verify is given.)
    #[arg(long, conflicts_with = "verify")]
    pub no_verify: bool,
    /// Do not run the configuration's before_restore, after_restore and health_check hooks
    /// (they run for --in-place restores)
    #[arg(long, conflicts_with = "hooks")]
    pub no_hooks: bool,
    /// Run the restore hooks for a --target restore too
    #[arg(long)]
    pub hooks: bool,
}

/// `snapshots` options.
#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    /// Only snapshots containing this component
    #[arg(long, value_name = "NAME")]
    pub component: Option<String>,
}

/// `ls` options.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot id prefix, or `latest`
    pub snapshot: String,
    /// Path inside the snapshot, starting with a component name
    pub path: Option<PathBuf>,
}

/// `diff` options.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// First snapshot
    pub a: String,
    /// Second snapshot
    pub b: String,
}

/// `repair` subcommands.
#[derive(Subcommand, Debug)]
pub enum RepairCommand {
    /// Rebuild the SQLite index from the packs and snapshot records
    Index,
    /// Heal damaged blobs from intact copies; rewrite damaged snapshots without unreadable files
    Snapshots,
}

/// `drill` options.
#[derive(Args, Debug)]
pub struct DrillArgs {
    /// Component to drill [default: every component of the latest snapshot]
    pub component: Option<String>,
    /// Folder for the temporary restore [default: the system temp folder]
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

/// `demo` options.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Work in this folder and keep it (default: a temporary folder, removed)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Scale of the generated data set (1 = about 60 MB)
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
}

/// `export` options.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Snapshot id prefix, or `latest`
    pub snapshot: String,
    /// Export only this component (once; the archive type names it)
    #[arg(long = "component", value_name = "NAME")]
    pub components: Vec<String>,
    /// Folder for opc_backup_<type>_<YYYYMMDD_HHMMSS>.tar.gz [default: current folder]
    #[arg(long, value_name = "DIR", conflicts_with = "output")]
    pub output_dir: Option<PathBuf>,
    /// Write to FILE instead (`-` for stdout)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// gzip level 1 (fastest) to 9 (smallest)
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub gzip_level: u32,
}

/// `import` options.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Archive to import
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub file: Option<PathBuf>,
    /// Import every *.tar.gz / *.tgz in DIR, oldest first, skipping those already imported
    #[arg(long, value_name = "DIR")]
    pub all: Option<PathBuf>,
    /// Snapshot time (RFC 3339) instead of the manifest's or the file name's
    #[arg(long, value_name = "RFC3339", conflicts_with = "all")]
    pub time: Option<String>,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
}

/// `verify` options.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Archive to check
    pub file: PathBuf,
}

/// `forget` options.
#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Forget exactly these snapshots (id prefixes) instead of applying the policy
    pub ids: Vec<String>,
    /// Only snapshots of this type (full or a component)
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Keep the newest N of each type
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Keep the newest of each of the last N hours
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<usize>,
    /// Keep the newest of each of the last N days
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<usize>,
    /// Keep the newest of each of the last N weeks
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<usize>,
    /// Keep the newest of each of the last N months
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<usize>,
    /// Keep the newest of each of the last N years
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<usize>,
    /// Keep everything within this span of the newest snapshot, e.g. 14d, 1y6m
    #[arg(long, value_name = "SPAN")]
    pub keep_within: Option<String>,
    /// Keep snapshots with this tag (repeatable)
    #[arg(long = "keep-tag", value_name = "TAG")]
    pub keep_tags: Vec<String>,
    /// Show what would be removed and why the rest is kept; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Prune afterwards
    #[arg(long)]
    pub prune: bool,
    /// With --prune: repack packs with more than PCT % unused bytes
    #[arg(long, value_name = "PCT", default_value_t = 10.0)]
    pub max_unused: f64,
    /// Reference time instead of now (RFC 3339), for replaying a schedule
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub now: Option<String>,
}

/// `prune` options.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Report what would be freed; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Repack packs with more than PCT % unused bytes
    #[arg(long, value_name = "PCT", default_value_t = 10.0)]
    pub max_unused: f64,
}

/// `unlock` options.
#[derive(Args, Debug)]
pub struct UnlockArgs {
    /// Remove every lock, also those of other hosts (only when nothing runs)
    #[arg(long)]
    pub remove_all: bool,
}

/// `check` options.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Read and verify every blob
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read a subset: a percentage (10%, rotating over runs) or a slice N/M
    #[arg(long, value_name = "SUBSET")]
    pub read_data_subset: Option<String>,
}

/// `run` options.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// `full` or a component [default: $BACKUP_TYPE, else full]
    pub kind: Option<String>,
    /// Retention in days for this type [default: $RETENTION_DAYS, else the configuration's]
    pub retention_days: Option<u32>,
    /// Append the run's JSON line here [default: operations.log_file, /var/log/opc-backup.log]
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

/// `status` options.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Reference time instead of now (RFC 3339)
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub now: Option<String>,
}

/// `schedule` actions.
#[derive(Args, Debug)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    pub action: ScheduleAction,
}

/// What `schedule` does.
#[derive(Subcommand, Debug)]
pub enum ScheduleAction {
    /// Write the generated files to stdout, each after a `# file: PATH` line
    Print(ScheduleOpts),
    /// Write the files under --root, then enable the timers (systemctl, when --root is /)
    Install(ScheduleOpts),
    /// Disable the timers and delete the files `install` wrote
    Remove(ScheduleOpts),
}

/// `schedule` options.
#[derive(Args, Debug)]
pub struct ScheduleOpts {
    /// systemd service and timer units (the default)
    #[arg(long, conflicts_with = "cron")]
    pub systemd: bool,
    /// A crontab in /etc/cron.d/opc-store instead
    #[arg(long)]
    pub cron: bool,
    /// User the backups run as
    #[arg(long, value_name = "NAME", default_value = "backup")]
    pub user: String,
    /// Group of the log file [default: the user's name]
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// Install under this folder instead of / (for tests and packaging; no systemctl then)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Start each run up to this much later, at random, e.g. 10min [default: schedule_randomized_delay]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub randomized_delay: Option<std::time::Duration>,
    /// The opc-store executable the jobs run [default: this one]
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// How often logrotate rotates the log
    #[arg(long, value_name = "WHEN", default_value = "weekly", value_parser = ["daily", "weekly"])]
    pub logrotate: String,
    /// Rotated logs kept
    #[arg(long, value_name = "N", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..))]
    pub logrotate_keep: u32,
    /// Do not run systemctl, even when installing to /
    #[arg(long)]
    pub no_systemctl: bool,
}
