//! The blob envelope: compress, frame, pad, seal. Format: `docs/FORMAT.md` §5.
//!
//! Plaintext frame: `flag u8 (0 raw, 1 zstd, 2 zstd over the byte lanes) || payload_len u32 LE ||
//! payload || zero padding`, padded with Padmé so the stored size shows only
//! a rounded length. AAD: `"opc-store blob v1" || kind u8 || id (32)`.
//!
//! A group (§5.5) is the same envelope around the concatenated plaintexts
//! of several small blobs, compressed together, with the AAD
//! `"opc-store group v1" || kind u8`; each member is checked against its
//! id when it is taken out.

use crate::compress::{self, Codec};
use crate::crypto::{padme, Sealer};
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};
use crate::repo::pack::GroupSlot;

mod stream;
pub use stream::{open_streamed, STREAM_MIN, STREAM_PIECE};

const FRAME_HEADER: usize = 5;
/// Frame flags: the payload is the data, its zstd, or the zstd of its
/// lanes taken apart (§5.1; repositories of format version 2 and later).
const FLAG_RAW: u8 = 0;
const FLAG_ZSTD: u8 = 1;
const FLAG_LANES: u8 = 2;

fn aad(kind: BlobKind, id: &Id) -> [u8; 50] {
    let mut a = [0u8; 50];
    a[..17].copy_from_slice(b"opc-store blob v1");
    a[17] = kind as u8;
    a[18..].copy_from_slice(&id.0);
    a
}

fn group_aad(kind: BlobKind) -> [u8; 19] {
    let mut a = [0u8; 19];
    a[..18].copy_from_slice(b"opc-store group v1");
    a[18] = kind as u8;
    a
}

/// Seals `data` (already identified as `id`) for storage in a pack.
pub fn seal(sealer: &Sealer, kind: BlobKind, id: &Id, data: &[u8], codec: Codec) -> Vec<u8> {
    sealer.seal_buf(&aad(kind, id), frame(sealer, data, codec))
}

/// Seals the concatenated plaintexts of a group's members.
pub fn seal_group(sealer: &Sealer, kind: BlobKind, data: &[u8], codec: Codec) -> Vec<u8> {
    sealer.seal_buf(&group_aad(kind), frame(sealer, data, codec))
}

/// Opens a sealed group and returns its whole plaintext (`total` bytes);
/// take members out with [`member`], which checks each against its id.
pub fn open_group(
    sealer: &Sealer,
    kind: BlobKind,
    sealed: &[u8],
    total: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    open_group_owned(sealer, kind, sealed.to_vec(), total, what)
}

/// [`open_group`] of bytes read for it: opened where they lie, so a large
/// group is not held twice (a second buffer of its size, at every open,
/// left the allocator holding more than the restore ever used).
pub fn open_group_owned(
    sealer: &Sealer,
    kind: BlobKind,
    sealed: Vec<u8>,
    total: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    let data = open_frame_owned(sealer, &group_aad(kind), sealed, total, what)?;
    whole_group(data, total, what)
}

/// [`open_group`] of bytes the caller no longer needs sealed (a span of a
/// pack read for several blobs): decrypted where they lie.
pub fn open_group_in(
    sealer: &Sealer,
    kind: BlobKind,
    sealed: &mut [u8],
    total: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    let data = open_frame_in(sealer, &group_aad(kind), sealed, total, what)?;
    whole_group(data, total, what)
}

fn whole_group(data: Vec<u8>, total: usize, what: &dyn Fn() -> String) -> Result<Vec<u8>> {
    if data.len() != total {
        return Err(Error::corrupt(
            what(),
            "group shorter or longer than its members",
        ));
    }
    Ok(data)
}

/// The bytes of one member of an opened group, checked against its id.
pub fn member<'g>(
    group: &'g [u8],
    id_of: impl Fn(&[u8]) -> Id,
    id: &Id,
    slot: GroupSlot,
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<&'g [u8]> {
    let start = slot.inner as usize;
    let data = start
        .checked_add(raw_len)
        .and_then(|end| group.get(start..end))
        .ok_or_else(|| Error::corrupt(what(), "member beyond the end of its group"))?;
    if id_of(data) != *id {
        return Err(Error::corrupt(what(), "content does not match its id"));
    }
    Ok(data)
}

