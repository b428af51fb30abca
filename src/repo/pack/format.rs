//! Byte layout of a pack and its trailer. Format: `docs/FORMAT.md` §6.
//!
//! ```text
//! "OPCPACK\x02" | sealed blob or group ... | sealed trailer | trailer_len u32 LE
//! trailer plaintext: count u32 LE | count × entry (49 bytes) | zero padding
//! entry: kind u8 | id [32] | offset u64 LE | length u32 LE | raw_length u32 LE
//! ```
//!
//! Version 2 adds groups (§5.5): the kind byte's top bit marks a blob kept
//! inside a group, and consecutive marked entries with the same offset are
//! the members of one group, in the order of their bytes in it. Version 1
//! packs (no groups) are still read.

use crate::crypto::padme;
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};

/// First 8 bytes of every pack this version writes.
pub const PACK_MAGIC: &[u8; 8] = b"OPCPACK\x02";
/// First 8 bytes of a pack written before groups existed (still read).
pub const PACK_MAGIC_V1: &[u8; 8] = b"OPCPACK\x01";
/// Associated data of the trailer.
pub const TRAILER_AAD: &[u8] = b"opc-store pack trailer v1";
const ENTRY_LEN: usize = 49;
/// Largest group plaintext a reader accepts (writers stay near 1 MiB):
/// the length sizes the buffer a group is decompressed into.
pub const MAX_GROUP: u32 = 16 << 20;
/// Top bit of an entry's kind byte: the blob is a member of a group.
const GROUPED: u8 = 0x80;

/// Where a grouped blob sits inside its group's plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupSlot {
    /// Offset of the blob's bytes in the group's plaintext.
    pub inner: u32,
    /// The group's whole plaintext length.
    pub total: u32,
}

/// One blob's location inside a pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackEntry {
    /// Data or tree.
    pub kind: BlobKind,
    /// The blob id (keyed hash of its plaintext).
    pub id: Id,
    /// Offset of the sealed blob (or of its sealed group) from the start of the pack.
    pub offset: u64,
    /// Length of the sealed blob (or of its sealed group).
    pub length: u32,
    /// Length of the plaintext content.
    pub raw_length: u32,
    /// For a blob kept in a group: where in the group.
    pub group: Option<GroupSlot>,
}

impl PackEntry {
    /// The part of the stored bytes this blob accounts for: all of a
    /// blob's own sealed bytes, or its plaintext share of its group's.
    pub fn stored_share(&self) -> u64 {
        stored_share(self.length, self.raw_length, self.group)
    }
}

/// See [`PackEntry::stored_share`].
pub fn stored_share(length: u32, raw_length: u32, group: Option<GroupSlot>) -> u64 {
    match group {
        Some(g) if g.total > 0 => u64::from(length) * u64::from(raw_length) / u64::from(g.total),
        _ => u64::from(length),
    }
}

/// Encodes trailer plaintext, padded with Padmé.
pub fn encode_trailer(entries: &[PackEntry]) -> Vec<u8> {
    let len = 4 + entries.len() * ENTRY_LEN;
    let mut out = Vec::with_capacity(padme(len as u64) as usize);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        let flag = if e.group.is_some() { GROUPED } else { 0 };
        out.push(e.kind as u8 | flag);
        out.extend_from_slice(&e.id.0);
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.length.to_le_bytes());
        out.extend_from_slice(&e.raw_length.to_le_bytes());
    }
    out.resize(padme(len as u64) as usize, 0);
    out
}

/// Decodes trailer plaintext of a version 2 pack. `pack_body_len` is the
/// byte length of the blob area end (where the sealed trailer starts);
/// entries must lie inside `[8, pack_body_len)` and not overlap, except the
/// members of one group, which share their group's bytes.
pub fn decode_trailer(b: &[u8], pack_body_len: u64) -> Result<Vec<PackEntry>> {
    decode_trailer_version(b, pack_body_len, true)
}

/// [`decode_trailer`] for either pack version (`groups`: version 2).
pub fn decode_trailer_version(
    b: &[u8],
    pack_body_len: u64,
    groups: bool,
) -> Result<Vec<PackEntry>> {
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
    let mut out: Vec<PackEntry> = Vec::with_capacity(count);
    let mut next_free = PACK_MAGIC.len() as u64;
    // Index in `out` of the first member of the group being read.
    let mut group_start: Option<usize> = None;
    for i in 0..count {
        let e = &b[4 + i * ENTRY_LEN..4 + (i + 1) * ENTRY_LEN];
        let grouped = e[0] & GROUPED != 0;
        if grouped && !groups {
            return Err(bad("grouped blob in a version 1 pack"));
        }
        let kind = BlobKind::from_u8(e[0] & !GROUPED).ok_or_else(|| bad("unknown blob kind"))?;
        let mut entry = PackEntry {
            kind,
            id: Id::from_slice(&e[1..33]).expect("32 bytes"),
            offset: u64::from_le_bytes(e[33..41].try_into().expect("8 bytes")),
            length: u32::from_le_bytes(e[41..45].try_into().expect("4 bytes")),
            raw_length: u32::from_le_bytes(e[45..49].try_into().expect("4 bytes")),
            group: None,
        };
        let end = entry
            .offset
            .checked_add(entry.length as u64)
            .ok_or_else(|| bad("blob end overflows"))?;
        let joins = match group_start {
            Some(g) if grouped && out[g].offset == entry.offset => {
                if out[g].length != entry.length || out[g].kind != entry.kind {
                    return Err(bad("members of one group disagree on its length or kind"));
                }
                true
            }
            _ => false,
        };
        if joins {
            let prev = out.last().expect("a group has a first member");
            let slot = prev.group.expect("members carry a slot");
            let inner = slot
                .inner
                .checked_add(prev.raw_length)
                .ok_or_else(|| bad("group longer than 4 GiB"))?;
            entry.group = Some(GroupSlot { inner, total: 0 });
        } else {
            if let Some(g) = group_start.take() {
                close_group(&mut out[g..]).map_err(|r| bad(&r))?;
            }
            if entry.offset < next_free || end > pack_body_len {
                return Err(bad("blob outside the pack body or overlapping another"));
            }
            next_free = end;
            if grouped {
                group_start = Some(out.len());
                entry.group = Some(GroupSlot { inner: 0, total: 0 });
            }
        }
        out.push(entry);
    }
    if let Some(g) = group_start {
        close_group(&mut out[g..]).map_err(|r| bad(&r))?;
    }
    if b[need..].iter().any(|&x| x != 0) {
        return Err(bad("non-zero padding"));
    }
    Ok(out)
}

