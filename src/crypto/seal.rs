//! Authenticated sealing of every stored object with XChaCha20-Poly1305.
//!
//! Sealed form: `nonce (24) || ciphertext || tag (16)`. The associated data
//! binds the object's kind and id, so a valid object cannot be served in
//! place of another. In a repository created with `--encryption none` the
//! form is `plaintext || BLAKE3(len(aad) as u64 LE || aad || plaintext)[..16]`:
//! corruption is still detected, tampering is not (there is no secret).
//!
//! After `key rotate` a sealer holds several keys: it seals with the newest
//! and opens by trying each, newest first. The Poly1305 tag tells which key
//! fits (a wrong key fails authentication before anything is decrypted), so
//! no key id needs to be stored and the sealed form is unchanged.

use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use std::ops::Range;

/// Nonce length of the sealed form.
pub const NONCE_LEN: usize = 24;
/// Authentication tag length of the sealed form.
pub const TAG_LEN: usize = 16;

/// Seals and opens objects with the repository's encryption key.
#[derive(Clone)]
pub enum Sealer {
    /// XChaCha20-Poly1305 with a random 192-bit nonce per object. The first
    /// key seals; all are tried, in order, to open.
    Encrypted(Vec<XChaCha20Poly1305>),
    /// No secrecy, only a checksum (repositories made with `--encryption none`).
    Plain,
}

impl Sealer {
    /// A sealer for the given 32-byte key.
    pub fn encrypted(key: &[u8; 32]) -> Sealer {
        Sealer::keyring(std::slice::from_ref(key))
    }

    /// A sealer that seals with `keys[0]` and opens with any of `keys`,
    /// tried in order (newest generation first). `keys` must not be empty.
    pub fn keyring(keys: &[[u8; 32]]) -> Sealer {
        assert!(!keys.is_empty(), "a sealer needs at least one key");
        Sealer::Encrypted(
            keys.iter()
                .map(|k| XChaCha20Poly1305::new(k.into()))
                .collect(),
        )
    }

    /// Bytes a sealed object adds to its plaintext.
    pub fn overhead(&self) -> usize {
        match self {
            Sealer::Encrypted(_) => NONCE_LEN + TAG_LEN,
            Sealer::Plain => TAG_LEN,
        }
    }

