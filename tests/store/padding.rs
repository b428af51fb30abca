//! Sealed blob sizes are Padmé-rounded, so the storage host sees a few size
//! classes instead of exact chunk lengths.

use std::collections::BTreeSet;

use opc_store::repo::pack::{pack_name, read_trailer, PackEntry};
use opc_store::repo::InitOptions;
use opc_store::BlobKind;

use crate::common::{cheap_opts, compressible_bytes, init, random_bytes, repo_dir};

fn sealed_lengths(opts: &InitOptions, blobs: &[Vec<u8>]) -> Vec<PackEntry> {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, opts);
    let packer = repo.packer();
    for b in blobs {
        packer.add(BlobKind::Data, b).unwrap();
    }
    packer.flush().unwrap();
    let packs = repo.index().packs().unwrap();
    assert_eq!(packs.len(), 1);
    read_trailer(repo.backend(), repo.sealer(), &pack_name(&packs[0].0)).unwrap()
}

#[test]
fn sealed_sizes_hide_exact_lengths() {
    let blobs: Vec<Vec<u8>> = (1000..1100).map(|n| random_bytes(n as u64, n)).collect();
    for opts in [
        cheap_opts(),
        InitOptions {
            encrypted: false,
            ..cheap_opts()
        },
    ] {
        let entries = sealed_lengths(&opts, &blobs);
        assert_eq!(entries.len(), 100);
        let raw: BTreeSet<u32> = entries.iter().map(|e| e.raw_length).collect();
        let sealed: BTreeSet<u32> = entries.iter().map(|e| e.length).collect();
        assert_eq!(raw.len(), 100);
        // Padmé leaves 3 classes here (frames of 1005..1104 bytes round to
        // 1024, 1088 or 1152); a small margin keeps the test about intent.
        assert!(sealed.len() <= 4, "sealed sizes {sealed:?}");
        for e in &entries {
            assert!(e.length as u64 > e.raw_length as u64, "{e:?}");
            // Padmé's overhead bound (12%) plus frame header and AEAD tag.
            assert!(
                (e.length as f64) < e.raw_length as f64 * 1.12 + 45.0,
                "{e:?}"
            );
        }
    }
}

#[test]
fn compressed_sizes_are_padded_too() {
    let blobs: Vec<Vec<u8>> = (0..100)
        .map(|i| compressible_bytes(i, 20_000 + 37 * i as usize))
        .collect();
    let entries = sealed_lengths(&cheap_opts(), &blobs);
    let sealed: BTreeSet<u32> = entries.iter().map(|e| e.length).collect();
    assert!(sealed.len() <= 10, "sealed sizes {sealed:?}");
}
