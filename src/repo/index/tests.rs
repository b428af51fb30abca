//! Batch probes against rows written the way packs are indexed.

use super::*;

fn entry(i: u32, group: Option<GroupSlot>) -> PackEntry {
    PackEntry {
        kind: if i % 7 == 0 {
            BlobKind::Tree
        } else {
            BlobKind::Data
        },
        id: Id::random(),
        offset: u64::from(i) * 100,
        length: 90 + i % 5,
        raw_length: 4096 + i,
        group,
    }
}

fn location(pack: &Id, e: &PackEntry) -> BlobLocation {
    BlobLocation {
        kind: e.kind,
        pack: *pack,
        offset: e.offset,
        length: e.length,
        raw_length: e.raw_length,
        group: e.group,
    }
}

/// An index of two packs holding more blobs than one probe statement takes.
fn two_packs(dir: &Path) -> (Index, Vec<(Id, PackEntry)>) {
    let (index, _) = Index::open(&dir.join("index.sqlite")).unwrap();
    let mut all = Vec::new();
    for p in 0..2u32 {
        let pack = Id::random();
        let n = PROBE_BATCH as u32 + 300;
        let entries: Vec<PackEntry> = (0..n)
            .map(|i| {
                let g = (i % 3 == 0).then_some(GroupSlot {
                    inner: i * 10,
                    total: 1 << 20,
                });
                entry(p * n + i, g)
            })
            .collect();
        index.add_pack(&pack, 1 << 30, &entries).unwrap();
        all.extend(entries.into_iter().map(|e| (pack, e)));
    }
    (index, all)
}

#[test]
fn batch_probes_answer_each_id_in_the_callers_order_across_statements() {
    let dir = tempfile::tempdir().unwrap();
    let (index, all) = two_packs(dir.path());
    // Unsorted, repeated, with ids that are not indexed between them, and
    // more than two statements' worth.
    let missing = [Id::random(), Id::random()];
    let mut ids = Vec::new();
    let mut want = Vec::new();
    for (k, (pack, e)) in all.iter().enumerate().rev() {
        ids.push(e.id);
        want.push(Some(location(pack, e)));
        if k % 1000 == 0 {
            ids.push(missing[k % 2]);
            want.push(None);
            ids.push(e.id);
            want.push(Some(location(pack, e)));
        }
    }
    assert!(ids.len() > 2 * PROBE_BATCH);
    assert_eq!(index.lookup_many(&ids).unwrap(), want);
    let present: Vec<bool> = want.iter().map(Option::is_some).collect();
    assert_eq!(index.contains_many(&ids).unwrap(), present);
    for (id, w) in ids.iter().zip(&want).step_by(997) {
        assert_eq!(index.lookup(id).unwrap(), *w);
    }

    let known: Vec<Id> = ids
        .iter()
        .copied()
        .filter(|id| !missing.contains(id))
        .collect();
    let located: Vec<Option<BlobLocation>> = index
        .locate_all(&known)
        .unwrap()
        .into_iter()
        .map(Some)
        .collect();
    assert_eq!(
        located,
        want.iter().flatten().cloned().map(Some).collect::<Vec<_>>()
    );
    assert!(matches!(
        index.locate_all(&ids),
        Err(Error::MissingBlob(h)) if missing.iter().any(|m| m.to_hex() == h)
    ));
    assert_eq!(index.lookup_many(&[]).unwrap(), Vec::new());
}

/// `locate_all` turns its probe's `Vec<Option<BlobLocation>>` into the
/// result in the same allocation, which needs both of one size.
#[test]
fn a_location_and_a_maybe_location_are_of_one_size() {
    assert_eq!(
        std::mem::size_of::<Option<BlobLocation>>(),
        std::mem::size_of::<BlobLocation>()
    );
}

