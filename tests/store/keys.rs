//! Key changes through the library: a process that opened the repository
//! before a rotation cannot lock it afterwards (it would seal data with an
//! outdated keyring); an unencrypted repository has no keys to manage.

use std::time::Duration;

use opc_store::repo::LockKind;
use opc_store::{BlobKind, Error};

use crate::common::{cheap_opts, init, open, open_with, random_bytes, repo_dir, PW};

#[test]
fn a_lock_after_someone_rotated_is_refused() {
    let (_tmp, path) = repo_dir();
    drop(init(&path, &cheap_opts()));
    let stale = open(&path);
    let rotator = open(&path);
    {
        let l = rotator
            .lock(LockKind::Exclusive, "key rotate", Duration::ZERO, &|_| {})
            .unwrap();
        rotator.rotate_keys(&l, PW, false).unwrap();
    }
    let err = stale
        .lock(LockKind::Shared, "snapshot", Duration::ZERO, &|_| {})
        .err()
        .expect("refused");
    assert!(matches!(err, Error::KeysChanged), "{err}");
    // The rotator's own later locks are fine: it knows its changes.
    drop(
        rotator
            .lock(LockKind::Shared, "snapshot", Duration::ZERO, &|_| {})
            .unwrap(),
    );
    // A fresh open gets the new keyring, writes with it, and reads both.
    let fresh = open(&path);
    assert_eq!(fresh.key_generations(), vec![0, 1]);
    let _l = fresh
        .lock(LockKind::Shared, "snapshot", Duration::ZERO, &|_| {})
        .unwrap();
    let p = fresh.packer();
    let data = random_bytes(3, 5000);
    let id = p.add(BlobKind::Data, &data).unwrap();
    p.flush().unwrap();
    assert_eq!(fresh.read_blob(&id).unwrap(), data);
}

#[test]
fn unencrypted_repositories_have_no_keys_to_manage() {
    let (_tmp, path) = repo_dir();
    let mut opts = cheap_opts();
    opts.encrypted = false;
    drop(init(&path, &opts));
    let repo = open_with(&path, None).unwrap();
    let l = repo
        .lock(LockKind::Exclusive, "key add", Duration::ZERO, &|_| {})
        .unwrap();
    assert!(repo.add_key_slot(&l, b"x", None, "").is_err());
    assert!(repo.rotate_keys(&l, b"", false).is_err());
    assert!(repo.reencrypt(&l, b"", false, false, &|| ()).is_err());
}
