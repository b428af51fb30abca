//! Key files: a generated 256-bit secret for unattended runs. A key file is
//! given wherever a password file is; its slot wraps the keys under a key
//! derived by keyed BLAKE3 instead of Argon2id. A password-hashing cost
//! only slows guessing of secrets a person chose; against 256 random bits
//! it buys nothing, and every timer-driven command would pay it.
//! Format: `docs/FORMAT.md` §4.

use zeroize::Zeroizing;

/// The line a key file holds: this prefix, then 64 hex digits.
pub const KEY_FILE_PREFIX: &str = "opc-store-key-v1:";

/// BLAKE3 `derive_key` context of key-file slots. Fixed forever.
const KEK_CONTEXT: &str = "opc-store 2026-11-30 key-file slot KEK";

/// The secret of a key file.
pub struct KeyFileSecret(Zeroizing<[u8; 32]>);

impl KeyFileSecret {
    /// A new random secret.
    pub fn generate() -> KeyFileSecret {
        let mut s = Zeroizing::new([0u8; 32]);
        super::random_bytes(&mut s[..]);
        KeyFileSecret(s)
    }

    /// The secret held by `bytes` (a password file's content, trailing
    /// newlines already dropped), or `None` when they are not exactly a
    /// key-file line: then they are a password.
    pub fn parse(bytes: &[u8]) -> Option<KeyFileSecret> {
        let hex_part = bytes.strip_prefix(KEY_FILE_PREFIX.as_bytes())?;
        if hex_part.len() != 64 {
            return None;
        }
        let mut s = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_part, &mut s[..]).ok()?;
        Some(KeyFileSecret(s))
    }

    /// The file's content: one line, newline-terminated.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{KEY_FILE_PREFIX}{}\n", hex::encode(&self.0[..])))
    }

    /// The key-encryption key of a slot with `salt`.
    pub(super) fn kek(&self, salt: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut h = blake3::Hasher::new_derive_key(KEK_CONTEXT);
        h.update(salt);
        h.update(&self.0[..]);
        Zeroizing::new(*h.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_parses_back_and_near_misses_are_passwords() {
        let s = KeyFileSecret::generate();
        let text = s.to_text();
        let line = text.trim_end_matches('\n').as_bytes();
        let back = KeyFileSecret::parse(line).expect("its own text parses");
        assert_eq!(back.kek(b"salt")[..], s.kek(b"salt")[..]);
        assert_ne!(s.kek(b"salt")[..], s.kek(b"pepper")[..]);
        // One digit short, a non-hex digit, another prefix: plain passwords.
        assert!(KeyFileSecret::parse(&line[..line.len() - 1]).is_none());
        let mut bad = line.to_vec();
        *bad.last_mut().unwrap() = b'g';
        assert!(KeyFileSecret::parse(&bad).is_none());
        assert!(KeyFileSecret::parse(&line[1..]).is_none());
        assert!(KeyFileSecret::parse(b"correct horse battery staple").is_none());
    }
}