    /// Seals `plaintext` with `aad` bound in.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.prefix_len() + plaintext.len() + TAG_LEN);
        buf.resize(self.prefix_len(), 0);
        buf.extend_from_slice(plaintext);
        self.seal_buf(aad, buf)
    }

    /// Bytes a buffer for [`Sealer::seal_buf`] reserves in front of the
    /// plaintext (the nonce's place).
    pub fn prefix_len(&self) -> usize {
        match self {
            Sealer::Encrypted(_) => NONCE_LEN,
            Sealer::Plain => 0,
        }
    }

    /// Seals in place the plaintext of `buf`, which follows
    /// [`Sealer::prefix_len`] reserved bytes; returns the sealed form. With
    /// [`TAG_LEN`] bytes of spare capacity nothing is copied: large blobs
    /// and groups are framed straight into such a buffer.
    pub fn seal_buf(&self, aad: &[u8], mut buf: Vec<u8>) -> Vec<u8> {
        match self {
            Sealer::Encrypted(ciphers) => {
                let mut nonce = [0u8; NONCE_LEN];
                super::random_bytes(&mut nonce);
                buf[..NONCE_LEN].copy_from_slice(&nonce);
                let tag = ciphers[0]
                    .encrypt_in_place_detached(
                        XNonce::from_slice(&nonce),
                        aad,
                        &mut buf[NONCE_LEN..],
                    )
                    // Only fails for messages beyond 256 GiB, far above any object.
                    .expect("XChaCha20-Poly1305 encryption cannot fail below 256 GiB");
                buf.extend_from_slice(&tag);
                buf
            }
            Sealer::Plain => {
                let tag = plain_tag(aad, &buf);
                buf.extend_from_slice(&tag);
                buf
            }
        }
    }

    /// Opens `sealed` where it lies: the plaintext is decrypted in the
    /// buffer (no second buffer of its size) and its range returned, with
    /// the key generation as in [`Sealer::open_which`]. `None`, the buffer
    /// unchanged, when no key authenticates it (the tag is checked before
    /// anything is decrypted).
    pub fn open_in_place(&self, aad: &[u8], sealed: &mut [u8]) -> Option<(usize, Range<usize>)> {
        match self {
            Sealer::Encrypted(ciphers) => {
                if sealed.len() < NONCE_LEN + TAG_LEN {
                    return None;
                }
                let end = sealed.len() - TAG_LEN;
                let (head, rest) = sealed.split_at_mut(NONCE_LEN);
                let (ct, tag) = rest.split_at_mut(end - NONCE_LEN);
                let nonce = XNonce::from_slice(head);
                let tag = Tag::from_slice(tag);
                ciphers.iter().enumerate().find_map(|(i, c)| {
                    c.decrypt_in_place_detached(nonce, aad, ct, tag)
                        .ok()
                        .map(|()| (i, NONCE_LEN..end))
                })
            }
            Sealer::Plain => {
                if sealed.len() < TAG_LEN {
                    return None;
                }
                let end = sealed.len() - TAG_LEN;
                (plain_tag(aad, &sealed[..end]) == sealed[end..]).then_some((0, 0..end))
            }
        }
    }

    /// Opens a sealed object; `None` when it fails authentication.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        self.open_which(aad, sealed).map(|(_, pt)| pt)
    }

    /// Opens a sealed object and tells which key opened it: 0 for the key
    /// that seals (the newest generation), 1 for the one before, and so on.
    /// Always 0 for plain sealers. `None` when no key authenticates it.
    pub fn open_which(&self, aad: &[u8], sealed: &[u8]) -> Option<(usize, Vec<u8>)> {
        match self {
            Sealer::Encrypted(ciphers) => {
                if sealed.len() < NONCE_LEN + TAG_LEN {
                    return None;
                }
                let (nonce, ct) = sealed.split_at(NONCE_LEN);
                ciphers.iter().enumerate().find_map(|(i, c)| {
                    c.decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
                        .ok()
                        .map(|pt| (i, pt))
                })
            }
            Sealer::Plain => {
                if sealed.len() < TAG_LEN {
                    return None;
                }
                let (pt, tag) = sealed.split_at(sealed.len() - TAG_LEN);
                (plain_tag(aad, pt) == tag).then(|| (0, pt.to_vec()))
            }
        }
    }
}

fn plain_tag(aad: &[u8], pt: &[u8]) -> [u8; TAG_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(&(aad.len() as u64).to_le_bytes());
    h.update(aad);
    h.update(pt);
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..TAG_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        for s in [Sealer::encrypted(&[7u8; 32]), Sealer::Plain] {
            let sealed = s.seal(b"aad", b"hello world");
            assert_eq!(s.open(b"aad", &sealed).unwrap(), b"hello world");
            assert!(s.open(b"other", &sealed).is_none(), "aad must be bound");
            for i in 0..sealed.len() {
                let mut t = sealed.clone();
                t[i] ^= 1;
                assert!(s.open(b"aad", &t).is_none(), "flip at {i} undetected");
                let before = t.clone();
                assert!(
                    s.open_in_place(b"aad", &mut t).is_none(),
                    "in place: flip at {i}"
                );
                assert_eq!(t, before, "a failed open changed the buffer");
            }
            let mut buf = sealed.clone();
            let (generation, range) = s.open_in_place(b"aad", &mut buf).unwrap();
            assert_eq!((generation, &buf[range]), (0, &b"hello world"[..]));
        }
    }

    #[test]
    fn in_place_opens_with_an_older_key_after_a_newer_one_fails() {
        let old = Sealer::encrypted(&[1u8; 32]);
        let ring = Sealer::keyring(&[[2u8; 32], [1u8; 32]]);
        let mut buf = old.seal(b"aad", b"sealed before the rotation");
        let (generation, range) = ring.open_in_place(b"aad", &mut buf).unwrap();
        assert_eq!(generation, 1);
        assert_eq!(&buf[range], b"sealed before the rotation");
    }
}
