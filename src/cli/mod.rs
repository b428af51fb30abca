//! Layer 4: parse, call the library, render, exit code.

mod args;
mod cmd;
mod copy_args;
mod exit;
mod key_args;
mod password;
mod progress;
mod render;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use opc_store::profile::{self, Config};
use opc_store::Repository;

use args::{Cli, Command, Global};

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            // The S3 signer logs credentials at debug level: never shown.
            tracing_subscriber::EnvFilter::from_env("OPC_LOG")
                .add_directive("reqsign_core=info".parse().expect("directive"))
                .add_directive("reqsign_aws_v4=info".parse().expect("directive")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::code_for(&e))
        }
    }
}

fn run(cli: &Cli) -> Result<u8> {
    let g = &cli.global;
    match &cli.command {
        Command::Init(a) => cmd::init::run(g, a),
        Command::Snapshot(a) => cmd::snapshot::run(g, a),
        Command::Restore(a) => cmd::restore::run(g, a),
        Command::Snapshots(a) => cmd::list::snapshots(g, a),
        Command::Ls(a) => cmd::list::ls(g, a),
        Command::Stats => cmd::list::stats(g),
        Command::Diff(a) => cmd::list::diff(g, a),
        Command::Export(a) => cmd::tarball::export(g, a),
        Command::Import(a) => cmd::tarball::import(g, a),
        Command::Verify(a) => cmd::tarball::verify(g, a),
        Command::Forget(a) => cmd::retention::forget(g, a),
        Command::Prune(a) => cmd::retention::prune(g, a),
        Command::Unlock(a) => cmd::retention::unlock(g, a),
        Command::Check(a) => cmd::check::run(g, a),
        Command::Copy(a) => cmd::copy::run(g, a),
        Command::Drill(a) => cmd::check::drill(g, a),
        Command::Run(a) => cmd::run::run(g, a),
        Command::Status(a) => cmd::run::status(g, a),
        Command::Repair(r) => cmd::repair::run(g, r),
        Command::Key(k) => cmd::key::run(g, k),
        Command::Schedule(a) => cmd::schedule::run(g, a),
        Command::Demo(a) => cmd::demo::run(g, a),
    }
}

/// The configuration, if one is given or found at a default place.
fn load_config(g: &Global) -> Result<Option<Config>> {
    let path = g.config.clone().or_else(profile::default_config_path);
    match path {
        Some(p) => {
            Ok(Some(Config::load(&p).with_context(|| {
                format!("loading configuration {}", p.display())
            })?))
        }
        None => Ok(None),
    }
}

/// The repository folder: `--repo`/`OPC_REPO`, else the configuration's.
fn repo_path(g: &Global, cfg: Option<&Config>) -> Result<PathBuf> {
    if let Some(r) = &g.repo {
        return Ok(r.clone());
    }
    if let Some(c) = cfg {
        return Ok(c.repository.clone());
    }
    anyhow::bail!("no repository given: pass --repo PATH, set OPC_REPO, or give a configuration with `repository:`")
}

/// Opens the repository, asking for the password only when it is encrypted.
fn open_repo(g: &Global, path: &Path) -> Result<Repository> {
    Ok(open_repo_with_password(g, path)?.0)
}

/// [`open_repo`], also returning the password (empty when unencrypted) for
/// commands that need it again (`key`).
fn open_repo_with_password(
    g: &Global,
    path: &Path,
) -> Result<(Repository, zeroize::Zeroizing<Vec<u8>>)> {
    open_repo_as(g, path, Secret::Global)
}

