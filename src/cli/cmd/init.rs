//! `opc-store init`.

use anyhow::{bail, Context, Result};
use opc_store::chunker::{CdcParams, ChunkMethod, ChunkRule};
use opc_store::crypto::KdfParams;
use opc_store::repo::InitOptions;
use opc_store::Repository;

use crate::cli::args::{Global, InitArgs};
use crate::cli::{
    cache_root, exit, load_config, open_repo_as, password, print_json, repo_path, Secret,
};

/// Creates the repository.
pub fn run(g: &Global, a: &InitArgs) -> Result<u8> {
    let cfg = if g.repo.is_some() {
        None
    } else {
        load_config(g)?
    };
    let path = repo_path(g, cfg.as_ref())?;
    let mut opts = InitOptions {
        encrypted: a.encryption != "none",
        ..Default::default()
    };
    let def = KdfParams::default();
    opts.kdf = KdfParams {
        memory_kib: a.argon2_memory_kib.unwrap_or(def.memory_kib),
        iterations: a.argon2_iterations.unwrap_or(def.iterations),
        parallelism: def.parallelism,
    };
    if let Some(l) = a.compression_level {
        opts.compression_level = l;
    }
    if !a.chunk_rules.is_empty() {
        opts.chunking.rules = a
            .chunk_rules
            .iter()
            .map(|r| parse_rule(r))
            .collect::<Result<_>>()?;
    }
    if let Some(n) = a.sqlite_pages_per_chunk {
        opts.chunking.sqlite_pages_per_chunk = n;
    }
    if let Some(m) = a.pack_size_mib {
        opts.pack_target_size = m * 1024 * 1024;
    }
    if let Some(from) = &a.copy_chunker_params_from {
        let secret = Secret::From(a.from_password_file.as_deref());
        let (other, _) = open_repo_as(g, from, secret)
            .context("opening the repository of --copy-chunker-params-from")?;
        opts.chunking = other.config().chunking.clone();
        opts.id_keys = Some(other.shared_id_keys());
    }
    let pw = if opts.encrypted {
        Some(password::get(g.password_file.as_deref(), true)?)
    } else {
        None
    };
    if !opts.encrypted {
        eprintln!(
            "WARNING: creating an UNENCRYPTED repository. Anyone who can read {} can read every backup in it, \
             including chat data and secrets. Use the default encryption unless the storage itself is trusted.",
            path.display()
        );
    }
    let pw = pw.as_ref().map(|p| p.as_slice());
    let repo = if opc_store::backend::is_remote(&path) {
        let backend = crate::cli::connect(g, &path)?;
        Repository::init_backend(backend, &path, pw, &opts, &cache_root(g))
    } else {
        Repository::init_in(&path, pw, &opts, &cache_root(g))
    }
    .with_context(|| format!("creating repository {}", path.display()))?;
    if g.json {
        print_json(&serde_json::json!({
            "repository": path,
            "id": repo.config().id,
            "encryption": if opts.encrypted { "xchacha20poly1305" } else { "none" },
        }))?;
    } else if !g.quiet {
        println!(
            "created repository {} at {}",
            repo.config().id,
            path.display()
        );
        if opts.encrypted {
            println!("keep the password safe: without it the backups cannot be read");
        }
    }
    Ok(exit::OK)
}

/// Parses `GLOB=MIN/AVG/MAX` (KiB, content-defined) or `GLOB=SIZE` (KiB,
/// fixed-size blocks).
fn parse_rule(r: &str) -> Result<ChunkRule> {
    let Some((glob, sizes)) = r.rsplit_once('=') else {
        bail!("--chunk-rule {r:?}: expected GLOB=MIN/AVG/MAX or GLOB=SIZE in KiB, e.g. '*.bin=4/16/64'");
    };
    if !sizes.contains('/') {
        let size = sizes
            .trim()
            .parse::<u32>()
            .map(|k| k.saturating_mul(1024))
            .with_context(|| format!("--chunk-rule {r:?}: the block size must be whole KiB"))?;
        return Ok(ChunkRule {
            glob: glob.to_string(),
            chunking: ChunkMethod::Fixed { size },
        });
    }
    let n: Vec<u32> = sizes
        .split('/')
        .map(|x| x.trim().parse::<u32>().map(|k| k.saturating_mul(1024)))
        .collect::<Result<_, _>>()
        .with_context(|| format!("--chunk-rule {r:?}: sizes must be whole KiB"))?;
    let [min, avg, max] = n[..] else {
        bail!("--chunk-rule {r:?}: give three sizes MIN/AVG/MAX");
    };
    let p = CdcParams { min, avg, max };
    p.validate()?;
    Ok(ChunkRule {
        glob: glob.to_string(),
        chunking: ChunkMethod::Cdc(p),
    })
}
