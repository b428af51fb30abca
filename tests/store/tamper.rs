//! Every single-bit change anywhere in a pack is detected: the blobs it
//! touches fail to read, or the trailer fails to open. Nothing ever reads
//! back as different data.

use std::ops::Range;

use opc_store::repo::pack::{pack_name, read_trailer, PackEntry};
use opc_store::repo::{BlobLocation, InitOptions};
use opc_store::{BlobKind, ErrorKind, Id, Repository};

use crate::common::{cheap_opts, compressible_bytes, init, random_bytes, repo_dir};

struct Stored {
    id: Id,
    loc: BlobLocation,
    data: Vec<u8>,
}

/// A repository with one pack of a few KB, so every byte can be flipped.
fn small_pack(opts: &InitOptions) -> (tempfile::TempDir, Repository, Id, Vec<Stored>) {
    let (tmp, path) = repo_dir();
    let repo = init(&path, opts);
    let blobs = [
        (BlobKind::Data, random_bytes(1, 700)),
        (BlobKind::Tree, compressible_bytes(2, 3000)),
        (BlobKind::Data, Vec::new()),
        (BlobKind::Data, random_bytes(3, 1)),
        (BlobKind::Data, random_bytes(4, 1200)),
    ];
    let packer = repo.packer();
    let ids: Vec<Id> = blobs
        .iter()
        .map(|(k, d)| packer.add(*k, d).unwrap())
        .collect();
    packer.flush().unwrap();
    drop(packer);
    let packs = repo.index().packs().unwrap();
    assert_eq!(packs.len(), 1);
    let pack = packs[0].0;
    let stored = ids
        .into_iter()
        .zip(blobs)
        .map(|(id, (_, data))| {
            let loc = repo.index().lookup(&id).unwrap().unwrap();
            assert_eq!(loc.pack, pack);
            Stored { id, loc, data }
        })
        .collect();
    (tmp, repo, pack, stored)
}

fn range(loc: &BlobLocation) -> Range<usize> {
    loc.offset as usize..loc.offset as usize + loc.length as usize
}

fn flip_every_bit_position(opts: &InitOptions) {
    let (_tmp, repo, pack, stored) = small_pack(opts);
    let name = pack_name(&pack);
    let file = repo.backend().local_dir().unwrap().join(&name);
    let original = std::fs::read(&file).unwrap();
    assert!(
        original.len() < 16 * 1024,
        "pack too large: {}",
        original.len()
    );
    let entries: Vec<PackEntry> = read_trailer(repo.backend(), repo.sealer(), &name).unwrap();
    let body_end = entries
        .iter()
        .map(|e| e.offset + e.length as u64)
        .max()
        .unwrap() as usize;
    let hex = pack.to_hex();

    for pos in 0..original.len() {
        let mut bytes = original.clone();
        bytes[pos] ^= 1 << (pos % 8);
        std::fs::write(&file, &bytes).unwrap();
        repo.clear_read_caches();

        let mut failed = 0;
        for s in &stored {
            match repo.read_blob_at(&s.id, &s.loc) {
                Ok(d) => assert!(d == s.data, "flip at {pos} returned wrong data"),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Integrity, "flip at {pos}: {e}");
                    let msg = e.to_string();
                    assert!(
                        msg.contains(&hex),
                        "flip at {pos}: {msg:?} does not name the pack"
                    );
                    // Only the blob (or group) holding the flipped byte may
                    // be affected.
                    assert!(
                        range(&s.loc).contains(&pos),
                        "flip at {pos} broke another blob"
                    );
                    failed += 1;
                }
            }
        }
        let trailer = read_trailer(repo.backend(), repo.sealer(), &name);
        if let Ok(got) = &trailer {
            assert_eq!(
                got, &entries,
                "flip at {pos} altered the trailer undetected"
            );
        }
        if let Err(e) = &trailer {
            assert_eq!(e.kind(), ErrorKind::Integrity, "flip at {pos}: {e}");
            assert!(e.to_string().contains(&hex), "flip at {pos}: {e}");
        }

        if (8..body_end).contains(&pos) {
            // Inside a sealed blob: that blob must fail (every member, in a
            // group), the trailer stays good.
            let holding = stored
                .iter()
                .filter(|s| range(&s.loc).contains(&pos))
                .count();
            assert!(holding >= 1, "flip at {pos}: no blob holds it");
            assert_eq!(
                failed, holding,
                "flip at {pos} inside a blob went undetected"
            );
            assert!(trailer.is_ok(), "flip at {pos} in a blob broke the trailer");
        } else {
            // Magic, sealed trailer or its length.
            assert!(
                trailer.is_err(),
                "flip at {pos} outside the blobs went undetected"
            );
            let report = repo.rebuild_index().unwrap();
            assert!(
                report.bad_packs.iter().any(|(n, _)| n.contains(&hex)),
                "flip at {pos}: rebuild accepted the pack: {report:?}"
            );
        }
    }

    std::fs::write(&file, &original).unwrap();
    repo.clear_read_caches();
    let report = repo.rebuild_index().unwrap();
    assert!(report.bad_packs.is_empty(), "{report:?}");
    for s in &stored {
        assert!(repo.read_blob(&s.id).unwrap() == s.data);
    }
}

#[test]
fn every_flipped_bit_is_detected() {
    flip_every_bit_position(&cheap_opts());
}

/// Without encryption there is no secret, but corruption is still caught.
#[test]
fn every_flipped_bit_is_detected_unencrypted() {
    flip_every_bit_position(&InitOptions {
        encrypted: false,
        ..cheap_opts()
    });
}

