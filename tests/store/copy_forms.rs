//! `copy` between repositories sharing blob ids gives a file the content
//! form of the target's format: a large file stored inline by format 2
//! gets content lists in format 3 (the lists a snapshot there writes).
use opc_store::ops::{self, CopyRequest, RestoreDest, RestoreRequest};
use opc_store::pipeline::NoProgress;
use opc_store::repo::InitOptions;
use opc_store::snapshot::{self as snap, read_list, Node, Tree, INLINE_IDS};
use opc_store::Repository;

use crate::common::{cheap_opts, init, random_bytes, repo_dir, snapshot_folder};

/// The node of `name` in the captured folder of the latest snapshot.
fn node(repo: &Repository, name: &str) -> Node {
    let snaps = snap::list(repo).unwrap();
    let root = Tree::decode(
        &repo
            .read_blob(&snaps.last().unwrap().1.parts[0].tree)
            .unwrap(),
    )
    .unwrap();
    let folder = root.nodes[0].subtree.unwrap();
    let tree = Tree::decode(&repo.read_blob(&folder).unwrap()).unwrap();
    tree.get(name.as_bytes()).unwrap().clone()
}

#[test]
fn a_large_inline_file_gets_lists_when_copied_into_format_3() {
    let (_t1, src_path) = repo_dir();
    let src = init(
        &src_path,
        &InitOptions {
            format_version: 2,
            ..cheap_opts()
        },
    );
    let (_t2, dst_path) = repo_dir();
    let dst = init(
        &dst_path,
        &InitOptions {
            id_keys: Some(src.shared_id_keys()),
            ..cheap_opts()
        },
    );
    assert!(
        src.same_ids_as(&dst),
        "the copy must keep ids for this test"
    );

    // 4 KiB blocks by the default rule for this name: INLINE_IDS + 3 blobs.
    let data = tempfile::tempdir().unwrap();
    let bytes = random_bytes(5, (INLINE_IDS + 3) * 4096);
    std::fs::write(data.path().join("data_level0.bin"), &bytes).unwrap();
    snapshot_folder(&src, data.path());
    let inline = node(&src, "data_level0.bin");
    assert_eq!(
        (inline.content.len(), inline.lists.len()),
        (INLINE_IDS + 3, 0)
    );

    let req = CopyRequest {
        ids: vec![],
        kind: None,
        part: None,
        catch_up: false,
    };
    ops::copy(&src, &dst, &req, &NoProgress).unwrap();
    let listed = node(&dst, "data_level0.bin");
    assert!(listed.content.is_empty(), "still inline in format 3");
    assert_eq!(listed.lists.len(), 1);
    assert_eq!(read_list(&dst, &listed.lists[0]).unwrap(), inline.content);

    let out = tempfile::tempdir().unwrap();
    let snaps = snap::list(&dst).unwrap();
    let rreq = RestoreRequest {
        snapshot: snaps[0].0.to_hex(),
        parts: vec![],
        dest: RestoreDest::Target(out.path().to_path_buf()),
        force: false,
        verify: true,
        run_hooks: false,
        hooks: Default::default(),
        part_hooks: Default::default(),
    };
    ops::restore(&dst, &rreq, &NoProgress).unwrap();
    let back = std::fs::read(out.path().join("data/data_level0.bin")).unwrap();
    assert!(back == bytes, "copied file differs");
}
