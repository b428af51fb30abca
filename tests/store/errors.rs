//! Each failure to open or create a repository has its own error and kind,
//! which the CLI maps to distinct exit codes.

use opc_store::repo::FORMAT_VERSION;
use opc_store::{Error, ErrorKind, Id};

use crate::common::{cheap_opts, init, repo_dir, PW};

#[test]
fn wrong_password_is_reported_as_such() {
    let (_tmp, path) = repo_dir();
    drop(init(&path, &cheap_opts()));
    for pw in [&b"wrong"[..], b"", b"correct horse battery stapl"] {
        let err = crate::common::open_with(&path, Some(pw))
            .err()
            .expect("opened with a wrong password");
        assert!(matches!(err, Error::WrongPassword), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::WrongPassword);
        assert_eq!(err.to_string(), "wrong password or no key slot matches");
    }
    let err = crate::common::open_with(&path, None)
        .err()
        .expect("opened without a password");
    assert!(matches!(err, Error::WrongPassword), "{err:?}");
    assert!(crate::common::open_with(&path, Some(PW)).is_ok());
}

#[test]
fn folder_without_repository() {
    let tmp = tempfile::tempdir().unwrap();
    for path in [tmp.path().to_path_buf(), tmp.path().join("missing")] {
        let err = crate::common::open_with(&path, Some(PW))
            .err()
            .expect("opened a non-repository");
        assert_eq!(err.kind(), ErrorKind::NoRepository, "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
    // A repo.json of some other tool is not ours either.
    std::fs::write(
        tmp.path().join("repo.json"),
        r#"{"format":"other","version":1,"id":"x","encryption":"none"}"#,
    )
    .unwrap();
    let err = crate::common::open_with(tmp.path(), Some(PW))
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::NoRepository, "{err}");
}

#[test]
fn newer_format_version_is_refused() {
    let (_tmp, path) = repo_dir();
    drop(init(&path, &cheap_opts()));
    let marker = path.join("repo.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    assert_eq!(m["version"], FORMAT_VERSION);
    m["version"] = 99.into();
    std::fs::write(&marker, serde_json::to_vec(&m).unwrap()).unwrap();
    // Reported before any key work, so even without a password.
    for pw in [Some(PW), None] {
        let err = crate::common::open_with(&path, pw)
            .err()
            .expect("opened a v99 repository");
        assert!(
            matches!(err, Error::UnsupportedVersion { found: 99, supported } if supported == FORMAT_VERSION),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::UnsupportedVersion);
        assert!(err.to_string().contains("99"), "{err}");
    }
}

#[test]
fn init_refuses_non_empty_and_existing_folders() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("precious.txt"), b"keep me").unwrap();
    let err = crate::common::init_with(tmp.path(), Some(PW), &cheap_opts())
        .err()
        .expect("init in a full folder");
    assert!(matches!(err, Error::NotEmpty(_)), "{err:?}");
    assert!(!tmp.path().join("repo.json").exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "init left files behind"
    );

    let (_t2, path) = repo_dir();
    drop(init(&path, &cheap_opts()));
    let err = crate::common::init_with(&path, Some(PW), &cheap_opts())
        .err()
        .expect("init over a repository");
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
    // The existing repository still opens with its own password.
    assert!(crate::common::open_with(&path, Some(PW)).is_ok());
}

#[test]
fn init_in_an_existing_empty_folder_works() {
    let tmp = tempfile::tempdir().unwrap();
    drop(init(tmp.path(), &cheap_opts()));
    assert!(crate::common::open_with(tmp.path(), Some(PW)).is_ok());
}

#[test]
fn encrypted_init_needs_a_password() {
    let (_tmp, path) = repo_dir();
    assert!(crate::common::init_with(&path, None, &cheap_opts()).is_err());
    assert!(!path.join("repo.json").exists());
}

#[test]
fn tampered_config_fails_authentication() {
    let (_tmp, path) = repo_dir();
    drop(init(&path, &cheap_opts()));
    let cfg = path.join("config");
    let mut b = std::fs::read(&cfg).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(&cfg, &b).unwrap();
    let err = crate::common::open_with(&path, Some(PW))
        .err()
        .expect("opened a tampered config");
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Integrity);
}

#[test]
fn unknown_blob_is_missing() {
    let (_tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    let id = Id::random();
    let err = repo.read_blob(&id).unwrap_err();
    assert!(matches!(err, Error::MissingBlob(_)), "{err:?}");
    assert!(err.to_string().contains(&id.to_hex()), "{err}");
}

/// A host that opened an encrypted repository refuses it once the storage
/// claims it is unencrypted, before any key work, so no later backup is
/// written in the clear.
#[test]
fn downgrade_to_unencrypted_is_refused() {
    let (_tmp, path) = repo_dir();
    drop(init(&path, &cheap_opts()));
    let marker = path.join("repo.json");
    let text = std::fs::read_to_string(&marker).unwrap();
    assert!(text.contains("xchacha20poly1305"));
    std::fs::write(&marker, text.replace("xchacha20poly1305", "none")).unwrap();
    let err = crate::common::open_with(&path, None)
        .err()
        .expect("refused");
    assert!(matches!(err, Error::Downgrade(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::Integrity);
}

/// Key slots are plain files on the storage: a planted slot asking for
/// absurd Argon2 costs, or a garbled one, must neither stall nor lock out
/// the real slot.
#[test]
fn hostile_key_slots_do_not_lock_out_the_real_one() {
    let (_tmp, path) = repo_dir();
    drop(init(&path, &cheap_opts()));
    let planted = r#"{"version":1,"id":"0000000000000001","created":"x","host":"x","kdf":"argon2id",
        "params":{"memory_kib":4294967295,"iterations":4294967295,"parallelism":1},
        "salt":"00","keys":"00"}"#;
    std::fs::write(path.join("keys/0000000000000001"), planted).unwrap();
    std::fs::write(path.join("keys/0000000000000002"), b"not json").unwrap();
    // Without the limits this would try to allocate 4 TiB and abort.
    assert!(crate::common::open_with(&path, Some(PW)).is_ok());
    let wrong = crate::common::open_with(&path, Some(b"wrong"))
        .err()
        .unwrap();
    assert!(matches!(wrong, Error::WrongPassword), "{wrong}");
}