/// Where the password of a repository comes from.
#[derive(Clone, Copy)]
enum Secret<'a> {
    /// The global options: `--password-file`, `OPC_PASSWORD`, a prompt.
    Global,
    /// `copy`'s source: `--from-password-file`, `OPC_FROM_PASSWORD`, a prompt.
    From(Option<&'a Path>),
    /// This file (the configuration's `copy_to.password_file`); an
    /// encrypted repository without one is refused, nothing prompts.
    File(Option<&'a Path>),
}

/// Opens the repository at `path` with the password from `secret`, asked
/// for only when the repository is encrypted.
fn open_repo_as(
    g: &Global,
    path: &Path,
    secret: Secret<'_>,
) -> Result<(Repository, zeroize::Zeroizing<Vec<u8>>)> {
    let backend = connect(g, path)?;
    let encrypted = Repository::is_encrypted_on(backend.as_ref(), path)?;
    let pw = match (encrypted, secret) {
        (false, _) => zeroize::Zeroizing::new(Vec::new()),
        (true, Secret::Global) => password::get(g.password_file.as_deref(), false)?,
        (true, Secret::From(f)) => password::get_from(f)?,
        (true, Secret::File(Some(f))) => password::from_file(f)?,
        (true, Secret::File(None)) => anyhow::bail!(
            "{} is encrypted: give its password file (copy_to.password_file); run never prompts",
            path.display()
        ),
    };
    let given = match secret {
        Secret::Global => std::env::var_os("OPC_PASSWORD").is_some() || g.password_file.is_some(),
        Secret::From(f) => std::env::var_os("OPC_FROM_PASSWORD").is_some() || f.is_some(),
        Secret::File(f) => f.is_some(),
    };
    if !encrypted && given && !g.quiet {
        eprintln!(
            "warning: {} is NOT encrypted, although a password was given",
            path.display()
        );
    }
    let repo = Repository::open_backend(
        backend,
        path,
        encrypted.then_some(pw.as_slice()),
        &cache_root(g),
    )
    .with_context(|| format!("opening repository {}", path.display()))?;
    Ok((repo, pw))
}

/// The backend of a repository location: a folder, or `s3:...` with the
/// S3 settings of `--s3-path-style`, the environment and the
/// configuration's `s3:` section.
fn connect(g: &Global, path: &Path) -> Result<Box<dyn opc_store::backend::Backend>> {
    let mut s3 = opc_store::backend::S3Settings::default();
    if opc_store::backend::is_remote(path) {
        if let Some(c) = load_config(g).ok().flatten().and_then(|c| c.s3) {
            s3 = c;
        }
        s3 = s3.or_env(&|k| std::env::var(k).ok())?;
        if g.s3_path_style {
            s3.path_style = Some(true);
        }
    }
    opc_store::backend::open(path, &s3)
        .with_context(|| format!("opening repository {}", path.display()))
}

/// Whether the repository at `path` (a folder or `s3:...`) is encrypted.
fn is_encrypted(g: &Global, path: &Path) -> Result<bool> {
    let backend = connect(g, path)?;
    Ok(Repository::is_encrypted_on(backend.as_ref(), path)?)
}

/// The cache root: `--cache-dir` / `OPC_CACHE_DIR`, else the library default.
fn cache_root(g: &Global) -> PathBuf {
    g.cache_dir
        .clone()
        .unwrap_or_else(opc_store::repo::cache_root)
}

/// Opens the repository named by options or configuration.
fn open_from(g: &Global) -> Result<(Repository, Option<Config>)> {
    let cfg = if g.repo.is_some() {
        load_config(g).ok().flatten()
    } else {
        load_config(g)?
    };
    let path = repo_path(g, cfg.as_ref())?;
    Ok((open_repo(g, &path)?, cfg))
}

/// Takes a repository lock for `command`, waiting up to `--lock-wait`
/// and saying so when it has to wait.
fn lock<'r>(
    g: &Global,
    repo: &'r Repository,
    kind: opc_store::repo::LockKind,
    command: &str,
) -> Result<opc_store::repo::RepoLock<'r>> {
    let quiet = g.quiet;
    let wait = g.lock_wait;
    let lock = repo.lock(kind, command, wait, &|holder| {
        if !quiet {
            eprintln!(
                "waiting up to {} for {}",
                humantime::format_duration(wait),
                holder.describe()
            );
        }
    })?;
    Ok(lock)
}

/// Prints a value as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
