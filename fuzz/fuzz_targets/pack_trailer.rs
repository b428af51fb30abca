//! Trailer plaintext is authenticated, so only a key holder can feed it bad
//! bytes; decoding must still fail cleanly rather than panic or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opc_store::repo::pack::format::{decode_trailer_version, PackEntry, MAX_GROUP};

fuzz_target!(|data: &[u8]| {
    // First 8 bytes: the pack body length, so entry bounds checks get both
    // small and huge limits to compare against.
    if data.len() < 8 {
        return;
    }
    let (len, trailer) = data.split_at(8);
    let body_len = u64::from_le_bytes(len.try_into().unwrap());
    for groups in [false, true] {
        let Ok(entries) = decode_trailer_version(trailer, body_len, groups) else {
            continue;
        };
        // What decode promises: sealed objects in order, inside
        // [8, body_len); members of one group consecutive, agreeing on the
        // group's bytes, and laid out one after another inside it.
        let mut prev_end = 8u64;
        let mut prev: Option<&PackEntry> = None;
        for e in &entries {
            let joins = prev.is_some_and(|p| {
                p.group.is_some() && e.group.is_some() && p.offset == e.offset
            });
            if joins {
                let p = prev.unwrap();
                assert_eq!(p.length, e.length);
                let (pg, eg) = (p.group.unwrap(), e.group.unwrap());
                assert_eq!(eg.inner, pg.inner + p.raw_length);
                assert_eq!(eg.total, pg.total);
            } else {
                assert!(e.offset >= prev_end);
                prev_end = e.offset + e.length as u64;
                assert!(prev_end <= body_len);
            }
            if let Some(g) = e.group {
                assert!(groups, "a version 1 pack gave a group");
                assert!(u64::from(g.inner) + u64::from(e.raw_length) <= u64::from(g.total));
                assert!(g.total <= MAX_GROUP);
            }
            prev = Some(e);
        }
    }
});
