//! Password-wrapped key slots. Each slot wraps the same keys with a key
//! derived from one password by Argon2id (or from a key file's secret by
//! keyed BLAKE3, see [`KeyFileSecret`]), so passwords can be added and
//! removed without re-encrypting data. Version 1 (what `init` writes) wraps
//! the 96-byte [`MasterKeys`]; version 2 (what `key add`, `passwd` and
//! `rotate` write) wraps a [`Keyring`] of key generations and records who
//! made it. Format: `docs/FORMAT.md` §4.

use serde::{Deserialize, Serialize};

use super::{KeyFileSecret, Keyring, MasterKeys, Sealer};
use crate::error::{Error, Result};

/// Argon2id cost parameters, stored in each slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about a quarter second on a 2-core server
    /// and above OWASP's 2024 minimum for Argon2id (19 MiB, 2 passes).
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            // RFC 9106's second recommended setting (t=3, p=4, 64 MiB). The
            // lanes are filled on all cores (argon2's `parallel`): the
            // memory-time cost to an attacker is that of one lane set, and
            // every command unlocks in a half of the wall time on two cores.
            parallelism: 4,
        }
    }
}

/// Largest Argon2 memory a slot may ask for: 4 GiB.
pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;

/// One key slot, stored as JSON at `keys/<id>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySlot {
    /// Slot format version: 1 wraps master keys, 2 a keyring.
    pub version: u32,
    /// 16 hex digits naming the slot.
    pub id: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// Host that created the slot (informational).
    pub host: String,
    /// User that created the slot (informational; version 2 only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Free-form label given with `--label` (version 2 only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// Newest key generation inside (version 2 only). Unauthenticated: a
    /// hint so that, of two slots one password opens (a rotation cut short),
    /// the one with the newer keyring is tried first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u32>,
    /// `argon2id`, `keyfile` (opened by a key file), or `none` for
    /// unencrypted repositories.
    pub kdf: String,
    /// Argon2id parameters (absent for `keyfile` and `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<KdfParams>,
    /// Hex salt (16 bytes) for `argon2id` and `keyfile`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub salt: String,
    /// Hex of the sealed 96-byte master keys (plain for `none`).
    pub keys: String,
}

fn aad(version: u32, id: &str) -> Vec<u8> {
    let mut a = format!("opc-store keyslot v{version} ").into_bytes();
    a.extend_from_slice(id.as_bytes());
    a
}

/// `kdf` of a slot opened by a key file.
pub const KDF_KEY_FILE: &str = "keyfile";

/// The key-encryption key: keyed BLAKE3 of a key file's secret (`params`
/// is `None`), else Argon2id of the password.
fn kek(
    password: &[u8],
    salt: &[u8],
    params: Option<KdfParams>,
) -> Result<zeroize::Zeroizing<[u8; 32]>> {
    match (params, KeyFileSecret::parse(password)) {
        (None, Some(secret)) => Ok(secret.kek(salt)),
        (Some(p), _) => Ok(zeroize::Zeroizing::new(derive(password, salt, p)?)),
        (None, None) => Err(Error::Invalid(
            "a key-file slot needs a key file's secret".into(),
        )),
    }
}

