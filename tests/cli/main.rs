//! End-to-end tests of the `opc-store` binary: each runs the real
//! executable in a temporary sandbox (repository, configuration, data).

/// Python HTTP and SMTP servers on 127.0.0.1.
#[path = "../shared/peers.rs"]
mod peers;
/// Sandbox and command builder, tree generator, tree comparison.
mod support;

/// `snapshots`, `ls`, `stats`, `diff`, `repair index`, `--json` outputs.
mod commands;
/// Large files' blob ids in content lists, followed by every command.
mod content_lists;
/// `copy` between repositories with different keys, and `run` with `copy_to:`.
mod copy;
/// Usage, configuration and not-found errors: exit codes and messages.
mod errors;
/// Hooks around snapshots and restores; Docker volumes by name.
mod hooks;
/// Live SQLite databases are captured consistently while written.
mod hot_capture;
/// Short ids, unique prefixes, `latest` and `latest --component`.
mod ids;
/// Unchanged data is neither read nor stored again.
mod incremental;
/// `init`: creation, refusal to reuse a folder, where the password comes from.
mod init;
/// Damage in packs and the index, `check`, `repair snapshots`, `drill`,
/// and snapshots killed, out of space or racing with their source.
mod integrity;
/// `key add --new-key-file`: unattended runs without the password.
mod key_file;
/// `key list|add|remove|passwd|rotate|reencrypt`, kills in the middle,
/// password-file warnings, no password stored or logged.
mod keys;
/// Repository locks: concurrent snapshots, prune against a running
/// snapshot (exit 11 or --lock-wait), stale locks and `unlock`.
mod locking;
/// Every kind of entry and its metadata survives snapshot + restore.
mod metadata;
/// `run` (the unattended job) and `status`: Slack and e-mail to real peers,
/// log, run state, metrics parsed by Prometheus' parser, overdue types.
mod operations;
/// Not a repository, wrong password, newer format, damaged packs.
mod repository_errors;
/// `forget` policies over a year of snapshots, `prune`, and prune killed
/// at every step.
mod retention;
/// Repositories on S3 (Garage): every command, two hosts, an upload killed
/// midway, credential and endpoint errors.
mod s3;
/// Secrets are redacted or left out; nothing secret reaches the repository.
mod sanitize;
/// `schedule print|install|remove`: systemd timers and crontab against the
/// legacy schedule, install/remove under a root, `systemd-analyze verify`.
mod schedule;
/// Restore layouts, component isolation, in-place restore and `--force`.
mod snapshot_restore;
/// Legacy tar.gz archives: export, import, verify, restore FILE; peers
/// (GNU tar, gzip, jq, Python's tarfile) and hostile archives.
mod tarball;
/// Unreadable files and sockets: skipped with a warning, exit 1.
mod warnings;
