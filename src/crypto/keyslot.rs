//! Password-wrapped key slots. Each slot wraps the same [`MasterKeys`] with a
//! key derived from one password by Argon2id, so passwords can be added and
//! removed without re-encrypting data. Format: `docs/FORMAT.md` §4.

use serde::{Deserialize, Serialize};

use super::{MasterKeys, Sealer};
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
            parallelism: 1,
        }
    }
}

/// Largest Argon2 memory a slot may ask for: 4 GiB.
pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;

/// One key slot, stored as JSON at `keys/<id>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySlot {
    /// Slot format version (1).
    pub version: u32,
    /// 16 hex digits naming the slot.
    pub id: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// Host that created the slot (informational).
    pub host: String,
    /// `argon2id`, or `none` for unencrypted repositories.
    pub kdf: String,
    /// Argon2id parameters (absent for `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<KdfParams>,
    /// Hex salt (16 bytes) for Argon2id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub salt: String,
    /// Hex of the sealed 96-byte master keys (plain for `none`).
    pub keys: String,
}

fn aad(id: &str) -> Vec<u8> {
    let mut a = b"opc-store keyslot v1 ".to_vec();
    a.extend_from_slice(id.as_bytes());
    a
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

impl KeySlot {
    /// Wraps `keys` under `password`.
    pub fn create(keys: &MasterKeys, password: &[u8], params: KdfParams) -> Result<KeySlot> {
        let mut idb = [0u8; 8];
        super::random_bytes(&mut idb);
        let id = hex::encode(idb);
        let mut salt = [0u8; 16];
        super::random_bytes(&mut salt);
        let mut kek = derive(password, &salt, params)?;
        let sealed = Sealer::encrypted(&kek).seal(&aad(&id), &keys.to_bytes());
        zeroize::Zeroize::zeroize(&mut kek);
        Ok(KeySlot {
            version: 1,
            id,
            created: chrono::Utc::now().to_rfc3339(),
            host: crate::hostname(),
            kdf: "argon2id".into(),
            params: Some(params),
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
            kdf: "none".into(),
            params: None,
            salt: String::new(),
            keys: hex::encode(keys.to_bytes()),
        }
    }

    /// Unwraps the master keys; `Ok(None)` when the password does not fit.
    pub fn open(&self, password: &[u8]) -> Result<Option<MasterKeys>> {
        let bad = |r: &str| Error::corrupt(format!("key slot {}", self.id), r.to_string());
        if self.version != 1 {
            return Err(bad(&format!(
                "slot format {} is not supported; upgrade opc-store",
                self.version
            )));
        }
        let bytes = hex::decode(&self.keys).map_err(|_| bad("keys are not hex"))?;
        match self.kdf.as_str() {
            "none" => Ok(Some(
                MasterKeys::from_bytes(&bytes).ok_or_else(|| bad("keys must be 96 bytes"))?,
            )),
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
                let mut kek = derive(password, &salt, params)?;
                let opened = Sealer::encrypted(&kek).open(&aad(&self.id), &bytes);
                zeroize::Zeroize::zeroize(&mut kek);
                match opened {
                    None => Ok(None),
                    Some(mut pt) => {
                        let k = MasterKeys::from_bytes(&pt);
                        zeroize::Zeroize::zeroize(&mut pt);
                        Ok(Some(k.ok_or_else(|| bad("keys must be 96 bytes"))?))
                    }
                }
            }
            other => Err(bad(&format!("unknown kdf {other:?}"))),
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
        assert_eq!(k.to_bytes(), keys.to_bytes());
    }
}
