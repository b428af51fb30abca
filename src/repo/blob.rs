//! The blob envelope: compress, frame, pad, seal. Format: `docs/FORMAT.md` §5.
//!
//! Plaintext frame: `flag u8 (0 raw, 1 zstd) || payload_len u32 LE ||
//! payload || zero padding`, padded with Padmé so the stored size shows only
//! a rounded length. AAD: `"opc-store blob v1" || kind u8 || id (32)`.

use crate::compress;
use crate::crypto::{padme, Sealer};
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};

const FRAME_HEADER: usize = 5;

fn aad(kind: BlobKind, id: &Id) -> [u8; 50] {
    let mut a = [0u8; 50];
    a[..17].copy_from_slice(b"opc-store blob v1");
    a[17] = kind as u8;
    a[18..].copy_from_slice(&id.0);
    a
}

/// Seals `data` (already identified as `id`) for storage in a pack.
pub fn seal(sealer: &Sealer, kind: BlobKind, id: &Id, data: &[u8], level: i32) -> Vec<u8> {
    let compressed = compress::compress(data, level);
    let (flag, payload): (u8, &[u8]) = match &compressed {
        Some(c) => (1, c),
        None => (0, data),
    };
    let framed_len = padme((FRAME_HEADER + payload.len()) as u64) as usize;
    let mut frame = Vec::with_capacity(framed_len);
    frame.push(flag);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    frame.resize(framed_len, 0);
    sealer.seal(&aad(kind, id), &frame)
}

/// Opens a sealed blob and checks that its content hashes to `id`.
/// `what` names the blob's location for error messages.
pub fn open(
    sealer: &Sealer,
    id_of: impl Fn(&[u8]) -> Id,
    kind: BlobKind,
    id: &Id,
    sealed: &[u8],
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    let (_, frame) = authenticate(sealer, kind, id, sealed, what)?;
    decode(&frame, id_of, id, raw_len, what)
}

/// Checks a sealed blob like [`open`]; when an older key generation sealed
/// it, returns it sealed again with the newest, else `None` (the stored
/// bytes are current). The frame, padding included, is kept as it is.
pub fn reseal(
    sealer: &Sealer,
    id_of: impl Fn(&[u8]) -> Id,
    kind: BlobKind,
    id: &Id,
    sealed: &[u8],
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<Option<Vec<u8>>> {
    let (generation, frame) = authenticate(sealer, kind, id, sealed, what)?;
    decode(&frame, id_of, id, raw_len, what)?;
    Ok((generation != 0).then(|| sealer.seal(&aad(kind, id), &frame)))
}

/// The frame inside a sealed blob and the key generation that sealed it;
/// the blob's kind and id are bound in as associated data.
fn authenticate(
    sealer: &Sealer,
    kind: BlobKind,
    id: &Id,
    sealed: &[u8],
    what: &dyn Fn() -> String,
) -> Result<(usize, Vec<u8>)> {
    sealer
        .open_which(&aad(kind, id), sealed)
        .ok_or_else(|| Error::Authentication { what: what() })
}

fn decode(
    frame: &[u8],
    id_of: impl Fn(&[u8]) -> Id,
    id: &Id,
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    if frame.len() < FRAME_HEADER {
        return Err(Error::corrupt(what(), "frame shorter than its header"));
    }
    let flag = frame[0];
    let len = u32::from_le_bytes(frame[1..5].try_into().expect("4 bytes")) as usize;
    let payload = frame
        .get(FRAME_HEADER..FRAME_HEADER + len)
        .ok_or_else(|| Error::corrupt(what(), "payload length beyond frame"))?;
    let data = match flag {
        0 => payload.to_vec(),
        1 => compress::decompress(payload, raw_len)
            .ok_or_else(|| Error::corrupt(what(), "zstd payload does not decompress"))?,
        f => {
            return Err(Error::corrupt(
                what(),
                format!("unknown compression flag {f}"),
            ))
        }
    };
    if data.len() != raw_len || id_of(&data) != *id {
        return Err(Error::corrupt(what(), "content does not match its id"));
    }
    Ok(data)
}
