//! A folder's one-blob files are restored in the order their blobs lie in
//! the packs: each group is opened once, however the folder's order
//! scatters them; a damaged group fails only the files it holds.

use std::path::{Path, PathBuf};

use opc_store::ops::{self, RestoreDest, RestoreRequest};
use opc_store::pipeline::NoProgress;
use opc_store::repo::Repository;

use crate::common::{cheap_opts, init, random_bytes, repo_dir, snapshot_folder};

const FILES: usize = 2400;
/// Coprime with [`FILES`]: neighbours in the second folder hold contents
/// about 6 MB apart in the first one's packs, in other groups.
const STRIDE: usize = 1031;

fn restore(repo: &Repository, id: &str, dest: &Path) -> opc_store::Result<()> {
    let req = RestoreRequest {
        snapshot: id.to_string(),
        parts: vec![],
        dest: RestoreDest::Target(dest.to_path_buf()),
        force: false,
        verify: false,
        run_hooks: false,
        hooks: Default::default(),
        part_hooks: Default::default(),
    };
    ops::restore(repo, &req, &NoProgress).map(|_| ())
}

/// A repository holding folder `a` (2,400 files of 6 KB, about 14 groups)
/// and then folder `b`: the same contents in a scattered order (file `j`
/// of `b` is file `j * STRIDE mod FILES` of `a`), stored once.
fn scattered() -> (tempfile::TempDir, PathBuf, Repository, String, Vec<Vec<u8>>) {
    let (tmp, path) = repo_dir();
    let repo = init(&path, &cheap_opts());
    let contents: Vec<Vec<u8>> = (0..FILES).map(|i| random_bytes(i as u64, 6000)).collect();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    for (i, c) in contents.iter().enumerate() {
        std::fs::write(a.join(format!("{i:04}")), c).unwrap();
    }
    snapshot_folder(&repo, &a);
    let scattered: Vec<Vec<u8>> = (0..FILES)
        .map(|j| contents[j * STRIDE % FILES].clone())
        .collect();
    for (j, c) in scattered.iter().enumerate() {
        std::fs::write(b.join(format!("{j:04}")), c).unwrap();
    }
    let id = snapshot_folder(&repo, &b);
    (tmp, path, repo, id, scattered)
}

/// Where the blob of each content is kept: (pack, group offset).
fn groups_of(repo: &Repository, contents: &[Vec<u8>]) -> Vec<(opc_store::Id, u64, u32)> {
    contents
        .iter()
        .map(|c| {
            let loc = repo.index().lookup(&repo.blob_id(c)).unwrap().unwrap();
            assert!(loc.group.is_some(), "a 6 KB file's blob is not grouped");
            (loc.pack, loc.offset, loc.length)
        })
        .collect()
}

#[test]
fn a_scattered_folder_of_small_files_opens_each_group_once() {
    let (tmp, _path, repo, id, contents) = scattered();
    let mut groups = groups_of(&repo, &contents);
    groups.sort();
    groups.dedup();
    assert!(groups.len() >= 12, "only {} groups", groups.len());

    let before = repo.groups_opened();
    let out = tmp.path().join("out");
    restore(&repo, &id, &out).unwrap();
    assert_eq!(
        repo.groups_opened() - before,
        groups.len() as u64,
        "groups opened to restore {FILES} files held in {} groups",
        groups.len()
    );
    for (j, c) in contents.iter().enumerate() {
        let got = std::fs::read(out.join("data").join(format!("{j:04}"))).unwrap();
        assert!(got == *c, "file {j:04} differs");
    }
}

#[test]
fn a_damaged_group_empties_only_the_files_it_holds() {
    let (tmp, path, repo, id, contents) = scattered();
    let groups = groups_of(&repo, &contents);
    // Damage the group of file 0000 in the middle of its sealed bytes.
    let (pack, offset, length) = groups[0];
    let file = path.join(opc_store::repo::pack::pack_name(&pack));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[(offset + u64::from(length) / 2) as usize] ^= 0x20;
    std::fs::write(&file, bytes).unwrap();

    let out = tmp.path().join("out");
    let err = restore(&repo, &id, &out).unwrap_err().to_string();
    assert!(
        err.contains(&pack.to_string()[..8]) || err.contains("authentic"),
        "{err}"
    );
    let mut damaged = 0;
    for (j, c) in contents.iter().enumerate() {
        let got = std::fs::read(out.join("data").join(format!("{j:04}"))).unwrap();
        if groups[j] == groups[0] {
            assert!(
                got.is_empty(),
                "file {j:04} of the damaged group is not empty"
            );
            damaged += 1;
        } else {
            assert!(got == *c, "file {j:04} (an intact group) differs");
        }
    }
    assert!(
        damaged > 1 && damaged < FILES / 4,
        "{damaged} files in the damaged group"
    );
}
