//! `opc-store key list|add|remove|passwd|rotate|reencrypt`.

use anyhow::{Context, Result};
use opc_store::crypto::KdfParams;
use opc_store::repo::{LockKind, Repository, SlotInfo};

use crate::cli::args::{Global, KeyCommand, NewPasswordArgs};
use crate::cli::{exit, load_config, lock, password, print_json, repo_path};

/// Runs a `key` subcommand.
pub fn run(g: &Global, k: &KeyCommand) -> Result<u8> {
    let cfg = if g.repo.is_some() {
        load_config(g).ok().flatten()
    } else {
        load_config(g)?
    };
    let path = repo_path(g, cfg.as_ref())?;
    let (repo, pw) = crate::cli::open_repo_with_password(g, &path)?;
    match k {
        KeyCommand::List => list(g, &repo),
        KeyCommand::Add(a) => {
            let l = lock(g, &repo, LockKind::Exclusive, "key add")?;
            let label = a.label.as_deref().unwrap_or("");
            let id = with_new_secret(a, |new| {
                repo.add_key_slot(&l, new, params(a), label)
                    .context("adding a key slot")
            })?;
            let key_file = a.new_key_file.as_ref().map(|f| f.display().to_string());
            let text = match &key_file {
                Some(f) => format!(
                    "key slot {id} added; key file {f} opens the repository (--password-file / \
                     OPC_PASSWORD_FILE). Keep a copy off this machine: losing it loses this way in"
                ),
                None => format!("key slot {id} added"),
            };
            report(
                g,
                serde_json::json!({ "added": id, "key_file": key_file }),
                &text,
            )
        }
        KeyCommand::Remove(a) => {
            let l = lock(g, &repo, LockKind::Exclusive, "key remove")?;
            let id = repo.resolve_slot(&a.id)?;
            repo.remove_key_slot(&l, &id, &pw, a.force)
                .context("removing a key slot")?;
            report(
                g,
                serde_json::json!({ "removed": id }),
                &format!("key slot {id} removed"),
            )
        }
        KeyCommand::Passwd(a) => {
            let l = lock(g, &repo, LockKind::Exclusive, "key passwd")?;
            let label = a.label.as_deref().unwrap_or("");
            let (added, removed) = with_new_secret(a, |new| {
                repo.change_password(&l, new, params(a), label)
                    .context("changing the password")
            })?;
            report(
                g,
                serde_json::json!({ "added": added, "removed": removed }),
                &format!("password changed: key slot {added} replaces {removed}"),
            )
        }
        KeyCommand::Rotate(a) => {
            let rep = {
                let l = lock(g, &repo, LockKind::Exclusive, "key rotate")?;
                repo.rotate_keys(&l, &pw, a.remove_other_slots)
                    .context("rotating the keys")?
            };
            let mut v = serde_json::to_value(&rep)?;
            if !g.json && !g.quiet {
                println!(
                    "key generation {} now seals new data (slot {}); older data stays readable{}",
                    rep.generation,
                    rep.new_slot,
                    if a.reencrypt {
                        ""
                    } else {
                        "; `opc-store key reencrypt` rewrites it and drops the old keys"
                    }
                );
            }
            if a.reencrypt {
                // This process holds the keyring it opened; the new one is
                // read back from the slot just written.
                drop(repo);
                let (repo, pw) = crate::cli::open_repo_with_password(g, &path)?;
                v["reencrypt"] = reencrypt(g, &repo, &pw, false, a.remove_other_slots)?;
            }
            if g.json {
                print_json(&v)?;
            }
            Ok(exit::OK)
        }
        KeyCommand::Reencrypt(a) => {
            let v = reencrypt(g, &repo, &pw, a.keep_old, a.remove_other_slots)?;
            if g.json {
                print_json(&v)?;
            }
            Ok(exit::OK)
        }
    }
}

fn params(a: &NewPasswordArgs) -> Option<KdfParams> {
    if a.argon2_memory_kib.is_none() && a.argon2_iterations.is_none() {
        return None;
    }
    let def = KdfParams::default();
    Some(KdfParams {
        memory_kib: a.argon2_memory_kib.unwrap_or(def.memory_kib),
        iterations: a.argon2_iterations.unwrap_or(def.iterations),
        parallelism: def.parallelism,
    })
}

fn report(g: &Global, json: serde_json::Value, text: &str) -> Result<u8> {
    if g.json {
        print_json(&json)?;
    } else if !g.quiet {
        println!("{text}");
    }
    Ok(exit::OK)
}

fn reencrypt(
    g: &Global,
    repo: &Repository,
    pw: &[u8],
    keep_old: bool,
    remove_others: bool,
) -> Result<serde_json::Value> {
    let l = lock(g, repo, LockKind::Exclusive, "key reencrypt")?;
    let rep = repo
        .reencrypt(&l, pw, keep_old, remove_others, &|| ())
        .context("re-encrypting")?;
    if !g.json && !g.quiet {
        println!(
            "re-encrypted: {} packs ({} blobs, {}), {} snapshot records{}",
            rep.packs_rewritten,
            rep.blobs,
            opc_store::util::human_bytes(rep.bytes),
            rep.snapshots,
            if rep.config { ", the config" } else { "" }
        );
        if !rep.dropped_generations.is_empty() {
            println!(
                "dropped key generations {:?}; generation {:?} remains (slot {})",
                rep.dropped_generations,
                rep.generations,
                rep.new_slot.as_deref().unwrap_or("")
            );
        }
    }
    Ok(serde_json::to_value(&rep)?)
}

fn list(g: &Global, repo: &Repository) -> Result<u8> {
    let slots = repo.list_key_slots()?;
    if g.json {
        print_json(&serde_json::json!({
            "slots": slots,
            "current": repo.opened_slot(),
            "generations": repo.key_generations(),
        }))?;
        return Ok(exit::OK);
    }
    for s in &slots {
        println!("{}", line(s));
    }
    let gens = repo.key_generations();
    println!(
        "key generations in the keyring: {} (the newest, {}, seals new data)",
        gens.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        gens.last().copied().unwrap_or_default()
    );
    Ok(exit::OK)
}

/// Runs `f` with the new secret: a new key file's (written durably first,
/// and deleted again when `f` fails, since no slot then knows it) or a new
/// password.
fn with_new_secret<T>(a: &NewPasswordArgs, f: impl FnOnce(&[u8]) -> Result<T>) -> Result<T> {
    let Some(path) = &a.new_key_file else {
        return f(&password::get_new(a.new_password_file.as_deref())?);
    };
    let secret = password::write_new_key_file(path)?;
    f(&secret).inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

fn line(s: &SlotInfo) -> String {
    let cost = match &s.params {
        Some(p) => format!(
            "argon2id m={}KiB t={} p={}",
            p.memory_kib, p.iterations, p.parallelism
        ),
        None => s.kdf.clone(),
    };
    let who = [s.host.as_str(), s.user.as_str()]
        .into_iter()
        .filter(|x| !x.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    format!(
        "{} {}  {:<32}  {}  {}{}",
        if s.current { "*" } else { " " },
        s.id,
        cost,
        crate::cli::render::snapshot_time(&s.created),
        who,
        if s.label.is_empty() {
            String::new()
        } else {
            format!("  {:?}", s.label)
        }
    )
}