/// The plaintext frame of `data` (compressed when that makes it smaller,
/// padded with Padmé) behind `sealer`'s prefix, ready for
/// [`Sealer::seal_buf`]. zstd writes into the frame buffer itself, and the
/// payload moves up behind the header in place: one buffer per blob.
fn frame(sealer: &Sealer, data: &[u8], codec: Codec) -> Vec<u8> {
    let prefix = sealer.prefix_len();
    let head = prefix + FRAME_HEADER;
    // Room for the largest frame: the data stored raw, padded, sealed.
    let raw_framed = padme((FRAME_HEADER + data.len()) as u64) as usize;
    let mut frame = crate::util::large_buffer(prefix + raw_framed + crate::crypto::TAG_LEN);
    let flag = if compress::compress_into(data, codec, &mut frame) {
        let n = frame.len();
        frame.resize(head + n, 0);
        frame.copy_within(..n, head);
        if codec.lanes {
            FLAG_LANES
        } else {
            FLAG_ZSTD
        }
    } else {
        frame.clear();
        frame.resize(head, 0);
        frame.extend_from_slice(data);
        FLAG_RAW
    };
    let payload_len = frame.len() - head;
    frame[prefix] = flag;
    frame[prefix + 1..head].copy_from_slice(&(payload_len as u32).to_le_bytes());
    frame.resize(
        prefix + padme((FRAME_HEADER + payload_len) as u64) as usize,
        0,
    );
    frame
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
    open_owned(sealer, id_of, kind, id, sealed.to_vec(), raw_len, what)
}

/// [`open`] of bytes the caller no longer needs sealed (a span of a pack
/// read for several blobs): decrypted where they lie, so no copy of the
/// ciphertext is made.
pub fn open_in(
    sealer: &Sealer,
    id_of: impl Fn(&[u8]) -> Id,
    kind: BlobKind,
    id: &Id,
    sealed: &mut [u8],
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    let data = open_frame_in(sealer, &aad(kind, id), sealed, raw_len, what)?;
    check(&data, id_of, id, raw_len, what)?;
    Ok(data)
}

/// [`open`] of bytes read for it, opened where they lie (see
/// [`open_group_owned`]).
pub fn open_owned(
    sealer: &Sealer,
    id_of: impl Fn(&[u8]) -> Id,
    kind: BlobKind,
    id: &Id,
    sealed: Vec<u8>,
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    let data = open_frame_owned(sealer, &aad(kind, id), sealed, raw_len, what)?;
    check(&data, id_of, id, raw_len, what)?;
    Ok(data)
}

/// Authenticates and decrypts `sealed` in place and returns the payload:
/// decompressed, or (stored) cut out of the same buffer.
fn open_frame_owned(
    sealer: &Sealer,
    aad: &[u8],
    mut sealed: Vec<u8>,
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    let range = decrypt_in(sealer, aad, &mut sealed, what)?;
    sealed.truncate(range.end);
    unframe_at(sealed, range.start, raw_len, what)
}

/// Authenticates and decrypts `sealed` in place and returns the payload
/// in a buffer of its own.
fn open_frame_in(
    sealer: &Sealer,
    aad: &[u8],
    sealed: &mut [u8],
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    let range = decrypt_in(sealer, aad, sealed, what)?;
    let (flag, payload) = payload(&sealed[range], what)?;
    match flag {
        FLAG_RAW => Ok(payload.to_vec()),
        _ => decompress(flag, payload, raw_len, what),
    }
}

