//! Trailer plaintext is authenticated, so only a key holder can feed it bad
//! bytes; decoding must still fail cleanly rather than panic or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opc_store::repo::pack::format::decode_trailer;

fuzz_target!(|data: &[u8]| {
    // First 8 bytes: the pack body length, so entry bounds checks get both
    // small and huge limits to compare against.
    if data.len() < 8 {
        return;
    }
    let (len, trailer) = data.split_at(8);
    let body_len = u64::from_le_bytes(len.try_into().unwrap());
    if let Ok(entries) = decode_trailer(trailer, body_len) {
        // What decode promises: entries in order, inside [8, body_len).
        let mut prev_end = 8u64;
        for e in &entries {
            assert!(e.offset >= prev_end);
            prev_end = e.offset + e.length as u64;
            assert!(prev_end <= body_len);
        }
    }
});
