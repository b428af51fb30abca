//! Arguments of `opc-store key ...` (kept apart from `args.rs` for size).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `key` subcommands.
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// List key slots: id, KDF and cost, creation, host/user/label, which one the password opened
    #[command(after_help = "Examples:\n  opc-store key list\n  opc-store key list --json")]
    List,
    /// Add a password (a new key slot); the current password is needed to open the keys
    #[command(after_help = "\
Examples:
  opc-store key add --label laptop                       # asks for the new password twice
  opc-store key add --new-password-file /root/.opc-pw-2
  OPC_NEW_PASSWORD=... opc-store key add
  opc-store key add --new-key-file /root/.opc-store.key --label timer
      # a generated key for unattended runs: give it as --password-file / OPC_PASSWORD_FILE")]
    Add(NewPasswordArgs),
    /// Remove a key slot by id (a unique prefix is enough); never the last one
    #[command(after_help = "\
Examples:
  opc-store key remove 3fa2c1d0
  opc-store key remove 3fa2 --force    # the slot of the current password, which opens no other")]
    Remove(KeyRemoveArgs),
    /// Change the current password: a new slot is written, then the old one removed
    #[command(after_help = "\
Examples:
  opc-store key passwd                                   # asks for the new password twice
  opc-store key passwd --new-password-file /root/.opc-pw-new")]
    Passwd(NewPasswordArgs),
    /// New encryption key for everything written from now on; old data stays readable
    #[command(after_help = "\
Examples:
  opc-store key rotate                       # new data under a new key generation
  opc-store key rotate --reencrypt           # and rewrite all old data, then drop the old keys
  opc-store key rotate --remove-other-slots  # when other passwords exist (add them again after)")]
    Rotate(KeyRotateArgs),
    /// Rewrite everything sealed with older key generations, then drop those generations
    #[command(after_help = "\
Examples:
  opc-store key reencrypt
  opc-store key reencrypt --keep-old     # rewrite, but keep the old generations in the keyring")]
    Reencrypt(KeyReencryptArgs),
}

/// Options of `key add` and `key passwd`.
#[derive(Args, Debug)]
pub struct NewPasswordArgs {
    /// File holding the new password [else OPC_NEW_PASSWORD, else a prompt asked twice]
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
    /// Instead of a password, generate a key file here (mode 0600, never overwritten); it is then
    /// given like a password file and opens without the Argon2id delay
    #[arg(long, value_name = "FILE", conflicts_with = "new_password_file")]
    pub new_key_file: Option<PathBuf>,
    /// Label recorded in the slot (e.g. who holds the password)
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
    /// Argon2id memory in KiB [default: as the slot the current password opened]
    #[arg(long, value_name = "KIB")]
    pub argon2_memory_kib: Option<u32>,
    /// Argon2id passes [default: as the slot the current password opened]
    #[arg(long, value_name = "N")]
    pub argon2_iterations: Option<u32>,
}

/// `key remove` options.
#[derive(Args, Debug)]
pub struct KeyRemoveArgs {
    /// Slot id or a unique prefix of it (see `opc-store key list`)
    pub id: String,
    /// Also remove the slot of the current password when it opens no other slot
    #[arg(long)]
    pub force: bool,
}

/// `key rotate` options.
#[derive(Args, Debug)]
pub struct KeyRotateArgs {
    /// Delete the other key slots (their keyring cannot be replaced without their passwords)
    #[arg(long)]
    pub remove_other_slots: bool,
    /// Then rewrite all old data under the new key and drop the old generations (`key reencrypt`)
    #[arg(long)]
    pub reencrypt: bool,
}

/// `key reencrypt` options.
#[derive(Args, Debug)]
pub struct KeyReencryptArgs {
    /// Keep the older generations in the keyring after rewriting
    #[arg(long)]
    pub keep_old: bool,
    /// Delete the other key slots (they hold the keyring with the old generations)
    #[arg(long)]
    pub remove_other_slots: bool,
}