/// Sets the total length on every member of a group just read.
fn close_group(members: &mut [PackEntry]) -> std::result::Result<(), String> {
    let last = members.last().expect("a group has members");
    let slot = last.group.expect("members carry a slot");
    let total = slot
        .inner
        .checked_add(last.raw_length)
        .ok_or("group longer than 4 GiB")?;
    if total > MAX_GROUP {
        return Err("group longer than 16 MiB".into());
    }
    for m in members {
        if let Some(s) = m.group.as_mut() {
            s.total = total;
        }
    }
    Ok(())
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
                    id: Id([i as u8; 32]), offset: off, length: l, raw_length: l / 2, group: None };
                off += l as u64;
                e
            }).collect();
            let enc = encode_trailer(&entries);
            prop_assert_eq!(decode_trailer(&enc, off).unwrap(), entries);
        }

        #[test]
        fn trailer_with_groups_round_trip(items in proptest::collection::vec(
            (1u32..100_000, proptest::collection::vec(1u32..70_000, 0..6)), 0..30)) {
            // (sealed length, member raw lengths): no members = a lone blob.
            let mut off = 8u64;
            let mut entries = Vec::new();
            for (n, (len, members)) in items.iter().enumerate() {
                let total: u32 = members.iter().sum();
                let mut inner = 0;
                for (m, &raw) in members.iter().enumerate() {
                    entries.push(PackEntry { kind: BlobKind::Data, id: Id([(n * 7 + m) as u8; 32]),
                        offset: off, length: *len, raw_length: raw,
                        group: Some(GroupSlot { inner, total }) });
                    inner += raw;
                }
                if members.is_empty() {
                    entries.push(PackEntry { kind: BlobKind::Tree, id: Id([n as u8; 32]),
                        offset: off, length: *len, raw_length: len / 3, group: None });
                }
                off += *len as u64;
            }
            let enc = encode_trailer(&entries);
            prop_assert_eq!(decode_trailer(&enc, off).unwrap(), entries.clone());
            // A version 1 pack may not hold groups.
            let has_groups = entries.iter().any(|e| e.group.is_some());
            prop_assert_eq!(decode_trailer_version(&enc, off, false).is_ok(), !has_groups);
        }

        #[test]
        fn trailer_decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600), body in 0u64..1_000_000) {
            let _ = decode_trailer(&b, body);
        }
    }

    fn member(id: u8, offset: u64, length: u32, raw: u32) -> PackEntry {
        PackEntry {
            kind: BlobKind::Data,
            id: Id([id; 32]),
            offset,
            length,
            raw_length: raw,
            group: Some(GroupSlot { inner: 0, total: 0 }),
        }
    }

    #[test]
    fn groups_that_disagree_or_repeat_are_refused() {
        // Members of one group with different sealed lengths.
        let enc = encode_trailer(&[member(1, 8, 100, 10), member(2, 8, 90, 10)]);
        assert!(decode_trailer(&enc, 200).is_err());
        // The same group listed twice, apart: the second overlaps the first.
        let enc = encode_trailer(&[
            member(1, 8, 100, 10),
            member(2, 108, 50, 10),
            member(3, 8, 100, 10),
        ]);
        assert!(decode_trailer(&enc, 300).is_err());
        // A lone blob at a group's offset overlaps it.
        let mut lone = member(4, 8, 100, 10);
        lone.group = None;
        let enc = encode_trailer(&[member(1, 8, 100, 10), lone]);
        assert!(decode_trailer(&enc, 300).is_err());
        // Inner offsets and the total come from the members' raw lengths.
        let enc = encode_trailer(&[member(1, 8, 100, 10), member(2, 8, 100, 25)]);
        let d = decode_trailer(&enc, 300).unwrap();
        assert_eq!(
            d[1].group,
            Some(GroupSlot {
                inner: 10,
                total: 35
            })
        );
        assert_eq!(
            d[0].group,
            Some(GroupSlot {
                inner: 0,
                total: 35
            })
        );
        assert_eq!(d[1].stored_share(), 100 * 25 / 35);
    }
}