#[test]
fn a_batch_searches_the_blobs_by_key_once_per_id() {
    // The array must stay the outer loop: were SQLite to scan the blobs
    // and test each against the array, a restore of one small file would
    // read the whole index.
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = two_packs(dir.path());
    let plan = index
        .readers
        .with(|c| {
            let mut st = c
                .prepare(&format!("EXPLAIN QUERY PLAN {LOOKUP_MANY}"))
                .unwrap();
            let rows = st.query_map([Rc::new(Vec::<Value>::new()) as Array], |r| {
                r.get::<_, String>(3)
            });
            Ok(rows.unwrap().map(|r| r.unwrap()).collect::<Vec<_>>())
        })
        .unwrap();
    assert!(plan[0].starts_with("SCAN a"), "{plan:?}");
    assert!(
        plan[1].starts_with("SEARCH b USING PRIMARY KEY (id=?)"),
        "{plan:?}"
    );
}

/// `contains_many` answers from the filter for unseen ids: it must still
/// find every id indexed before the filter was built, after it (by this
/// index or a rebuild), across the filter's regrowth, and no removed one.
#[test]
fn batch_membership_sees_every_indexed_id_whenever_the_filter_was_built() {
    let dir = tempfile::tempdir().unwrap();
    let (index, before) = two_packs(dir.path());
    let before: Vec<Id> = before.iter().map(|(_, e)| e.id).collect();
    let absent: Vec<Id> = (0..500).map(|_| Id::random()).collect();
    assert!(index.contains_many(&before).unwrap().iter().all(|&b| b));
    assert!(!index.contains_many(&absent).unwrap().iter().any(|&b| b));

    // Added after the build, past the filter's first capacity (2^16 ids),
    // in packs of 10,000 rows: each id must be found.
    let mut after = Vec::new();
    let mut packs = Vec::new();
    for p in 0..8u32 {
        let pack = Id::random();
        let entries: Vec<PackEntry> = (0..10_000).map(|i| entry(p * 10_000 + i, None)).collect();
        index.add_pack(&pack, 1 << 30, &entries).unwrap();
        after.extend(entries.iter().map(|e| e.id));
        packs.push((pack, entries));
        assert!(index.contains_many(&after).unwrap().iter().all(|&b| b));
    }
    assert!(index.contains_many(&before).unwrap().iter().all(|&b| b));
    assert!(!index.contains_many(&absent).unwrap().iter().any(|&b| b));

    // A swap (prune): the old pack's ids leave, the new pack's arrive.
    let (old, old_entries) = &packs[0];
    let new_pack = Id::random();
    let new_entries: Vec<PackEntry> = (0..100).map(|i| entry(i, None)).collect();
    index
        .swap_packs(&[*old], &[(new_pack, 1 << 20, new_entries.clone())])
        .unwrap();
    let new_ids: Vec<Id> = new_entries.iter().map(|e| e.id).collect();
    assert!(index.contains_many(&new_ids).unwrap().iter().all(|&b| b));
    let gone: Vec<Id> = old_entries.iter().map(|e| e.id).collect();
    assert!(!index.contains_many(&gone).unwrap().iter().any(|&b| b));

    // Rows replaced wholesale (a rebuild) are found as well.
    let rebuilt: Vec<PackEntry> = (0..100).map(|i| entry(i, None)).collect();
    index
        .replace_packs(std::iter::once((Id::random(), 1 << 20, rebuilt.clone())))
        .unwrap();
    let ids: Vec<Id> = rebuilt.iter().map(|e| e.id).collect();
    assert!(index.contains_many(&ids).unwrap().iter().all(|&b| b));
    assert!(!index.contains_many(&new_ids).unwrap().iter().any(|&b| b));
}

#[test]
fn the_writer_checkpoints_its_log_every_twenty_thousand_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = Index::open(&dir.path().join("index.sqlite")).unwrap();
    let pages: i64 = index
        .conn()
        .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pages, 20_000);
    let mode: String = index
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}
