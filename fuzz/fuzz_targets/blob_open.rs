//! Opening a blob must never panic, whatever the pack holds: arbitrary
//! sealed bytes, and (harder to reach) arbitrary frames under a valid seal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opc_store::compress::Codec;
use opc_store::crypto::{MasterKeys, Sealer};
use opc_store::id::{BlobKind, Id};
use opc_store::repo::blob;

/// Keyed like a repository's blob ids, so a frame whose content matches its
/// id could in principle be found.
fn id_of(d: &[u8]) -> Id {
    MasterKeys::from_bytes(&[9u8; 96]).unwrap().blob_id(d)
}

/// [`blob::open_streamed`] of `sealed`: the pieces joined, or the error.
fn streamed(
    sealer: &Sealer,
    kind: BlobKind,
    id: &Id,
    sealed: Vec<u8>,
    raw_len: usize,
) -> opc_store::Result<Vec<u8>> {
    let hasher = MasterKeys::from_bytes(&[9u8; 96]).unwrap().blob_hasher();
    let mut out = Vec::new();
    let what = || "fuzz blob".to_string();
    blob::open_streamed(sealer, hasher, kind, id, sealed, raw_len, &what, |p| {
        assert!(p.len() <= blob::STREAM_PIECE);
        out.extend_from_slice(p);
        Ok(())
    })?;
    Ok(out)
}

/// Mirror of the private AAD in `repo/blob.rs` (docs/FORMAT.md §5):
/// `"opc-store blob v1" || kind u8 || id`.
fn aad(kind: BlobKind, id: &Id) -> Vec<u8> {
    let mut a = b"opc-store blob v1".to_vec();
    a.push(kind as u8);
    a.extend_from_slice(&id.0);
    a
}

fuzz_target!(|data: &[u8]| {
    // Header: kind (1), raw_len (3, so at most 16 MiB like the real
    // maximum chunk of 8 MiB: raw_len sizes the decompression buffer).
    if data.len() < 4 {
        return;
    }
    let kind = if data[0] & 1 == 0 {
        BlobKind::Data
    } else {
        BlobKind::Tree
    };
    let raw_len = u32::from_le_bytes([data[1], data[2], data[3], 0]) as usize;
    let body = &data[4..];
    let id = Id([data[0]; 32]);
    let what = || "fuzz blob".to_string();
    for sealer in [Sealer::encrypted(&[7u8; 32]), Sealer::Plain] {
        // 1: the bytes as found in a pack (fails authentication almost always).
        let _ = blob::open(&sealer, id_of, kind, &id, body, raw_len, &what);
        // 2: the bytes as a frame sealed with the right key and AAD, which is
        // what a key holder with a bug, or a bit flip before sealing, yields:
        // this reaches the frame parser and zstd.
        let sealed = sealer.seal(&aad(kind, &id), body);
        let _ = blob::open(&sealer, id_of, kind, &id, &sealed, raw_len, &what);
        // The same frame opened a piece at a time, as a restore writes a
        // large blob: whatever comes out, no panic.
        let _ = streamed(&sealer, kind, &id, sealed, raw_len);
        // 3: the bytes as content: what seal writes, open must give back.
        let real = id_of(body);
        let codec = Codec {
            level: 3,
            lanes: raw_len % 2 == 1,
        };
        let sealed = blob::seal(&sealer, kind, &real, body, codec);
        let back = blob::open(&sealer, id_of, kind, &real, &sealed, body.len(), &what);
        assert_eq!(back.expect("a sealed blob opens"), body);
        let back = streamed(&sealer, kind, &real, sealed, body.len());
        assert_eq!(back.expect("a sealed blob opens a piece at a time"), body);
        // 4: the bytes as a group (docs/FORMAT.md §5.5), opened with a
        // total from the header; and sealed as a group, read back whole.
        let _ = blob::open_group(&sealer, kind, body, raw_len, &what);
        let codec = Codec {
            level: 2,
            lanes: raw_len % 2 == 0,
        };
        let sealed = blob::seal_group(&sealer, kind, body, codec);
        let back = blob::open_group(&sealer, kind, &sealed, body.len(), &what);
        assert_eq!(back.expect("a sealed group opens"), body);
    }
});
