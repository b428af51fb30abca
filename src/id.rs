//! 32-byte identifiers. Blob ids are keyed BLAKE3 of the plaintext; pack ids
//! are plain BLAKE3 of the pack file; snapshot ids are random.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A 32-byte identifier, shown as 64 hex digits (8 in short form).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Id(#[serde(with = "serde_bytes_array")] pub [u8; 32]);

impl Id {
    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Id> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Id(out))
    }

    /// Full hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, as shown to users.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// A fresh random id.
    pub fn random() -> Id {
        let mut out = [0u8; 32];
        crate::crypto::random_bytes(&mut out);
        Id(out)
    }

    /// Builds an id from a slice that must be exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Id> {
        b.try_into().ok().map(Id)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

/// The kind of a stored blob; part of every blob's associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum BlobKind {
    /// A chunk of file content.
    Data = 0,
    /// An encoded directory listing.
    Tree = 1,
}

impl BlobKind {
    /// Decodes the on-disk byte.
    pub fn from_u8(b: u8) -> Option<BlobKind> {
        match b {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}

/// CBOR has a byte-string type; serde's default for arrays is a list of
/// integers, three times larger, so ids go through serde_bytes.
mod serde_bytes_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(v))
        } else {
            serde_bytes::serialize(&v[..], s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        use serde::de::Error;
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            let mut out = [0u8; 32];
            hex::decode_to_slice(&s, &mut out).map_err(D::Error::custom)?;
            Ok(out)
        } else {
            let b: serde_bytes::ByteBuf = serde_bytes::ByteBuf::deserialize(d)?;
            b.as_slice()
                .try_into()
                .map_err(|_| D::Error::custom("id must be 32 bytes"))
        }
    }
}