/// Where the frame lies in `sealed` once authenticated and decrypted.
fn decrypt_in(
    sealer: &Sealer,
    aad: &[u8],
    sealed: &mut [u8],
    what: &dyn Fn() -> String,
) -> Result<std::ops::Range<usize>> {
    sealer
        .open_in_place(aad, sealed)
        .map(|(_, range)| range)
        .ok_or_else(|| Error::Authentication { what: what() })
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
    let (flag, payload) = payload(&frame, what)?;
    let data = match flag {
        FLAG_RAW => std::borrow::Cow::Borrowed(payload),
        _ => std::borrow::Cow::Owned(decompress(flag, payload, raw_len, what)?),
    };
    check(&data, id_of, id, raw_len, what)?;
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

fn check(
    data: &[u8],
    id_of: impl Fn(&[u8]) -> Id,
    id: &Id,
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<()> {
    if data.len() != raw_len || id_of(data) != *id {
        return Err(Error::corrupt(what(), "content does not match its id"));
    }
    Ok(())
}

/// The payload of the frame that starts at `start` in `buf`,
/// decompressed (to `raw_len` bytes) if it was compressed. A stored
/// payload is cut out of `buf` in place: a tree listing a large database's
/// pages is megabytes, not copied again.
fn unframe_at(
    mut buf: Vec<u8>,
    start: usize,
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    let (flag, payload) = payload(&buf[start..], what)?;
    if flag != FLAG_RAW {
        return decompress(flag, payload, raw_len, what);
    }
    let len = payload.len();
    buf.truncate(start + FRAME_HEADER + len);
    buf.drain(..start + FRAME_HEADER);
    Ok(buf)
}

/// A frame's compression flag (`FLAG_*`) and payload.
fn payload<'f>(frame: &'f [u8], what: &dyn Fn() -> String) -> Result<(u8, &'f [u8])> {
    if frame.len() < FRAME_HEADER {
        return Err(Error::corrupt(what(), "frame shorter than its header"));
    }
    let flag = frame[0];
    let len = u32::from_le_bytes(frame[1..5].try_into().expect("4 bytes")) as usize;
    let payload = frame
        .get(FRAME_HEADER..FRAME_HEADER + len)
        .ok_or_else(|| Error::corrupt(what(), "payload length beyond frame"))?;
    match flag {
        FLAG_RAW | FLAG_ZSTD | FLAG_LANES => Ok((flag, payload)),
        f => Err(Error::corrupt(
            what(),
            format!("unknown compression flag {f}"),
        )),
    }
}

fn decompress(
    flag: u8,
    payload: &[u8],
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    compress::decompress(payload, raw_len, flag == FLAG_LANES)
        .ok_or_else(|| Error::corrupt(what(), "zstd payload does not decompress"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(d: &[u8]) -> Id {
        Id(*blake3::hash(d).as_bytes())
    }

    /// Frames compressed in their own buffer: the flag says what the
    /// payload is, the length is the payload's, the padding is Padmé's,
    /// and every blob opens to its bytes, under both sealers.
    #[test]
    fn frames_hold_the_smaller_payload_and_open_to_the_data() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {} of a chat log\n", i % 977).into_bytes())
            .take(3 << 20)
            .collect();
        let noise = crate::util::noise(7, 3 << 20);
        let keys = Sealer::encrypted(&[7; 32]);
        for sealer in [&Sealer::Plain, &keys] {
            for data in [&text[..], &noise[..], &text[..63], &[][..], &noise[..4096]] {
                for codec in [
                    Codec::plain(3),
                    Codec::plain(0),
                    Codec {
                        level: 1,
                        lanes: true,
                    },
                ] {
                    let f = frame(sealer, data, codec);
                    let p = sealer.prefix_len();
                    let len = u32::from_le_bytes(f[p + 1..p + 5].try_into().unwrap()) as usize;
                    assert_eq!(f.len(), p + padme((FRAME_HEADER + len) as u64) as usize);
                    let compressible = data.len() >= 4096 && data[0] == b'l' && codec.level > 0;
                    let want = match (compressible, codec.lanes) {
                        (false, _) => FLAG_RAW,
                        (true, false) => FLAG_ZSTD,
                        (true, true) => FLAG_LANES,
                    };
                    assert_eq!(f[p], want, "{} bytes, {codec:?}", data.len());
                    if want == FLAG_RAW {
                        assert_eq!(&f[p + FRAME_HEADER..p + FRAME_HEADER + len], data);
                    } else {
                        assert!(len < data.len() / 2, "text shrinks");
                    }
                    let id = id_of(data);
                    let sealed = seal(sealer, BlobKind::Data, &id, data, codec);
                    let what = || "test blob".to_string();
                    let back = open(
                        sealer,
                        id_of,
                        BlobKind::Data,
                        &id,
                        &sealed,
                        data.len(),
                        &what,
                    );
                    assert!(back.unwrap() == data, "{} bytes, {codec:?}", data.len());
                }
            }
        }
    }
}
