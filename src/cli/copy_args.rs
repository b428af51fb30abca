//! Command-line arguments of `copy`.

use std::path::PathBuf;

use clap::Args;

/// `copy` options.
#[derive(Args, Debug)]
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
