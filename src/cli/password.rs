//! Where the password comes from, first match wins: `--password-file` /
//! `OPC_PASSWORD_FILE`, `OPC_PASSWORD`, an interactive prompt. Never an
//! argument.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

/// The password, prompting (twice when `confirm`) on a terminal.
pub fn get(file: Option<&Path>, confirm: bool) -> Result<Zeroizing<Vec<u8>>> {
    // An explicit file (flag or OPC_PASSWORD_FILE) wins over OPC_PASSWORD.
    if let Some(f) = file {
        let text =
            std::fs::read(f).with_context(|| format!("reading password file {}", f.display()))?;
        // A trailing newline from `echo pw > file` is not part of the password.
        let mut end = text.len();
        while end > 0 && (text[end - 1] == b'\n' || text[end - 1] == b'\r') {
            end -= 1;
        }
        if end == 0 {
            bail!("password file {} is empty", f.display());
        }
        return Ok(Zeroizing::new(text[..end].to_vec()));
    }
    if let Some(p) = std::env::var_os("OPC_PASSWORD") {
        if p.is_empty() {
            bail!("OPC_PASSWORD is set but empty; an empty password is not allowed");
        }
        return Ok(Zeroizing::new(
            std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec(),
        ));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password given: set OPC_PASSWORD, or OPC_PASSWORD_FILE / --password-file to a file holding it");
    }
    let p = rpassword::prompt_password("repository password: ").context("reading the password")?;
    if confirm {
        let again =
            rpassword::prompt_password("repeat the password: ").context("reading the password")?;
        if again != p {
            bail!("the passwords differ");
        }
    }
    if p.is_empty() {
        bail!("an empty password is not allowed");
    }
    Ok(Zeroizing::new(p.into_bytes()))
}
