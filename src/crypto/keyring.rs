//! The keyring: the repository's key generations. `key rotate` adds a new
//! encryption key (a generation) that seals everything written from then on;
//! older generations stay in the keyring so old objects remain readable
//! until `key reencrypt` rewrites them and drops the old generations.
//!
//! The chunk-id and chunker keys are not rotated: new blob ids must equal
//! old ones for the same content, or nothing written after a rotation would
//! deduplicate against what was written before. Format: `docs/FORMAT.md` §4.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{MasterKeys, Sealer};

/// Most generations a keyring may hold, so a slot cannot ask for absurd
/// allocations (each is 36 bytes of plaintext).
pub const MAX_GENERATIONS: usize = 1024;

/// One encryption key and its generation number.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Generation {
    /// Number of the generation: 0 for the key `init` made, then +1 per
    /// rotation. Never reused, also after older ones are dropped.
    pub number: u32,
    /// XChaCha20-Poly1305 key.
    pub encryption: [u8; 32],
}

/// All key generations, oldest first, plus the stable chunk-id and chunker
/// keys. Zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Keyring {
    chunk_id: [u8; 32],
    chunker: [u8; 32],
    generations: Vec<Generation>,
}

impl Keyring {
    /// A keyring with the single generation 0 holding `keys` (what `init`
    /// makes and what a version 1 slot wraps).
    pub fn from_master(keys: &MasterKeys) -> Keyring {
        Keyring {
            chunk_id: keys.chunk_id,
            chunker: keys.chunker,
            generations: vec![Generation {
                number: 0,
                encryption: keys.encryption,
            }],
        }
    }

    /// The master keys for writing: the newest encryption key with the
    /// stable chunk-id and chunker keys.
    pub fn master(&self) -> MasterKeys {
        MasterKeys {
            encryption: self.newest().encryption,
            chunk_id: self.chunk_id,
            chunker: self.chunker,
        }
    }

    /// The newest generation, which seals new objects.
    pub fn newest(&self) -> &Generation {
        self.generations.last().expect("a keyring is never empty")
    }

    /// Generation numbers, oldest first.
    pub fn numbers(&self) -> Vec<u32> {
        self.generations.iter().map(|g| g.number).collect()
    }

    /// A sealer that seals with the newest generation and opens with any.
    pub fn sealer(&self) -> Sealer {
        let keys: Vec<[u8; 32]> = self
            .generations
            .iter()
            .rev()
            .map(|g| g.encryption)
            .collect();
        Sealer::keyring(&keys)
    }

    /// This keyring plus a new random generation.
    pub fn rotated(&self) -> Keyring {
        let mut next = self.clone();
        let mut key = [0u8; 32];
        super::random_bytes(&mut key);
        next.generations.push(Generation {
            number: self.newest().number + 1,
            encryption: key,
        });
        key.zeroize();
        next
    }

    /// This keyring without its older generations.
    pub fn newest_only(&self) -> Keyring {
        Keyring {
            chunk_id: self.chunk_id,
            chunker: self.chunker,
            generations: vec![self.newest().clone()],
        }
    }

    /// Serialization wrapped by a version 2 slot:
    /// `u32le count || chunk-id key || chunker key || count × (u32le number || key)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(68 + 36 * self.generations.len());
        out.extend_from_slice(&(self.generations.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.chunk_id);
        out.extend_from_slice(&self.chunker);
        for g in &self.generations {
            out.extend_from_slice(&g.number.to_le_bytes());
            out.extend_from_slice(&g.encryption);
        }
        out
    }

    /// Inverse of [`Keyring::to_bytes`]; `None` unless the length is exact,
    /// the count is 1..=[`MAX_GENERATIONS`] and numbers strictly increase.
    pub fn from_bytes(b: &[u8]) -> Option<Keyring> {
        let count = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        if count == 0 || count > MAX_GENERATIONS || b.len() != 68 + 36 * count {
            return None;
        }
        let mut k = Keyring {
            chunk_id: [0; 32],
            chunker: [0; 32],
            generations: Vec::with_capacity(count),
        };
        k.chunk_id.copy_from_slice(&b[4..36]);
        k.chunker.copy_from_slice(&b[36..68]);
        for e in b[68..].chunks_exact(36) {
            let number = u32::from_le_bytes(e[..4].try_into().ok()?);
            if k.generations.last().is_some_and(|g| g.number >= number) {
                return None;
            }
            let mut g = Generation {
                number,
                encryption: [0; 32],
            };
            g.encryption.copy_from_slice(&e[4..]);
            k.generations.push(g);
        }
        Some(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_rotate_and_drop() {
        let k0 = Keyring::from_master(&MasterKeys::generate());
        let k2 = k0.rotated().rotated();
        assert_eq!(k2.numbers(), vec![0, 1, 2]);
        let back = Keyring::from_bytes(&k2.to_bytes()).unwrap();
        assert_eq!(back.numbers(), vec![0, 1, 2]);
        assert_eq!(back.to_bytes(), k2.to_bytes());
        // Dedup continuity: ids and chunking do not change with rotation.
        assert_eq!(k2.master().chunk_id, k0.master().chunk_id);
        assert_eq!(k2.master().gear_seed(), k0.master().gear_seed());
        assert_ne!(k2.master().encryption, k0.master().encryption);
        let last = k2.newest_only();
        assert_eq!(last.numbers(), vec![2]);
        assert_eq!(last.master().encryption, k2.master().encryption);
    }

    #[test]
    fn sealer_writes_newest_and_reads_all() {
        let k0 = Keyring::from_master(&MasterKeys::generate());
        let k1 = k0.rotated();
        let old = k0.sealer().seal(b"a", b"old");
        let new = k1.sealer().seal(b"a", b"new");
        assert_eq!(
            k1.sealer().open_which(b"a", &old).unwrap(),
            (1, b"old".to_vec())
        );
        assert_eq!(
            k1.sealer().open_which(b"a", &new).unwrap(),
            (0, b"new".to_vec())
        );
        assert!(k0.sealer().open(b"a", &new).is_none());
        assert!(k1.newest_only().sealer().open(b"a", &old).is_none());
    }

    #[test]
    fn malformed_bytes_are_refused() {
        let good = Keyring::from_master(&MasterKeys::generate())
            .rotated()
            .to_bytes();
        assert!(Keyring::from_bytes(&good[..good.len() - 1]).is_none());
        assert!(Keyring::from_bytes(&[good.clone(), vec![0]].concat()).is_none());
        let mut zero = good.clone();
        zero[..4].copy_from_slice(&0u32.to_le_bytes());
        assert!(Keyring::from_bytes(&zero).is_none());
        let mut dup = good.clone();
        dup[68 + 36..68 + 40].copy_from_slice(&0u32.to_le_bytes());
        assert!(Keyring::from_bytes(&dup).is_none(), "numbers must increase");
        assert!(Keyring::from_bytes(&[]).is_none());
    }
}
