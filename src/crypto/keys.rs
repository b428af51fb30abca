//! The repository's random master keys.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Three independent random keys, created once by `init` and wrapped by
/// every key slot. Zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKeys {
    /// XChaCha20-Poly1305 key sealing every object.
    pub encryption: [u8; 32],
    /// BLAKE3 key for blob ids, so ids reveal nothing about content to
    /// whoever lacks the key.
    pub chunk_id: [u8; 32],
    /// Secret from which the FastCDC gear-table seed is derived.
    pub chunker: [u8; 32],
}

impl MasterKeys {
    /// Fresh random keys.
    pub fn generate() -> MasterKeys {
        let mut k = MasterKeys {
            encryption: [0; 32],
            chunk_id: [0; 32],
            chunker: [0; 32],
        };
        super::random_bytes(&mut k.encryption);
        super::random_bytes(&mut k.chunk_id);
        super::random_bytes(&mut k.chunker);
        k
    }

    /// The 96-byte serialization wrapped inside key slots.
    pub fn to_bytes(&self) -> [u8; 96] {
        let mut out = [0u8; 96];
        out[..32].copy_from_slice(&self.encryption);
        out[32..64].copy_from_slice(&self.chunk_id);
        out[64..].copy_from_slice(&self.chunker);
        out
    }

    /// Inverse of [`MasterKeys::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Option<MasterKeys> {
        if b.len() != 96 {
            return None;
        }
        let mut k = MasterKeys {
            encryption: [0; 32],
            chunk_id: [0; 32],
            chunker: [0; 32],
        };
        k.encryption.copy_from_slice(&b[..32]);
        k.chunk_id.copy_from_slice(&b[32..64]);
        k.chunker.copy_from_slice(&b[64..]);
        Some(k)
    }

    /// Keyed BLAKE3 of `data`: the id of a blob holding it.
    pub fn blob_id(&self, data: &[u8]) -> crate::id::Id {
        crate::id::Id(*blake3::keyed_hash(&self.chunk_id, data).as_bytes())
    }

    /// A fresh hasher giving [`MasterKeys::blob_id`] of what it is fed, for
    /// content that arrives in pieces.
    pub fn blob_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.chunk_id)
    }

    /// The 64-bit seed XOR'd into FastCDC's gear table. Derived rather than
    /// stored so one secret serves every chunking policy.
    pub fn gear_seed(&self) -> u64 {
        let h = blake3::derive_key("opc-store 2026 fastcdc gear seed", &self.chunker);
        u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
    }
}