fn derive(password: &[u8], salt: &[u8], p: KdfParams) -> Result<[u8; 32]> {
    let params = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
        .map_err(|e| Error::corrupt("key slot", format!("invalid Argon2 parameters: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    a.hash_password_into(password, salt, &mut out)
        .map_err(|e| Error::corrupt("key slot", format!("Argon2 failed: {e}")))?;
    Ok(out)
}

/// Who runs this process, for the informational `user` field.
fn current_user() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}

impl KeySlot {
    /// Wraps `keys` under `password` in a version 1 slot (what `init` writes).
    pub fn create(keys: &MasterKeys, password: &[u8], params: KdfParams) -> Result<KeySlot> {
        let mut plain = keys.to_bytes();
        let slot = Self::wrap(1, &plain, password, params);
        zeroize::Zeroize::zeroize(&mut plain);
        slot
    }

    /// Wraps `keyring` under `password` in a version 2 slot labelled `label`.
    pub fn create_keyring(
        keyring: &Keyring,
        password: &[u8],
        params: KdfParams,
        label: &str,
    ) -> Result<KeySlot> {
        let plain = zeroize::Zeroizing::new(keyring.to_bytes());
        let mut slot = Self::wrap(2, &plain, password, params)?;
        slot.user = current_user();
        slot.label = label.to_string();
        slot.generation = Some(keyring.newest().number);
        Ok(slot)
    }

    fn wrap(version: u32, plain: &[u8], password: &[u8], params: KdfParams) -> Result<KeySlot> {
        let mut idb = [0u8; 8];
        super::random_bytes(&mut idb);
        let id = hex::encode(idb);
        let mut salt = [0u8; 16];
        super::random_bytes(&mut salt);
        let (kdf, params) = match KeyFileSecret::parse(password) {
            Some(_) => (KDF_KEY_FILE, None),
            None => ("argon2id", Some(params)),
        };
        let kek = kek(password, &salt, params)?;
        let sealed = Sealer::encrypted(&kek).seal(&aad(version, &id), plain);
        Ok(KeySlot {
            version,
            id,
            created: chrono::Utc::now().to_rfc3339(),
            host: crate::hostname(),
            user: String::new(),
            label: String::new(),
            generation: None,
            kdf: kdf.into(),
            params,
            salt: hex::encode(salt),
            keys: hex::encode(sealed),
        })
    }

    /// A slot holding the keys in the clear, for `--encryption none`.
    pub fn plain(keys: &MasterKeys) -> KeySlot {
        KeySlot {
            version: 1,
            id: "0000000000000000".into(),
            created: chrono::Utc::now().to_rfc3339(),
            host: crate::hostname(),
            user: String::new(),
            label: String::new(),
            generation: None,
            kdf: "none".into(),
            params: None,
            salt: String::new(),
            keys: hex::encode(keys.to_bytes()),
        }
    }

    /// Unwraps the keyring (a version 1 slot gives generation 0 only);
    /// `Ok(None)` when the password does not fit.
    pub fn open(&self, password: &[u8]) -> Result<Option<Keyring>> {
        let bad = |r: &str| Error::corrupt(format!("key slot {}", self.id), r.to_string());
        if self.version != 1 && self.version != 2 {
            return Err(bad(&format!(
                "slot format {} is not supported; upgrade opc-store",
                self.version
            )));
        }
        let bytes = hex::decode(&self.keys).map_err(|_| bad("keys are not hex"))?;
        let parse = |pt: &[u8]| -> Result<Keyring> {
            if self.version == 1 {
                MasterKeys::from_bytes(pt)
                    .map(|k| Keyring::from_master(&k))
                    .ok_or_else(|| bad("keys must be 96 bytes"))
            } else {
                Keyring::from_bytes(pt).ok_or_else(|| bad("malformed keyring"))
            }
        };
        let is_key_file = KeyFileSecret::parse(password).is_some();
        match self.kdf.as_str() {
            // Only `init --encryption none` writes these, always version 1.
            "none" if self.version == 1 => Ok(Some(parse(&bytes)?)),
            // A key file opens only key-file slots, and a password only
            // Argon2id ones: neither pays for a KDF run that cannot succeed.
            KDF_KEY_FILE | "argon2id" if (self.kdf == KDF_KEY_FILE) != is_key_file => Ok(None),
            KDF_KEY_FILE => {
                let salt = hex::decode(&self.salt).map_err(|_| bad("salt is not hex"))?;
                self.unseal(&bytes, &*kek(password, &salt, None)?, parse)
            }
            "argon2id" => {
                let params = self
                    .params
                    .ok_or_else(|| bad("missing Argon2 parameters"))?;
                // Slots are plain files on the storage: a planted slot with
                // huge costs must not exhaust memory or stall every open.
                if params.memory_kib > MAX_MEMORY_KIB
                    || params.iterations > 64
                    || params.parallelism > 64
                {
                    return Err(bad("Argon2 parameters beyond the accepted limits"));
                }
                let salt = hex::decode(&self.salt).map_err(|_| bad("salt is not hex"))?;
                self.unseal(&bytes, &*kek(password, &salt, Some(params))?, parse)
            }
            other => Err(bad(&format!("unknown kdf {other:?}"))),
        }
    }

    fn unseal(
        &self,
        sealed: &[u8],
        kek: &[u8; 32],
        parse: impl Fn(&[u8]) -> Result<Keyring>,
    ) -> Result<Option<Keyring>> {
        match Sealer::encrypted(kek).open(&aad(self.version, &self.id), sealed) {
            None => Ok(None),
            Some(pt) => Ok(Some(parse(&zeroize::Zeroizing::new(pt))?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_password_does_not_open() {
        let keys = MasterKeys::generate();
        let p = KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let slot = KeySlot::create(&keys, b"right", p).unwrap();
        assert!(slot.open(b"wrong").unwrap().is_none());
        let k = slot.open(b"right").unwrap().unwrap();
        assert_eq!(k.numbers(), vec![0]);
        assert_eq!(k.master().to_bytes(), keys.to_bytes());
    }

    const CHEAP: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn version_2_wraps_a_keyring_and_survives_json() {
        let ring = Keyring::from_master(&MasterKeys::generate()).rotated();
        let slot = KeySlot::create_keyring(&ring, b"pw", CHEAP, "laptop").unwrap();
        let json = serde_json::to_vec(&slot).unwrap();
        let back: KeySlot = serde_json::from_slice(&json).unwrap();
        assert_eq!((back.version, back.generation), (2, Some(1)));
        assert_eq!(back.label, "laptop");
        let opened = back.open(b"pw").unwrap().unwrap();
        assert_eq!(opened.to_bytes(), ring.to_bytes());
        assert!(back.open(b"other").unwrap().is_none());
    }

    #[test]
    fn version_is_bound_to_the_wrapped_keys() {
        // Relabelling a version 2 slot as 1 (or the reverse) must not make it
        // parse its plaintext the other way: the AAD names the version.
        let ring = Keyring::from_master(&MasterKeys::generate());
        let mut slot = KeySlot::create_keyring(&ring, b"pw", CHEAP, "").unwrap();
        slot.version = 1;
        assert!(slot.open(b"pw").unwrap().is_none());
        let mut v1 = KeySlot::create(&ring.master(), b"pw", CHEAP).unwrap();
        v1.version = 2;
        assert!(v1.open(b"pw").unwrap().is_none());
        v1.version = 3;
        assert!(v1.open(b"pw").is_err());
    }

    #[test]
    fn a_key_file_opens_only_its_own_kind_of_slot() {
        let ring = Keyring::from_master(&MasterKeys::generate());
        let text = KeyFileSecret::generate().to_text();
        let secret = text.trim_end().as_bytes();
        let slot = KeySlot::create_keyring(&ring, secret, CHEAP, "timer").unwrap();
        assert_eq!((slot.kdf.as_str(), slot.params), (KDF_KEY_FILE, None));
        let back: KeySlot = serde_json::from_slice(&serde_json::to_vec(&slot).unwrap()).unwrap();
        assert_eq!(
            back.open(secret).unwrap().unwrap().to_bytes(),
            ring.to_bytes()
        );
        // Another key file, or a password, do not open it.
        let other = KeyFileSecret::generate().to_text();
        assert!(back.open(other.trim_end().as_bytes()).unwrap().is_none());
        assert!(back.open(b"pw").unwrap().is_none());
        // Nor does a key file open a password's slot, even one whose
        // password happens to be the key file's text.
        let pw_slot = KeySlot::create_keyring(&ring, b"pw", CHEAP, "").unwrap();
        assert!(pw_slot.open(secret).unwrap().is_none());
        let mut forged = pw_slot.clone();
        forged.kdf = KDF_KEY_FILE.into();
        assert!(forged.open(secret).unwrap().is_none());
    }
}
