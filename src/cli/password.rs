//! Where passwords come from, first match wins. The current password:
//! `--password-file` / `OPC_PASSWORD_FILE`, `OPC_PASSWORD`, an interactive
//! prompt. A new one (`key add`, `key passwd`): `--new-password-file`,
//! `OPC_NEW_PASSWORD`, a prompt asked twice. The source of `copy`:
//! `--from-password-file` / `OPC_FROM_PASSWORD_FILE`, `OPC_FROM_PASSWORD`,
//! a prompt. Never an argument. A key file (`key add --new-key-file`) is
//! given like a password file: its content is the secret.

use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

/// Where one password is looked for.
struct Source<'a> {
    file: Option<&'a Path>,
    env: &'static str,
    file_hint: &'static str,
    prompt: &'static str,
}

/// The password, prompting (twice when `confirm`) on a terminal.
pub fn get(file: Option<&Path>, confirm: bool) -> Result<Zeroizing<Vec<u8>>> {
    read(
        &Source {
            file,
            env: "OPC_PASSWORD",
            file_hint: "OPC_PASSWORD_FILE / --password-file",
            prompt: "repository password: ",
        },
        confirm,
    )
}

/// The source repository's password for `copy`: `--from-password-file` /
/// `OPC_FROM_PASSWORD_FILE`, `OPC_FROM_PASSWORD`, a prompt.
pub fn get_from(file: Option<&Path>) -> Result<Zeroizing<Vec<u8>>> {
    read(
        &Source {
            file,
            env: "OPC_FROM_PASSWORD",
            file_hint: "OPC_FROM_PASSWORD_FILE / --from-password-file",
            prompt: "source repository password: ",
        },
        false,
    )
}

/// A new password for `key add` / `key passwd`, always confirmed when typed.
pub fn get_new(file: Option<&Path>) -> Result<Zeroizing<Vec<u8>>> {
    read(
        &Source {
            file,
            env: "OPC_NEW_PASSWORD",
            file_hint: "--new-password-file",
            prompt: "new repository password: ",
        },
        true,
    )
}

fn read(src: &Source<'_>, confirm: bool) -> Result<Zeroizing<Vec<u8>>> {
    // An explicit file wins over the environment variable.
    if let Some(f) = src.file {
        return from_file(f);
    }
    if let Some(p) = std::env::var_os(src.env) {
        if p.is_empty() {
            bail!(
                "{} is set but empty; an empty password is not allowed",
                src.env
            );
        }
        return Ok(Zeroizing::new(
            std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec(),
        ));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password given: set {}, or {} to a file holding it",
            src.env,
            src.file_hint
        );
    }
    let p = Zeroizing::new(rpassword::prompt_password(src.prompt).context("reading the password")?);
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("repeat the password: ").context("reading the password")?,
        );
        if *again != *p {
            bail!("the passwords differ");
        }
    }
    if p.is_empty() {
        bail!("an empty password is not allowed");
    }
    Ok(Zeroizing::new(p.as_bytes().to_vec()))
}

/// The password held in file `f` (trailing newlines dropped).
pub fn from_file(f: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let text = Zeroizing::new(
        std::fs::read(f).with_context(|| format!("reading password file {}", f.display()))?,
    );
    warn_if_exposed(f);
    // A trailing newline from `echo pw > file` is not part of the password.
    let mut end = text.len();
    while end > 0 && (text[end - 1] == b'\n' || text[end - 1] == b'\r') {
        end -= 1;
    }
    if end == 0 {
        bail!("password file {} is empty", f.display());
    }
    Ok(Zeroizing::new(text[..end].to_vec()))
}

/// Warns (on every read, also with `--quiet`: it is a security problem, not
/// progress) when others than the owner may read the password file.
fn warn_if_exposed(f: &Path) {
    let Ok(md) = std::fs::metadata(f) else {
        return;
    };
    let mode = md.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        eprintln!(
            "warning: password file {} is readable or writable by group or others (mode {mode:03o}); \
             restrict it with `chmod 600 {}`",
            f.display(),
            f.display()
        );
    }
}

/// Creates the key file `path` with a new secret (mode 0600; written to a
/// temporary name, fsynced, then linked into place so that an existing
/// file is never replaced) and returns the secret as the "password" that
/// opens its slot.
pub fn write_new_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .with_context(|| format!("key file {} must name a file", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if path.symlink_metadata().is_ok() {
        bail!(
            "key file {} already exists; choose another name (an existing key file is never overwritten)",
            path.display()
        );
    }
    let text = opc_store::crypto::KeyFileSecret::generate().to_text();
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)?;
        std::fs::remove_file(&tmp)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("writing key file {}", path.display()))?;
    Ok(Zeroizing::new(text.trim_end().as_bytes().to_vec()))
}
