//! Command-line arguments of `copy`.

use std::path::PathBuf;

use clap::Args;

/// `copy` options.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  OPC_FROM_PASSWORD_FILE=/root/.opc-pw OPC_PASSWORD_FILE=/root/.offsite-pw \\
    opc-store copy --from /opt/backups/one-place-chat/repo --to /mnt/offsite/repo
  opc-store copy --from /opt/backups/one-place-chat/repo --to /mnt/offsite/repo 3fa2c1d0 latest
  opc-store copy --from /srv/repo --to /mnt/offsite/repo --type chromadb --json

The target's password comes from --password-file / OPC_PASSWORD_FILE / OPC_PASSWORD (as for
every command), the source's from --from-password-file / OPC_FROM_PASSWORD_FILE /
OPC_FROM_PASSWORD. Snapshots the target already holds are skipped.")]
pub struct CopyArgs {
    /// Source repository folder
    #[arg(long, value_name = "PATH")]
    pub from: PathBuf,
    /// Target repository folder [default: --repo / OPC_REPO, else `repository` from the configuration]
    #[arg(long, value_name = "PATH")]
    pub to: Option<PathBuf>,
    /// File holding the source repository's password (else OPC_FROM_PASSWORD, else a prompt)
    #[arg(long, env = "OPC_FROM_PASSWORD_FILE", value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Only snapshots of this type (full or a component)
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Only snapshots containing this component
    #[arg(long, value_name = "NAME")]
    pub component: Option<String>,
    /// Snapshots to copy (id prefixes or `latest`, in the source) [default: every snapshot]
    pub snapshots: Vec<String>,
}
