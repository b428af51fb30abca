//! A large blob opened a piece at a time: its content handed over as a
//! zstd payload is decompressed, hashed as it goes, so the whole
//! plaintext is never in memory beside the sealed bytes.

use super::{aad, decompress, decrypt_in, payload, FLAG_RAW, FLAG_ZSTD};
use crate::crypto::Sealer;
use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};

/// Blobs stored alone from this size on are opened a piece at a time
/// ([`open_streamed`]) when they are written out, not whole.
pub const STREAM_MIN: usize = 1 << 20;
/// Bytes handed over at a time by [`open_streamed`] (whole 4 KiB blocks,
/// so a file's holes are found as when written whole).
pub const STREAM_PIECE: usize = 256 << 10;

/// [`super::open_owned`] handing the content to `sink` in pieces of
/// [`STREAM_PIECE`] bytes (the last shorter) as a zstd payload is
/// decompressed: only the sealed bytes and one piece are in memory, not
/// the whole plaintext besides (FastCDC's chunks go up to 8 MiB, and two
/// threads each opening one were the largest part of a restore's peak).
/// The content is hashed with `hasher` (the repository's keyed blob-id
/// hasher, fresh) as it goes; when it does not match `id`, the error
/// comes after `sink` saw it all, and the caller must discard what it
/// wrote. A frame over byte lanes is decompressed whole, then handed over.
#[allow(clippy::too_many_arguments)]
pub fn open_streamed(
    sealer: &Sealer,
    mut hasher: blake3::Hasher,
    kind: BlobKind,
    id: &Id,
    mut sealed: Vec<u8>,
    raw_len: usize,
    what: &dyn Fn() -> String,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let range = decrypt_in(sealer, &aad(kind, id), &mut sealed, what)?;
    let (flag, payload) = payload(&sealed[range], what)?;
    let mut total = 0usize;
    let mut put = |piece: &[u8]| -> Result<()> {
        total += piece.len();
        if total > raw_len {
            return Err(Error::corrupt(what(), "content longer than recorded"));
        }
        hasher.update(piece);
        sink(piece)
    };
    match flag {
        FLAG_RAW => payload.chunks(STREAM_PIECE).try_for_each(&mut put)?,
        FLAG_ZSTD => {
            let bad = |_| Error::corrupt(what(), "zstd payload does not decompress");
            let mut dec = zstd::stream::read::Decoder::with_buffer(payload).map_err(bad)?;
            let mut piece = vec![0u8; STREAM_PIECE];
            loop {
                let n = crate::util::read_full(&mut dec, &mut piece).map_err(bad)?;
                if n == 0 {
                    break;
                }
                put(&piece[..n])?;
            }
        }
        _ => decompress(flag, payload, raw_len, what)?
            .chunks(STREAM_PIECE)
            .try_for_each(&mut put)?,
    }
    if total != raw_len || Id(*hasher.finalize().as_bytes()) != *id {
        return Err(Error::corrupt(what(), "content does not match its id"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::Codec;
    use crate::repo::blob::{seal, FLAG_LANES};

    const ID_KEY: [u8; 32] = [7; 32];

    fn id_of(d: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&ID_KEY, d).as_bytes())
    }

    /// The pieces' lengths [`open_streamed`] handed over and their bytes
    /// joined, and what it returned.
    fn streamed(
        sealer: &Sealer,
        id: &Id,
        sealed: Vec<u8>,
        raw_len: usize,
    ) -> (Vec<usize>, Vec<u8>, Result<()>) {
        let (mut lens, mut out) = (Vec::new(), Vec::new());
        let r = open_streamed(
            sealer,
            blake3::Hasher::new_keyed(&ID_KEY),
            BlobKind::Data,
            id,
            sealed,
            raw_len,
            &|| "test blob".to_string(),
            |p| {
                lens.push(p.len());
                out.extend_from_slice(p);
                Ok(())
            },
        );
        (lens, out, r)
    }

    #[test]
    fn a_streamed_blob_gives_what_opening_it_whole_gives_for_every_codec() {
        let sealer = Sealer::encrypted(&[3; 32]);
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("message {} of a chat\n", i % 4099).into_bytes())
            .take(3_300_000)
            .collect();
        let floats: Vec<u8> = crate::util::noise(5, 800_000)
            .chunks(4)
            .flat_map(|c| (f32::from(c[0]) / 256.0 - 0.5).to_le_bytes())
            .collect();
        let noise = crate::util::noise(9, 2_500_000);
        let cases = [
            (&text, Codec::plain(3), FLAG_ZSTD),
            (
                &floats,
                Codec {
                    level: 3,
                    lanes: true,
                },
                FLAG_LANES,
            ),
            (&noise, Codec::plain(3), FLAG_RAW),
        ];
        for (data, codec, flag) in cases {
            let id = id_of(data);
            let sealed = seal(&sealer, BlobKind::Data, &id, data, codec);
            let mut copy = sealed.clone();
            let range =
                decrypt_in(&sealer, &aad(BlobKind::Data, &id), &mut copy, &String::new).unwrap();
            assert_eq!(copy[range.start], flag, "the frame this case is for");
            let (lens, out, r) = streamed(&sealer, &id, sealed, data.len());
            r.unwrap();
            assert!(out == *data, "flag {flag}: content differs");
            let (last, full) = lens.split_last().unwrap();
            assert!(
                full.iter().all(|&n| n == STREAM_PIECE),
                "flag {flag}: {lens:?}"
            );
            assert!((1..=STREAM_PIECE).contains(last));
        }
    }

    #[test]
    fn a_streamed_blob_that_does_not_match_its_id_or_length_is_refused() {
        let sealer = Sealer::encrypted(&[3; 32]);
        let data = crate::util::noise(11, 1_500_000);
        let id = id_of(&data);
        let is_corrupt = |r: &Result<()>| matches!(r, Err(Error::Corrupt { .. }));
        // Sealed under an id its content does not hash to (a writer's bug,
        // or a key mix-up): every piece handed over, then an error.
        let other = id_of(b"other content");
        let sealed = seal(&sealer, BlobKind::Data, &other, &data, Codec::plain(3));
        let (_, out, r) = streamed(&sealer, &other, sealed, data.len());
        assert_eq!(out.len(), data.len());
        assert!(is_corrupt(&r), "{r:?}");
        // A length the index records wrongly, either way.
        for raw_len in [data.len() - 1, data.len() + 1] {
            let sealed = seal(&sealer, BlobKind::Data, &id, &data, Codec::plain(3));
            let (_, _, r) = streamed(&sealer, &id, sealed, raw_len);
            assert!(is_corrupt(&r), "{raw_len}: {r:?}");
        }
        // A flipped byte fails authentication before anything is handed over.
        let mut sealed = seal(&sealer, BlobKind::Data, &id, &data, Codec::plain(3));
        sealed[100] ^= 1;
        let (lens, _, r) = streamed(&sealer, &id, sealed, data.len());
        assert!(lens.is_empty());
        assert!(matches!(r, Err(Error::Authentication { .. })), "{r:?}");
    }
}
