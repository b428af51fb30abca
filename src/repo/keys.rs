//! Key slots of a repository: unlocking at open, and `key list`, `add`,
//! `remove`, `passwd` and `rotate`. Format: `docs/FORMAT.md` §4.
//!
//! Every change writes the new slot durably before it deletes anything, so
//! a crash leaves at worst one slot too many, never a password that opens
//! nothing. Changes need the exclusive lock: a writer that opened the
//! repository with an older keyring must not seal data with it later.

use serde::Serialize;

use super::{json, RepoLock, Repository};
use crate::backend::Backend;
use crate::crypto::{KdfParams, KeySlot, Keyring};
use crate::error::{Error, Result};

/// What `key list` shows about one slot. Never any key material.
#[derive(Clone, Debug, Serialize)]
pub struct SlotInfo {
    /// 16 hex digits.
    pub id: String,
    /// Slot format version (1 or 2).
    pub version: u32,
    /// `argon2id` or `none`.
    pub kdf: String,
    /// Argon2id cost.
    pub params: Option<KdfParams>,
    /// RFC 3339 creation time.
    pub created: String,
    /// Creating host.
    pub host: String,
    /// Creating user (version 2 slots).
    pub user: String,
    /// Label given with `--label` (version 2 slots).
    pub label: String,
    /// Newest key generation the slot claims to wrap (version 2; 0 for 1).
    pub generation: u32,
    /// Whether the current password opened this slot.
    pub current: bool,
}

/// What `key rotate` did.
#[derive(Clone, Debug, Serialize)]
pub struct RotateReport {
    /// The new generation, which seals everything written from now on.
    pub generation: u32,
    /// Generations in the keyring after the rotation, oldest first.
    pub generations: Vec<u32>,
    /// The slot now wrapping the keyring for the current password.
    pub new_slot: String,
    /// Slots deleted (the one the password opened, plus others if asked).
    pub removed_slots: Vec<String>,
}

fn read_slot(backend: &dyn Backend, name: &str) -> Result<KeySlot> {
    let slot: KeySlot = serde_json::from_slice(&backend.read(name)?)
        .map_err(|e| Error::corrupt(format!("key slot {name}"), e.to_string()))?;
    if name.rsplit('/').next() != Some(slot.id.as_str()) {
        return Err(Error::corrupt(
            format!("key slot {name}"),
            "file name differs from its id",
        ));
    }
    Ok(slot)
}

/// Opens the keyring with `password`: the slots are tried newest keyring
/// first (by their generation hint), then by name, and the first that opens
/// wins. Returns the keyring and the slot that opened it (`None` when the
/// repository is not encrypted).
pub(super) fn unlock(
    backend: &dyn Backend,
    encrypted: bool,
    password: Option<&[u8]>,
) -> Result<(Keyring, Option<KeySlot>)> {
    let names = backend.list("keys")?;
    if names.is_empty() {
        return Err(Error::corrupt("repository", "no key slots in keys/"));
    }
    // A damaged or hostile slot is skipped so it cannot lock out the
    // others; its error is reported only when no slot opens.
    let mut skipped = None;
    let mut slots = Vec::new();
    for name in &names {
        match read_slot(backend, name) {
            Ok(s) => slots.push(s),
            Err(e) => {
                skipped.get_or_insert(e);
            }
        }
    }
    // After a rotation cut short, two slots open with one password; the
    // newer keyring can read everything the older one can.
    // Of equal generations the newer slot first: a re-encryption cut short
    // leaves the keyring without the old generations in the newer one.
    slots.sort_by(|a, b| {
        (b.generation.unwrap_or(0), &b.created).cmp(&(a.generation.unwrap_or(0), &a.created))
    });
    let mut tried = 0;
    for slot in slots {
        if encrypted && slot.kdf == "none" {
            // A plaintext slot in an encrypted repository would be a
            // downgrade planted by whoever holds the storage.
            return Err(Error::corrupt(
                format!("key slot keys/{}", slot.id),
                "unencrypted key slot in an encrypted repository",
            ));
        }
        let pw = if encrypted {
            password.ok_or(Error::WrongPassword)?
        } else {
            b""
        };
        match slot.open(pw) {
            Ok(Some(k)) => return Ok((k, encrypted.then_some(slot))),
            Ok(None) => tried += 1,
            Err(e) => {
                skipped.get_or_insert(e);
            }
        }
    }
    match skipped {
        Some(e) if tried == 0 => Err(e),
        _ => Err(Error::WrongPassword),
    }
}

impl Repository {
    /// Id of the slot the password opened (`None` when unencrypted).
    pub fn opened_slot(&self) -> Option<&str> {
        self.opened.as_ref().map(|s| s.id.as_str())
    }

