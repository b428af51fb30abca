//! Byte layout of a pack and its trailer. Format: `docs/FORMAT.md` §6.
//!
//! ```text
//! "OPCPACK\x01" | sealed blob ... | sealed trailer | trailer_len u32 LE
//! trailer plaintext: count u32 LE | count × entry (49 bytes) | zero padding
//! entry: kind u8 | id [32] | offset u64 LE | length u32 LE | raw_length u32 LE
//! ```

use crate::crypto::padme;
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};

/// First 8 bytes of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"OPCPACK\x01";
/// Associated data of the trailer.
pub const TRAILER_AAD: &[u8] = b"opc-store pack trailer v1";
const ENTRY_LEN: usize = 49;

/// One blob's location inside a pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackEntry {
    /// Data or tree.
    pub kind: BlobKind,
    /// The blob id (keyed hash of its plaintext).
    pub id: Id,
    /// Offset of the sealed blob from the start of the pack.
    pub offset: u64,
    /// Length of the sealed blob.
    pub length: u32,
    /// Length of the plaintext content.
    pub raw_length: u32,
}

/// Encodes trailer plaintext, padded with Padmé.
pub fn encode_trailer(entries: &[PackEntry]) -> Vec<u8> {
    let len = 4 + entries.len() * ENTRY_LEN;
    let mut out = Vec::with_capacity(padme(len as u64) as usize);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        out.push(e.kind as u8);
        out.extend_from_slice(&e.id.0);
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.length.to_le_bytes());
        out.extend_from_slice(&e.raw_length.to_le_bytes());
    }
    out.resize(padme(len as u64) as usize, 0);
    out
}

/// Decodes trailer plaintext. `pack_body_len` is the byte length of the
/// blob area end (where the sealed trailer starts); entries must lie
/// inside `[8, pack_body_len)` and not overlap.
pub fn decode_trailer(b: &[u8], pack_body_len: u64) -> Result<Vec<PackEntry>> {
    let bad = |r: &str| Error::corrupt("pack trailer", r.to_string());
    if b.len() < 4 {
        return Err(bad("shorter than its count"));
    }
    let count = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
    let need = count
        .checked_mul(ENTRY_LEN)
        .and_then(|n| n.checked_add(4))
        .ok_or_else(|| bad("count overflows"))?;
    if need > b.len() {
        return Err(bad("count larger than the trailer"));
    }
    let mut out = Vec::with_capacity(count);
    let mut next_free = PACK_MAGIC.len() as u64;
    for i in 0..count {
        let e = &b[4 + i * ENTRY_LEN..4 + (i + 1) * ENTRY_LEN];
        let kind = BlobKind::from_u8(e[0]).ok_or_else(|| bad("unknown blob kind"))?;
        let entry = PackEntry {
            kind,
            id: Id::from_slice(&e[1..33]).expect("32 bytes"),
            offset: u64::from_le_bytes(e[33..41].try_into().expect("8 bytes")),
            length: u32::from_le_bytes(e[41..45].try_into().expect("4 bytes")),
            raw_length: u32::from_le_bytes(e[45..49].try_into().expect("4 bytes")),
        };
        let end = entry
            .offset
            .checked_add(entry.length as u64)
            .ok_or_else(|| bad("blob end overflows"))?;
        if entry.offset < next_free || end > pack_body_len {
            return Err(bad("blob outside the pack body or overlapping another"));
        }
        next_free = end;
        out.push(entry);
    }
    if b[need..].iter().any(|&x| x != 0) {
        return Err(bad("non-zero padding"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn trailer_round_trip(lens in proptest::collection::vec(1u32..100_000, 0..50)) {
            let mut off = 8u64;
            let entries: Vec<PackEntry> = lens.iter().enumerate().map(|(i, &l)| {
                let e = PackEntry { kind: if i % 2 == 0 { BlobKind::Data } else { BlobKind::Tree },
                    id: Id([i as u8; 32]), offset: off, length: l, raw_length: l / 2 };
                off += l as u64;
                e
            }).collect();
            let enc = encode_trailer(&entries);
            prop_assert_eq!(decode_trailer(&enc, off).unwrap(), entries);
        }

        #[test]
        fn trailer_decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600), body in 0u64..1_000_000) {
            let _ = decode_trailer(&b, body);
        }
    }
}