#[test]
fn tampered_blob_error_names_the_pack() {
    let (_tmp, repo, pack, stored) = small_pack(&cheap_opts());
    let file = repo.backend().local_dir().unwrap().join(pack_name(&pack));
    let mut bytes = std::fs::read(&file).unwrap();
    let target = &stored[0];
    bytes[target.loc.offset as usize + 30] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    // Through the index, as users read, not only via a known location.
    let err = repo.read_blob(&target.id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    let msg = err.to_string();
    assert!(msg.contains(&pack.to_hex()), "{msg}");
    assert!(msg.contains(&target.id.short()), "{msg}");
    assert!(repo.read_blob(&stored[1].id).unwrap() == stored[1].data);
}

#[test]
fn blob_moved_to_another_id_fails() {
    let (_tmp, repo, _pack, stored) = small_pack(&cheap_opts());
    // Same sealed bytes served for another id: the id is in the AAD.
    let err = repo
        .read_blob_at(&stored[1].id, &stored[0].loc)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
}

#[test]
fn truncated_pack_is_detected() {
    let (_tmp, repo, pack, stored) = small_pack(&cheap_opts());
    let name = pack_name(&pack);
    let file = repo.backend().local_dir().unwrap().join(&name);
    let original = std::fs::read(&file).unwrap();
    for len in [0, 4, 11, 12, original.len() / 2, original.len() - 1] {
        std::fs::write(&file, &original[..len]).unwrap();
        let err = read_trailer(repo.backend(), repo.sealer(), &name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "len {len}: {err}");
        for s in &stored {
            match repo.read_blob_at(&s.id, &s.loc) {
                Ok(d) => assert!(d == s.data && range(&s.loc).end <= len, "len {len}"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Integrity, "len {len}: {e}"),
            }
        }
    }
}

/// Replaces the sealed object at `loc` of an unencrypted repository with a
/// well-formed one (frame, raw, and the unkeyed checksum) holding `forged`,
/// checks that every blob in `victims` then fails with a content error,
/// and that the same construction over `truth` gives the stored bytes.
fn forge_plain(repo: &Repository, loc: &BlobLocation, aad: &[u8], truth: &[u8], victims: &[Id]) {
    let seal = |content: &[u8]| {
        // The plain sealed form: frame || BLAKE3(len(aad) || aad || frame)[..16].
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(content.len() as u32).to_le_bytes());
        frame.extend_from_slice(content);
        frame.resize(opc_store::crypto::padme(frame.len() as u64) as usize, 0);
        let mut h = blake3::Hasher::new();
        h.update(&(aad.len() as u64).to_le_bytes());
        h.update(aad);
        h.update(&frame);
        frame.extend_from_slice(&h.finalize().as_bytes()[..16]);
        frame
    };
    let forged = seal(&random_bytes(99, truth.len()));
    assert_eq!(forged.len(), loc.length as usize, "sealed layout changed");
    let file = repo
        .backend()
        .local_dir()
        .unwrap()
        .join(pack_name(&loc.pack));
    let mut bytes = std::fs::read(&file).unwrap();
    let r = range(loc);
    // Control: the construction over the true content is what is stored,
    // so the failures below come from the id check, not a layout mistake.
    assert!(
        seal(truth) == bytes[r.clone()],
        "raw frames are deterministic without encryption"
    );
    bytes[r].copy_from_slice(&forged);
    std::fs::write(&file, &bytes).unwrap();
    repo.clear_read_caches();
    for id in victims {
        match repo.read_blob(id) {
            Ok(_) => panic!("a forged blob was accepted under another content's id"),
            Err(e) => assert!(matches!(e, opc_store::Error::Corrupt { .. }), "{e:?}"),
        }
    }
}

/// The checksum of an unencrypted repository has no secret, so anyone can
/// forge a well-formed blob; the keyed content id must still reject it.
#[test]
fn forged_unencrypted_blob_fails_the_id_check() {
    let (_tmp, path) = repo_dir();
    let repo = init(
        &path,
        &InitOptions {
            encrypted: false,
            ..cheap_opts()
        },
    );
    // Larger than a group member, so sealed alone; random, so stored raw.
    let data = random_bytes(7, 70_000);
    let packer = repo.packer();
    let id = packer.add(BlobKind::Data, &data).unwrap();
    packer.flush().unwrap();
    drop(packer);
    let loc = repo.index().lookup(&id).unwrap().unwrap();
    assert!(loc.group.is_none());
    let mut aad = b"opc-store blob v1".to_vec();
    aad.push(BlobKind::Data as u8);
    aad.extend_from_slice(&id.0);
    forge_plain(&repo, &loc, &aad, &data, &[id]);
}

/// The same for a group: its checksum binds no member, so each member's
/// keyed id is what rejects forged content.
#[test]
fn forged_unencrypted_group_fails_the_id_check() {
    let opts = InitOptions {
        encrypted: false,
        ..cheap_opts()
    };
    let (_tmp, repo, _pack, stored) = small_pack(&opts);
    let mut members: Vec<&Stored> = stored.iter().filter(|s| s.loc.group.is_some()).collect();
    assert_eq!(members.len(), 3, "the small data blobs share one group");
    members.sort_by_key(|s| s.loc.group.unwrap().inner);
    let truth: Vec<u8> = members.iter().flat_map(|s| s.data.clone()).collect();
    let mut aad = b"opc-store group v1".to_vec();
    aad.push(BlobKind::Data as u8);
    let ids: Vec<Id> = members.iter().map(|s| s.id).collect();
    forge_plain(&repo, &members[0].loc, &aad, &truth, &ids);
    // Blobs outside the group still read.
    for s in stored.iter().filter(|s| s.loc.group.is_none()) {
        assert!(repo.read_blob(&s.id).unwrap() == s.data);
    }
}