    /// Key generation numbers in the keyring, oldest first.
    pub fn key_generations(&self) -> Vec<u32> {
        self.keyring.numbers()
    }

    /// Every key slot, by id. Unreadable slots are left out (`check`
    /// reports them).
    pub fn list_key_slots(&self) -> Result<Vec<SlotInfo>> {
        let mut out = Vec::new();
        for name in self.backend.list("keys")? {
            let Ok(s) = read_slot(self.backend(), &name) else {
                continue;
            };
            out.push(SlotInfo {
                current: self.opened_slot() == Some(s.id.as_str()),
                generation: s.generation.unwrap_or(0),
                id: s.id,
                version: s.version,
                kdf: s.kdf,
                params: s.params,
                created: s.created,
                host: s.host,
                user: s.user,
                label: s.label,
            });
        }
        Ok(out)
    }

    /// The full id of the slot whose id starts with `prefix`.
    pub fn resolve_slot(&self, prefix: &str) -> Result<String> {
        let ids: Vec<String> = self
            .key_slots()?
            .into_iter()
            .filter(|id| !prefix.is_empty() && id.starts_with(&prefix.to_ascii_lowercase()))
            .collect();
        match ids.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::NotFound(format!(
                "no key slot starts with {prefix:?}; `opc-store key list` shows them"
            ))),
            _ => Err(Error::Invalid(format!(
                "{prefix:?} matches {} key slots ({}); give more digits",
                ids.len(),
                ids.join(", ")
            ))),
        }
    }

    fn require_key_change(&self, lock: &RepoLock<'_>) -> Result<&KeySlot> {
        lock.require_exclusive()?;
        self.opened.as_ref().ok_or_else(|| {
            Error::Invalid(
                "the repository is not encrypted: it has no passwords or keys to manage".into(),
            )
        })
    }

    /// The Argon2 cost for a new slot: `params`, else the opened slot's.
    fn slot_params(&self, params: Option<KdfParams>) -> KdfParams {
        params
            .or_else(|| self.opened.as_ref().and_then(|s| s.params))
            .unwrap_or_default()
    }

    /// Writes a new slot wrapping `keyring` durably and records it as ours.
    fn write_slot(
        &self,
        keyring: &Keyring,
        password: &[u8],
        params: Option<KdfParams>,
        label: &str,
    ) -> Result<String> {
        let slot = KeySlot::create_keyring(keyring, password, self.slot_params(params), label)?;
        let name = format!("keys/{}", slot.id);
        self.backend.write_atomic(&name, &json(&slot))?;
        self.slot_names.lock().expect("not poisoned").push(name);
        Ok(slot.id)
    }

    fn delete_slot(&self, id: &str) -> Result<()> {
        let name = format!("keys/{id}");
        self.backend.delete(&name)?;
        self.slot_names
            .lock()
            .expect("not poisoned")
            .retain(|n| *n != name);
        Ok(())
    }

    /// Adds a slot that opens the keyring with `password`; returns its id.
    /// `params` default to the cost of the slot the current password opened.
    pub fn add_key_slot(
        &self,
        lock: &RepoLock<'_>,
        password: &[u8],
        params: Option<KdfParams>,
        label: &str,
    ) -> Result<String> {
        self.require_key_change(lock)?;
        self.write_slot(&self.keyring, password, params, label)
    }

    /// Removes slot `id`. The last slot is never removed. Removing the slot
    /// `current_password` opened is refused, unless `force`, when that
    /// password opens no other slot: it would lock its user out.
    pub fn remove_key_slot(
        &self,
        lock: &RepoLock<'_>,
        id: &str,
        current_password: &[u8],
        force: bool,
    ) -> Result<()> {
        let opened = self.require_key_change(lock)?;
        let ids = self.key_slots()?;
        if !ids.iter().any(|i| i == id) {
            return Err(Error::NotFound(format!("no key slot {id}")));
        }
        if ids.len() == 1 {
            return Err(Error::LastKeySlot(id.to_string()));
        }
        if id == opened.id && !force {
            let opens_another = ids.iter().filter(|i| *i != id).any(|other| {
                read_slot(self.backend(), &format!("keys/{other}"))
                    .ok()
                    .and_then(|s| s.open(current_password).ok().flatten())
                    .is_some()
            });
            if !opens_another {
                return Err(Error::WouldLockOut(id.to_string()));
            }
        }
        self.delete_slot(id)
    }

    /// `passwd`: a new slot for `new_password`, durable before the slot the
    /// current password opened is deleted. Returns (new id, removed id).
    pub fn change_password(
        &self,
        lock: &RepoLock<'_>,
        new_password: &[u8],
        params: Option<KdfParams>,
        label: &str,
    ) -> Result<(String, String)> {
        let old = self.require_key_change(lock)?.id.clone();
        let label = if label.is_empty() {
            self.opened.as_ref().map(|s| s.label.as_str()).unwrap_or("")
        } else {
            label
        };
        let new = self.write_slot(&self.keyring, new_password, params, label)?;
        crate::util::fault_point("passwd-after-new-slot");
        self.delete_slot(&old)?;
        Ok((new, old))
    }

    /// Replaces the keyring wrapped for `password` by `keyring`: the new
    /// slot is durable before the opened one is deleted, together with any
    /// other slot `password` opens (left by an interrupted rotation) and,
    /// with `remove_others`, every other slot. Refuses up front when slots
    /// of other passwords exist and `remove_others` is false: they cannot be
    /// re-wrapped without their passwords and would keep the old keyring.
    pub(super) fn replace_keyring(
        &self,
        lock: &RepoLock<'_>,
        keyring: &Keyring,
        password: &[u8],
        remove_others: bool,
    ) -> Result<(String, Vec<String>)> {
        let opened = self.require_key_change(lock)?;
        let (own, others) = self.other_slots(password)?;
        if !others.is_empty() && !remove_others {
            return Err(Error::OtherKeySlots(others.join(", ")));
        }
        let label = opened.label.clone();
        let new = self.write_slot(keyring, password, None, &label)?;
        crate::util::fault_point("keyring-after-new-slot");
        let mut removed = Vec::new();
        let doomed = std::iter::once(opened.id.clone())
            .chain(own)
            .chain(others.into_iter().filter(|_| remove_others));
        for id in doomed {
            self.delete_slot(&id)?;
            removed.push(id);
        }
        Ok((new, removed))
    }

    /// Slots other than the opened one: (those `password` opens too, those
    /// of other passwords). Costs one Argon2 run per other slot.
    fn other_slots(&self, password: &[u8]) -> Result<(Vec<String>, Vec<String>)> {
        let opened = self.opened_slot().unwrap_or_default().to_string();
        let (mut own, mut others) = (Vec::new(), Vec::new());
        for id in self.key_slots()? {
            if id == opened {
                continue;
            }
            let opens = read_slot(self.backend(), &format!("keys/{id}"))
                .ok()
                .and_then(|s| s.open(password).ok().flatten())
                .is_some();
            if opens {
                own.push(id);
            } else {
                others.push(id);
            }
        }
        Ok((own, others))
    }

    /// Deletes the other slots `password` opens: leftovers of an interrupted
    /// rotation or re-encryption, which may still wrap dropped generations.
    pub(super) fn remove_duplicate_slots(
        &self,
        lock: &RepoLock<'_>,
        password: &[u8],
    ) -> Result<Vec<String>> {
        self.require_key_change(lock)?;
        let (own, _) = self.other_slots(password)?;
        for id in &own {
            self.delete_slot(id)?;
        }
        Ok(own)
    }

    /// Fails with [`Error::OtherKeySlots`] when slots of other passwords
    /// exist and may not be removed.
    pub(super) fn check_other_slots(&self, password: &[u8], remove_others: bool) -> Result<()> {
        let (_, others) = self.other_slots(password)?;
        if others.is_empty() || remove_others {
            Ok(())
        } else {
            Err(Error::OtherKeySlots(others.join(", ")))
        }
    }

    /// `key rotate`: adds a new key generation that seals everything
    /// written from now on. Old objects stay readable with the older
    /// generations until [`Repository::reencrypt`] rewrites them.
    pub fn rotate_keys(
        &self,
        lock: &RepoLock<'_>,
        password: &[u8],
        remove_others: bool,
    ) -> Result<RotateReport> {
        self.require_key_change(lock)?;
        let next = self.keyring.rotated();
        let (new_slot, removed_slots) =
            self.replace_keyring(lock, &next, password, remove_others)?;
        Ok(RotateReport {
            generation: next.newest().number,
            generations: next.numbers(),
            new_slot,
            removed_slots,
        })
    }

    /// Fails when the key slots changed since this repository was opened
    /// by someone else: this process may hold an outdated keyring.
    pub(super) fn check_slots_unchanged(&self) -> Result<()> {
        let mut now = self.backend.list("keys")?;
        let mut seen = self.slot_names.lock().expect("not poisoned").clone();
        now.sort();
        seen.sort();
        if now == seen {
            Ok(())
        } else {
            Err(Error::KeysChanged)
        }
    }
}
