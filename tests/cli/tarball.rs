//! The legacy `opc_backup_<type>_<time>.tar.gz` format: `export`, `import`,
//! `verify` and `restore FILE.tar.gz`, checked against real peers (GNU tar,
//! gzip, jq, Python's tarfile), legacy archives made by GNU tar, damaged
//! archives and hostile ones.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command as Proc;

use predicates::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::manifest::{assert_same_tree, manifest, show, Entry, Manifest};
use crate::support::tree::{chmod, set_mtime, set_mtimes, xattrs_supported};
use crate::support::{parse_json, random_bytes, write, Env};

/// Time of the exported snapshots, and the archive name it gives.
const TIME: &str = "2024-12-01T02:00:00+00:00";
const TIME_S: i64 = 1_733_018_400;
const NAME: &str = "opc_backup_full_20241201_020000";

/// Length of the sparse file: an 8 MiB hole, then 4 KiB of data.
const SPARSE_HOLE: u64 = 8 << 20;
const SPARSE_LEN: u64 = SPARSE_HOLE + 4096;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 test path")
}

/// Runs a peer program, expects success and returns its stdout.
fn run(cmd: &mut Proc) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn python(script: &str, args: &[&str]) -> Vec<u8> {
    run(Proc::new("python3").arg("-c").arg(script).args(args))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn ino(p: &Path) -> (u64, u64) {
    let md = p.symlink_metadata().expect("metadata");
    (md.dev(), md.ino())
}

/// Everything the export must carry, in two components: `odd` (one path:
/// odd names, long names and paths, symlinks, hardlinks, empty and sparse
/// files, FIFO, modes, nanosecond and pre-epoch mtimes, xattrs) and
/// `multi` (two paths, with a hardlink between them).
struct Source {
    odd: PathBuf,
    p1: PathBuf,
    p2: PathBuf,
    xattrs: bool,
}

fn source(env: &Env) -> Source {
    let odd = env.path("data/odd");
    std::fs::create_dir_all(&odd).unwrap();
    let xattrs = xattrs_supported(&odd);
    let p = |rel: &str| odd.join(rel);
    let at = |rel: &[u8]| odd.join(OsStr::from_bytes(rel));

    write(&p("regular.txt"), b"hello world\n");
    chmod(&p("regular.txt"), 0o640);
    write(&p("empty"), b"");
    write(&p("big.bin"), &random_bytes(1, 300_000));
    std::fs::create_dir(p("empty-dir")).unwrap();
    write(&at(b"caf\xe9.txt"), b"latin-1 name\n");
    write(&at(b"\xff\xfe-dir/inner\x80file"), b"bytes\n");
    write(&p("line\nbreak"), b"newline in name\n");
    // A 160-byte name, and a path over 100 bytes made of short names.
    write(&p(&format!("deep/{}", "n".repeat(160))), b"long name\n");
    let mut far = p("deep");
    for i in 0..12 {
        far.push(format!("level-{i:02}"));
    }
    write(&far.join("leaf.txt"), b"far away\n");
    write(&p("private/secret"), b"s3cret\n");
    chmod(&p("private/secret"), 0o600);
    chmod(&p("private"), 0o700);

    // Symlinks (all resolving inside the tree): relative, upwards, dangling,
    // and one whose target is over 100 bytes.
    std::os::unix::fs::symlink("regular.txt", p("link-rel")).unwrap();
    std::os::unix::fs::symlink("../regular.txt", p("deep/up-link")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", p("dangling")).unwrap();
    std::os::unix::fs::symlink(format!("{}end", "t/".repeat(60)), p("long-target")).unwrap();

    // Hardlinks, and an equal but separate copy.
    write(&p("hard-a"), b"linked content\n");
    std::fs::hard_link(p("hard-a"), p("deep/hard-b")).unwrap();
    write(&p("same-content-not-linked"), b"linked content\n");

    // Sparse: an 8 MiB hole then data; and data then a 2 MiB hole.
    let f = std::fs::File::create(p("sparse.img")).unwrap();
    f.set_len(SPARSE_LEN).unwrap();
    f.write_all_at(&random_bytes(7, 4096), SPARSE_HOLE).unwrap();
    let f = std::fs::File::create(p("sparse-tail.img")).unwrap();
    f.set_len(2 << 20).unwrap();
    f.write_all_at(&random_bytes(8, 4096), 0).unwrap();

    nix::unistd::mkfifo(&p("pipe"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
    chmod(&p("pipe"), 0o640);

    if xattrs {
        xattr::set(p("regular.txt"), "user.comment", b"a comment").unwrap();
        // Binary, with PAX's own separators (a newline is left to
        // `xattr_values_with_newlines_survive_the_archive`).
        xattr::set(p("deep"), "user.binary", &[0, 255, 1, 254, b'=', b' ']).unwrap();
        xattr::set(p("hard-a"), "user.shared", b"by all links").unwrap();
    }

    let (p1, p2) = (env.path("data/p1"), env.path("data/p2"));
    write(&p1.join("a.txt"), &random_bytes(2, 10_000));
    write(&p1.join("sub/x.txt"), b"x\n");
    write(&p2.join("b.txt"), b"b\n");
    std::fs::hard_link(p1.join("a.txt"), p2.join("a-link")).unwrap();

    let mut n = 0;
    set_mtimes(&odd, &mut n);
    set_mtimes(&p1, &mut n);
    set_mtimes(&p2, &mut n);
    // Before the epoch, with nanoseconds.
    set_mtime(&p("regular.txt"), -1_500_000_001);

    env.components(&[("odd", &[&odd]), ("multi", &[&p1, &p2])]);
    Source {
        odd,
        p1,
        p2,
        xattrs,
    }
}

/// Sandbox with the source tree snapshotted at [`TIME`]; returns the
/// snapshot's short id.
fn snapshotted() -> (Env, Source, String) {
    let env = Env::with_repo();
    let src = source(&env);
    let id = crate::support::short_id(&env.snapshot(&["--time", TIME]));
    (env, src, id)
}

/// `export latest --output-dir <sandbox>/out ARGS --json`: archive path and report.
fn export(env: &Env, extra: &[&str]) -> (PathBuf, Value) {
    let out = env.path("out");
    let mut args = vec!["export", "latest", "--output-dir", s(&out)];
    args.extend_from_slice(extra);
    let rep = env.json(&args);
    let path = PathBuf::from(rep["path"].as_str().expect("report has the path"));
    (path, rep)
}

/// `tar -xzf ARCHIVE NAME/manifest.json -O`, checked by jq (or Python's
/// json.tool where jq is missing), parsed.
fn manifest_json(archive: &Path, name: &str) -> Value {
    let member = format!("{name}/manifest.json");
    let raw = run(Proc::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg(&member)
        .arg("-O"));
    let have_jq = Proc::new("jq").arg("--version").output().is_ok();
    let script = if have_jq {
        format!("set -o pipefail; tar -xzf \"$1\" {member} -O | jq .")
    } else {
        format!("set -o pipefail; tar -xzf \"$1\" {member} -O | python3 -m json.tool")
    };
    run(Proc::new("bash")
        .arg("-c")
        .arg(script)
        .arg("bash")
        .arg(archive));
    parse_json(&raw)
}

/// Member names as `tar -tzf` lists them.
fn tar_list(archive: &Path) -> Vec<Vec<u8>> {
    run(Proc::new("tar").arg("-tzf").arg(archive))
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// `tar --xattrs -xpzf ARCHIVE -C DIR` with GNU tar.
fn gnu_extract(archive: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    run(Proc::new("tar")
        .arg("--xattrs")
        .arg("--xattrs-include=user.*")
        .arg("-xpzf")
        .arg(archive)
        .arg("-C")
        .arg(dir));
}

/// The snapshots of the repository (`snapshots --json`).
fn snapshots(env: &Env) -> Vec<Value> {
    env.json(&["snapshots"]).as_array().unwrap().clone()
}

/// Regular files, hardlinks counted once, and their bytes.
fn file_counts(m: &Manifest) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut seen = BTreeSet::new();
    for (rel, e) in &m.entries {
        if e.kind != "file" {
            continue;
        }
        let group = m.links.iter().find(|g| g.contains(rel));
        if let Some(g) = group {
            if !seen.insert(g.clone()) {
                continue;
            }
        }
        files += 1;
        bytes += e.size.unwrap();
    }
    (files, bytes)
}

fn kind_count(m: &Manifest, kinds: &[&str]) -> u64 {
    m.entries
        .values()
        .filter(|e| kinds.contains(&e.kind))
        .count() as u64
}

fn assert_multi_layout(src: &Source, root: &Path) {
    assert_same_tree(&src.p1, &root.join("multi/p1"));
    assert_same_tree(&src.p2, &root.join("multi/p2"));
    assert_eq!(
        ino(&root.join("multi/p1/a.txt")),
        ino(&root.join("multi/p2/a-link")),
        "the hardlink between the two paths of a component is kept"
    );
}

/// Test 1: GNU tar, gzip and jq read the archive; the extracted component
/// folders equal the source trees entry for entry.
#[test]
fn export_is_read_by_gnu_tar_gzip_and_jq() {
    let (env, src, id) = snapshotted();
    let (archive, rep) = export(&env, &[]);

    assert_eq!(
        archive.file_name().unwrap(),
        OsStr::new(&format!("{NAME}.tar.gz")),
        "named by type and snapshot time"
    );
    assert_eq!(rep["backup_name"], NAME);
    assert_eq!(rep["type"], "full");
    assert_eq!(
        archive.metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
    run(Proc::new("gzip").arg("-t").arg(&archive));

    let names = tar_list(&archive);
    assert_eq!(
        show(&names[0]),
        format!("{NAME}/manifest.json"),
        "manifest first"
    );
    assert!(
        names
            .iter()
            .all(|n| n.starts_with(format!("{NAME}/").as_bytes())),
        "one top folder"
    );

    let m = manifest_json(&archive, NAME);
    assert_eq!(m["format"], "opc-store-tarball/1");
    assert_eq!(m["backup_name"], NAME);
    assert_eq!(m["type"], "full");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(m["timestamp"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339(TIME).unwrap()
    );
    assert!(m["snapshot_id"].as_str().unwrap().starts_with(&id), "{m:#}");
    assert_eq!(m["tool_version"], env!("CARGO_PKG_VERSION"));
    assert!(m["host"].as_str().is_some_and(|h| !h.is_empty()), "{m:#}");
    assert!(m["environment"].is_string(), "{m:#}");

    // Component counters agree with the source trees.
    let comps = m["components"].as_array().unwrap();
    let comp = |name: &str| {
        comps
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no component {name} in {m:#}"))
    };
    assert_eq!(comps.len(), 2);
    let odd = manifest(&src.odd);
    let (files, bytes) = file_counts(&odd);
    let c = comp("odd");
    assert_eq!(c["files"], files);
    assert_eq!(c["size_bytes"], bytes);
    assert_eq!(c["dirs"], kind_count(&odd, &["dir"]));
    assert_eq!(c["others"], kind_count(&odd, &["symlink", "fifo"]));
    assert_eq!(c["paths"][0]["path"], s(&src.odd));
    let (m1, m2) = (manifest(&src.p1), manifest(&src.p2));
    let c = comp("multi");
    let a_len = 10_000;
    // a.txt and p2/a-link are one file.
    assert_eq!(c["files"], file_counts(&m1).0 + file_counts(&m2).0 - 1);
    assert_eq!(
        c["size_bytes"],
        file_counts(&m1).1 + file_counts(&m2).1 - a_len
    );
    assert_eq!(
        c["dirs"],
        1 + kind_count(&m1, &["dir"]) + kind_count(&m2, &["dir"])
    );
    let paths: Vec<(&str, &str)> = c["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["path"].as_str().unwrap(), p["entry"].as_str().unwrap()))
        .collect();
    assert_eq!(paths, [(s(&src.p1), "p1"), (s(&src.p2), "p2")]);
    let listed = m["files"].as_array().unwrap().len() as u64;
    assert_eq!(listed, files + file_counts(&m1).0 + file_counts(&m2).0 - 1);
    assert!(
        m["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path_hex"] == hex::encode(b"odd/caf\xe9.txt")),
        "non-UTF-8 names are given in path_hex"
    );

    let x = env.path("gnu");
    gnu_extract(&archive, &x);
    assert_same_tree(&src.odd, &x.join(NAME).join("odd"));
    assert_multi_layout(&src, &x.join(NAME));
    if src.xattrs {
        assert_eq!(
            xattr::get(x.join(NAME).join("odd/regular.txt"), "user.comment").unwrap(),
            Some(b"a comment".to_vec())
        );
    }
    let listed_top: BTreeSet<String> = std::fs::read_dir(x.join(NAME))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        listed_top,
        ["manifest.json", "multi", "odd"].map(String::from).into()
    );
}

/// Python script listing every member of an archive as JSON, with the
/// SHA-256 of what tarfile extracts for regular (and sparse) files.
const PY_LIST: &str = r#"
import hashlib, json, os, sys, tarfile
out = []
with tarfile.open(sys.argv[1], "r:gz") as t:
    for m in t:
        d = {
            "name": os.fsencode(m.name).hex(),
            "type": m.type.decode("latin-1"),
            "size": m.size,
            "mode": m.mode,
            "uid": m.uid,
            "gid": m.gid,
            "mtime": int(m.mtime) if m.mtime >= 0 else None,
            "pax_mtime": m.pax_headers.get("mtime"),
            "link": os.fsencode(m.linkname).hex(),
            "sparse": m.issparse(),
            "xattrs": {
                k[len("SCHILY.xattr."):]: os.fsencode(v).hex()
                for k, v in m.pax_headers.items()
                if k.startswith("SCHILY.xattr.")
            },
        }
        if m.isreg():
            d["sha256"] = hashlib.sha256(t.extractfile(m).read()).hexdigest()
        out.append(d)
json.dump(out, sys.stdout)
"#;

/// `123`, `123.000000456`, `-1.5` seconds as nanoseconds.
fn pax_ns(v: &str) -> i64 {
    let (neg, v) = v.strip_prefix('-').map_or((false, v), |r| (true, r));
    let (sec, frac) = v.split_once('.').unwrap_or((v, ""));
    let ns: i64 = sec.parse::<i64>().unwrap() * 1_000_000_000
        + format!("{frac:0<9}")[..9].parse::<i64>().unwrap();
    if neg {
        -ns
    } else {
        ns
    }
}

/// Test 2: Python's tarfile, an independent reader, sees every entry of the
/// snapshot with its type, size, mode, owner, mtime, target and xattrs, and
/// extracts contents whose SHA-256 match the source and manifest.json.
#[test]
fn python_tarfile_reads_every_member_as_snapshotted() {
    let (env, src, _) = snapshotted();
    let (archive, _) = export(&env, &[]);
    let members = parse_json(&python(PY_LIST, &[s(&archive)]));
    let members = members.as_array().unwrap();
    let m = manifest_json(&archive, NAME);
    let digests: BTreeMap<Vec<u8>, (u64, String)> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = match (f["path"].as_str(), f["path_hex"].as_str()) {
                (Some(p), _) => p.as_bytes().to_vec(),
                (None, Some(h)) => hex::decode(h).unwrap(),
                _ => panic!("file entry without a path: {f}"),
            };
            (
                path,
                (
                    f["size"].as_u64().unwrap(),
                    f["sha256"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();

    // What each member should be: archive path below NAME/ -> source entry.
    let mut expected: BTreeMap<Vec<u8>, (PathBuf, Entry)> = BTreeMap::new();
    for (prefix, root) in [
        ("odd", &src.odd),
        ("multi/p1", &src.p1),
        ("multi/p2", &src.p2),
    ] {
        for (rel, e) in manifest(root).entries {
            let key = if rel.is_empty() {
                prefix.as_bytes().to_vec()
            } else {
                [prefix.as_bytes(), b"/", &rel].concat()
            };
            expected.insert(key, (root.join(OsStr::from_bytes(&rel)), e));
        }
    }

    let top = format!("{NAME}/");
    let rel_of = |hex_name: &Value| -> Vec<u8> {
        let name = hex::decode(hex_name.as_str().unwrap()).unwrap();
        let name = name.strip_suffix(b"/").unwrap_or(&name).to_vec();
        name.strip_prefix(top.as_bytes())
            .unwrap_or_else(|| panic!("{} is outside {top}", show(&name)))
            .to_vec()
    };
    assert_eq!(rel_of(&members[0]["name"]), b"manifest.json");
    let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut files_seen = 0;
    let mut hardlinks = 0;
    for mb in &members[1..] {
        let rel = rel_of(&mb["name"]);
        let shown = show(&rel);
        let ty = mb["type"].as_str().unwrap();
        assert!(seen.insert(rel.clone()), "{shown} twice");
        let ns = match mb["pax_mtime"].as_str() {
            Some(p) => pax_ns(p),
            None => mb["mtime"].as_i64().unwrap() * 1_000_000_000,
        };
        if rel == b"multi" {
            // The folder holding several paths did not exist on the source.
            assert_eq!((ty, mb["mode"].as_u64()), ("5", Some(0o755)), "{mb}");
            assert_eq!(ns, TIME_S * 1_000_000_000, "{mb}");
            continue;
        }
        let (path, e) = expected
            .get(&rel)
            .unwrap_or_else(|| panic!("unexpected member {shown}"));
        let want_ty: &[&str] = match e.kind {
            "file" => &["0", "S", "1"],
            "dir" => &["5"],
            "symlink" => &["2"],
            "fifo" => &["6"],
            k => panic!("{k} in the source"),
        };
        assert!(want_ty.contains(&ty), "{shown}: type {ty} for a {}", e.kind);
        assert_eq!(ns, e.mtime_ns, "{shown}: mtime");
        assert_eq!(mb["uid"], e.uid, "{shown}: uid");
        assert_eq!(mb["gid"], e.gid, "{shown}: gid");
        if e.kind != "symlink" {
            assert_eq!(mb["mode"], e.mode, "{shown}: mode");
        }
        let xattrs: BTreeMap<Vec<u8>, Vec<u8>> = mb["xattrs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_bytes().to_vec(),
                    hex::decode(v.as_str().unwrap()).unwrap(),
                )
            })
            .collect();
        assert_eq!(xattrs, e.xattrs, "{shown}: xattrs");
        match ty {
            "2" => assert_eq!(
                hex::decode(mb["link"].as_str().unwrap()).unwrap(),
                *e.target.as_ref().unwrap(),
                "{shown}: symlink target"
            ),
            "1" => {
                let first = rel_of(&mb["link"]);
                let (first_path, _) = &expected[&first];
                assert!(
                    seen.contains(&first),
                    "{shown} links to {} which is not earlier",
                    show(&first)
                );
                assert_eq!(
                    ino(path),
                    ino(first_path),
                    "{shown} links to {} which is another file",
                    show(&first)
                );
                hardlinks += 1;
            }
            "0" | "S" => {
                let data = std::fs::read(path).unwrap();
                assert_eq!(mb["size"], data.len() as u64, "{shown}: size");
                let sha = sha256_hex(&data);
                assert_eq!(mb["sha256"], sha, "{shown}: content extracted by tarfile");
                assert_eq!(
                    digests.get(&rel),
                    Some(&(data.len() as u64, sha)),
                    "{shown}: manifest.json entry"
                );
                assert_eq!(
                    ty == "S",
                    rel.starts_with(b"odd/sparse"),
                    "{shown}: sparse member iff the file has holes"
                );
                files_seen += 1;
            }
            _ => {}
        }
    }
    let missing: Vec<String> = expected
        .keys()
        .filter(|k| !seen.contains(*k))
        .map(|k| show(k))
        .collect();
    assert!(missing.is_empty(), "not in the archive: {missing:?}");
    assert_eq!(hardlinks, 2, "deep/hard-b and p2/a-link");
    assert_eq!(files_seen, digests.len(), "manifest lists each file once");
}

/// Test 3: holes survive GNU tar's extraction and `restore FILE.tar.gz`,
/// which also gives back the whole tree.
#[test]
fn sparse_files_stay_sparse_and_restore_from_the_archive_equals_the_source() {
    let (env, src, _) = snapshotted();
    let (archive, _) = export(&env, &[]);
    let allocated = |p: &Path| p.metadata().unwrap().blocks() * 512;

    let x = env.path("gnu");
    gnu_extract(&archive, &x);
    let t = env.path("t");
    env.restore(&[s(&archive), "--target", s(&t)]);
    for root in [x.join(NAME).join("odd"), t.join("odd")] {
        let sparse = root.join("sparse.img");
        assert_eq!(sparse.metadata().unwrap().len(), SPARSE_LEN);
        assert!(
            allocated(&sparse) <= 256 << 10,
            "{}: {} bytes allocated for {SPARSE_LEN} with 4 KiB of data",
            sparse.display(),
            allocated(&sparse)
        );
        let tail = root.join("sparse-tail.img");
        assert_eq!(tail.metadata().unwrap().len(), 2 << 20);
        assert!(allocated(&tail) <= 256 << 10, "{}", tail.display());
        assert_eq!(
            std::fs::read(&sparse).unwrap(),
            std::fs::read(src.odd.join("sparse.img")).unwrap()
        );
    }
    assert_same_tree(&src.odd, &t.join("odd"));
    assert_multi_layout(&src, &t);
}

/// Test 4: export then import gives a snapshot equal to the original: no
/// differences, same type, time and source paths, and it restores to the
/// source tree.
#[test]
fn export_then_import_gives_the_same_snapshot() {
    let (env, src, orig) = snapshotted();
    let (archive, _) = export(&env, &[]);

    let rep = env.json(&["import", s(&archive)]);
    let imported = &rep["imported"][0];
    assert_eq!(imported["archive"], format!("{NAME}.tar.gz"));
    assert_eq!(imported["type"], "full");
    assert!(
        imported["verified_files"].as_u64().unwrap() > 10,
        "digests checked: {rep:#}"
    );
    let new_id = imported["snapshot_id"].as_str().unwrap()[..8].to_string();
    assert_ne!(new_id, orig);

    let diff = env.json(&["diff", &orig, &new_id]);
    assert_eq!(diff, Value::Array(vec![]), "import changed something");

    let list = snapshots(&env);
    assert_eq!(list.len(), 2);
    let find = |id: &str| {
        list.iter()
            .find(|v| v["short_id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed"))
            .clone()
    };
    let (a, b) = (find(&orig), find(&new_id));
    assert_eq!(b["type"], "full");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(b["time"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339(TIME).unwrap()
    );
    assert_eq!(b["imported_from"], format!("{NAME}.tar.gz"));
    let paths = |v: &Value| -> Vec<Value> {
        v["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| serde_json::json!([p["name"], p["paths"]]))
            .collect()
    };
    assert_eq!(
        paths(&a),
        paths(&b),
        "source paths kept for in-place restore"
    );

    let out = env.path("out-imported");
    env.restore(&[&new_id, "--target", s(&out)]);
    assert_same_tree(&src.odd, &out.join("odd"));
    assert_multi_layout(&src, &out);
}

/// An xattr value holding a newline is valid in a PAX record (records are
/// length-prefixed): GNU tar restores it, and opc-store must read back the
/// archive it wrote (verify, restore FILE, import).
#[test]
fn xattr_values_with_newlines_survive_the_archive() {
    let env = Env::with_repo();
    let src = env.path("data/app");
    write(&src.join("notes.txt"), b"notes\n");
    write(&src.join("name with\nnewline"), b"newline in the name\n");
    let xattrs = xattrs_supported(&src);
    if xattrs {
        xattr::set(src.join("notes.txt"), "user.multi", b"line one\nline two\n").unwrap();
    }
    env.components(&[("app", &[&src])]);
    env.snapshot(&["--time", TIME]);
    let (archive, _) = export(&env, &[]);

    if xattrs {
        let x = env.path("gnu");
        gnu_extract(&archive, &x);
        assert_same_tree(&src, &x.join(NAME).join("app"));
    }
    let v = env.json(&["verify", s(&archive)]);
    assert_eq!(v["ok"], true, "{v:#}");
    let t = env.path("t");
    env.restore(&[s(&archive), "--target", s(&t)]);
    assert_same_tree(&src, &t.join("app"));
    let rep = env.json(&["import", s(&archive)]);
    let id = rep["imported"][0]["snapshot_id"].as_str().unwrap()[..8].to_string();
    let out = env.path("out-imported");
    env.restore(&[&id, "--target", s(&out)]);
    assert_same_tree(&src, &out.join("app"));
}

/// Sets every mtime under `root` to whole seconds, as GNU tar's default
/// format stores them.
fn whole_second_mtimes(root: &Path, base: i64) {
    let mut n = 0;
    fn visit(p: &Path, base: i64, n: &mut i64) {
        let md = p.symlink_metadata().unwrap();
        if md.is_dir() {
            let mut kids: Vec<PathBuf> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            kids.sort();
            for k in kids {
                visit(&k, base, n);
            }
        }
        *n += 1;
        set_mtime(p, (base + *n * 61) * 1_000_000_000);
    }
    visit(root, base, &mut n);
}

/// A legacy backup folder `<dir>/<name>/` with component folders made of
/// a few files, a symlink and a hardlink; `manifest` written when given.
/// Returns `<dir>/<name>`.
fn legacy_folder(dir: &Path, name: &str, comps: &[&str], manifest: Option<Value>) -> PathBuf {
    let top = dir.join(name);
    for (i, c) in comps.iter().enumerate() {
        let root = top.join(c);
        write(
            &root.join("chroma.sqlite3"),
            &random_bytes(i as u64 + 20, 100_000),
        );
        write(
            &root.join("seg/data_level0.bin"),
            &random_bytes(i as u64 + 30, 50_000),
        );
        write(&root.join("seg/header.bin"), b"header");
        std::os::unix::fs::symlink("../chroma.sqlite3", root.join("seg/db-link")).unwrap();
        std::fs::hard_link(root.join("seg/header.bin"), root.join("header-link.bin")).unwrap();
        chmod(&root.join("seg"), 0o750);
    }
    if let Some(m) = manifest {
        write(
            &top.join("manifest.json"),
            serde_json::to_string_pretty(&m).unwrap().as_bytes(),
        );
    }
    whole_second_mtimes(&top, 1_700_000_000);
    top
}

/// `tar -czf <dir>/<name>.tar.gz -C <dir> <name>` with GNU tar defaults.
fn legacy_tar(dir: &Path, name: &str) -> PathBuf {
    let archive = dir.join(format!("{name}.tar.gz"));
    run(Proc::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(dir)
        .arg(name));
    archive
}

/// The naive local time of an RFC 3339 string.
fn local(t: &Value) -> String {
    chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Test 5: an archive of the legacy scripts (GNU tar, legacy manifest or
/// none) imports with the type and time of its name, and both restoring the
/// import and `restore FILE` give back the original folder.
#[test]
fn legacy_gnu_tar_archives_import_and_restore() {
    let env = Env::with_repo();
    env.components(&[("chromadb", &[&env.path("data/unused")])]);
    let legacy = env.path("legacy");
    let name = "opc_backup_chromadb_20241201_020000";
    let top = legacy_folder(
        &legacy,
        name,
        &["chromadb"],
        Some(serde_json::json!({
            "backup_type": "chromadb",
            "timestamp": "20241201_020000",
            "components": ["chromadb"],
        })),
    );
    let archive = legacy_tar(&legacy, name);

    let rep = env.json(&["import", s(&archive)]);
    let imp = &rep["imported"][0];
    assert_eq!(imp["type"], "chromadb");
    assert_eq!(local(&imp["time"]), "2024-12-01 02:00:00");
    assert_eq!(imp["components"], serde_json::json!(["chromadb"]));
    let id = imp["snapshot_id"].as_str().unwrap()[..8].to_string();
    let list = snapshots(&env);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["type"], "chromadb");
    assert_eq!(list[0]["imported_from"], format!("{name}.tar.gz"));

    let out = env.path("from-repo");
    env.restore(&[&id, "--target", s(&out)]);
    assert_same_tree(&top.join("chromadb"), &out.join("chromadb"));
    let out = env.path("from-file");
    env.restore(&[s(&archive), "--target", s(&out)]);
    assert_same_tree(&top.join("chromadb"), &out.join("chromadb"));
    // Sound, with no digests to check.
    let v = env.json(&["verify", s(&archive)]);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["has_digests"], false, "{v:#}");

    // No manifest at all: type and time come from the name, or --time.
    let name2 = "opc_backup_application_20241202_030405";
    let top2 = legacy_folder(&legacy, name2, &["application"], None);
    let archive2 = legacy_tar(&legacy, name2);
    let out = env
        .cmd()
        .args(["import", s(&archive2), "--json"])
        .assert()
        .code(predicate::in_iter([0, 1]))
        .get_output()
        .stdout
        .clone();
    let imp = &parse_json(&out)["imported"][0];
    assert_eq!(imp["type"], "application");
    assert_eq!(local(&imp["time"]), "2024-12-02 03:04:05");
    let id2 = imp["snapshot_id"].as_str().unwrap()[..8].to_string();
    let out = env.path("from-repo-2");
    env.restore(&[&id2, "--target", s(&out)]);
    assert_same_tree(&top2.join("application"), &out.join("application"));

    let out = env
        .cmd()
        .args([
            "import",
            s(&archive2),
            "--time",
            "2023-05-06T07:08:09+02:00",
            "--json",
        ])
        .assert()
        .code(predicate::in_iter([0, 1]))
        .get_output()
        .stdout
        .clone();
    let imp = &parse_json(&out)["imported"][0];
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(imp["time"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339("2023-05-06T07:08:09+02:00").unwrap()
    );
    assert_eq!(snapshots(&env).len(), 3);
}

/// Test 6: `import --all` takes archives oldest first by the time in their
/// names (not by name or file mtime), and a second run skips them all.
#[test]
fn import_all_goes_oldest_first_and_skips_what_it_already_imported() {
    let env = Env::with_repo();
    env.components(&[("chromadb", &[&env.path("data/unused")])]);
    let work = env.path("work");
    let dir = env.path("archives");
    std::fs::create_dir_all(&dir).unwrap();
    // Name order (application < chromadb < full) and mtime order are both
    // the reverse of, or unlike, the time order.
    let specs = [
        ("application", "20241203_020000", &["application"][..], 1),
        ("chromadb", "20241201_020000", &["chromadb"][..], 3),
        (
            "full",
            "20241202_020000",
            &["chromadb", "application"][..],
            2,
        ),
    ];
    for (kind, time, comps, mtime_rank) in specs {
        let name = format!("opc_backup_{kind}_{time}");
        legacy_folder(
            &work,
            &name,
            comps,
            Some(serde_json::json!({
                "backup_type": kind,
                "timestamp": time,
                "components": comps,
            })),
        );
        let a = legacy_tar(&work, &name);
        let dest = dir.join(a.file_name().unwrap());
        std::fs::rename(&a, &dest).unwrap();
        set_mtime(&dest, (1_800_000_000 + mtime_rank * 1000) * 1_000_000_000);
    }
    write(&dir.join("notes.txt"), b"not an archive");

    let rep = env.json(&["import", "--all", s(&dir)]);
    let order: Vec<&str> = rep["imported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["archive"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "opc_backup_chromadb_20241201_020000.tar.gz",
            "opc_backup_full_20241202_020000.tar.gz",
            "opc_backup_application_20241203_020000.tar.gz",
        ],
        "{rep:#}"
    );
    assert_eq!(rep["skipped"], serde_json::json!([]));
    assert_eq!(rep["failed"], 0);

    let list = snapshots(&env);
    assert_eq!(list.len(), 3);
    let by_archive = |n: &str| {
        list.iter()
            .find(|v| v["imported_from"] == format!("opc_backup_{n}.tar.gz"))
            .unwrap_or_else(|| panic!("{n} not imported"))
    };
    let (c, f, a) = (
        by_archive("chromadb_20241201_020000"),
        by_archive("full_20241202_020000"),
        by_archive("application_20241203_020000"),
    );
    assert_eq!(
        [&c["type"], &f["type"], &a["type"]],
        ["chromadb", "full", "application"]
    );
    assert_eq!(local(&c["time"]), "2024-12-01 02:00:00");
    assert_eq!(local(&f["time"]), "2024-12-02 02:00:00");
    assert_eq!(local(&a["time"]), "2024-12-03 02:00:00");
    let started =
        |v: &Value| chrono::DateTime::parse_from_rfc3339(v["start"].as_str().unwrap()).unwrap();
    assert!(
        started(c) < started(f) && started(f) < started(a),
        "imported oldest first: {} {} {}",
        c["start"],
        f["start"],
        a["start"]
    );
    let parts: Vec<&str> = f["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(parts, ["chromadb", "application"], "manifest order");

    let again = env.json(&["import", "--all", s(&dir)]);
    assert_eq!(again["imported"], serde_json::json!([]), "{again:#}");
    let mut skipped: Vec<&str> = again["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            "opc_backup_application_20241203_020000.tar.gz",
            "opc_backup_chromadb_20241201_020000.tar.gz",
            "opc_backup_full_20241202_020000.tar.gz",
        ]
    );
    assert_eq!(snapshots(&env).len(), 3);
}

/// Two components with a few plain files, snapshotted at [`TIME`].
fn small(env: &Env) -> (PathBuf, PathBuf) {
    let (app, chroma) = small_tree(env);
    env.components(&[("application", &[&app]), ("chromadb", &[&chroma])]);
    env.snapshot(&["--time", TIME]);
    (app, chroma)
}

fn small_tree(env: &Env) -> (PathBuf, PathBuf) {
    let app = env.path("data/app");
    let chroma = env.path("data/chromadb");
    write(&app.join("config/settings.yml"), b"a: 1\nb: 2\n");
    write(&app.join("uploads/report.pdf"), &random_bytes(3, 200_000));
    write(&app.join("notes.txt"), b"notes\n");
    write(&chroma.join("chroma.sqlite3"), &random_bytes(4, 300_000));
    write(
        &chroma.join("seg/data_level0.bin"),
        &random_bytes(5, 100_000),
    );
    (app, chroma)
}

/// Rewrites `src` into `dst` with Python's tarfile, flipping the first byte
/// of member `victim` and keeping everything else, manifest included.
const PY_TAMPER: &str = r#"
import io, sys, tarfile
src, dst, victim = sys.argv[1:4]
with tarfile.open(src, "r:gz") as i, tarfile.open(dst, "w:gz", format=tarfile.PAX_FORMAT) as o:
    n = 0
    for m in i:
        if m.isreg():
            data = i.extractfile(m).read()
            if m.name == victim:
                data = bytes([data[0] ^ 1]) + data[1:]
                n += 1
            o.addfile(m, io.BytesIO(data))
        else:
            o.addfile(m)
    assert n == 1, "victim not found"
"#;

/// Runs `verify FILE` expecting exit 14; returns stdout + stderr.
fn verify_fails(env: &Env, archive: &Path) -> String {
    let out = env
        .cmd()
        .args(["verify", s(archive)])
        .assert()
        .code(14)
        .get_output()
        .clone();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Test 7: `verify` passes a good archive and names what is wrong with a
/// changed file, a truncated archive and damaged gzip data.
#[test]
fn verify_passes_good_archives_and_names_damage() {
    let env = Env::with_repo();
    small(&env);
    let (archive, _) = export(&env, &[]);
    let v = env.json(&["verify", s(&archive)]);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["has_digests"], true);
    assert_eq!(v["verified_files"], 5);
    assert_eq!(v["backup_name"], NAME);
    env.cmd()
        .args(["verify", s(&archive)])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("ok: "));

    let bad = env.path("bad");
    std::fs::create_dir_all(&bad).unwrap();

    // One file's bytes changed, manifest kept.
    let tampered = bad.join(format!("{NAME}.tar.gz"));
    let victim = format!("{NAME}/application/config/settings.yml");
    python(PY_TAMPER, &[s(&archive), s(&tampered), &victim]);
    let text = verify_fails(&env, &tampered);
    assert!(
        text.contains("application/config/settings.yml") && text.contains("SHA-256"),
        "{text}"
    );
    let before = snapshots(&env).len();
    env.cmd()
        .args(["import", s(&tampered)])
        .assert()
        .code(14)
        .stderr(predicate::str::contains("application/config/settings.yml"));
    assert_eq!(
        snapshots(&env).len(),
        before,
        "no snapshot from a bad archive"
    );
    let t = env.path("t-tampered");
    env.cmd()
        .args(["restore", s(&tampered), "--target", s(&t)])
        .assert()
        .code(14)
        .stderr(predicate::str::contains("application/config/settings.yml"));
    assert!(
        !t.join("application/config/settings.yml").exists(),
        "a damaged file was written"
    );

    let good = std::fs::read(&archive).unwrap();

    // Cut in half.
    let truncated = bad.join("truncated.tar.gz");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let text = verify_fails(&env, &truncated);
    assert!(
        text.contains("truncated.tar.gz") && text.contains("truncated"),
        "{text}"
    );

    // Bytes flipped in the middle of the deflate stream.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let flipped_path = bad.join("flipped.tar.gz");
    std::fs::write(&flipped_path, &flipped).unwrap();
    let text = verify_fails(&env, &flipped_path);
    assert!(text.contains("FAIL: "), "{text}");
}

/// Test 7b: the gzip trailer (CRC-32 and length of the data) is part of
/// the archive: `gzip -t` and `tar -xzf` reject a file whose trailer is
/// wrong or missing, so `verify` must too. For a legacy archive, which has
/// no SHA-256 digests, the CRC is the only check of the content: a flipped
/// byte inside a stored (incompressible) deflate block decodes without
/// error and only the CRC reveals it.
#[test]
fn verify_checks_the_gzip_trailer() {
    let env = Env::with_repo();
    small(&env);
    let (archive, _) = export(&env, &[]);
    let good = std::fs::read(&archive).unwrap();

    let mut crc = good.clone();
    let at = crc.len() - 8;
    crc[at] ^= 0xff;
    let crc_path = env.path("crc.tar.gz");
    std::fs::write(&crc_path, &crc).unwrap();

    let cut_path = env.path("no-trailer.tar.gz");
    std::fs::write(&cut_path, &good[..good.len() - 8]).unwrap();

    let legacy = env.path("legacy");
    let name = "opc_backup_chromadb_20241201_020000";
    write(
        &legacy.join(name).join("chromadb/data.bin"),
        &random_bytes(9, 300_000),
    );
    let legacy_archive = legacy_tar(&legacy, name);
    let mut flipped = std::fs::read(&legacy_archive).unwrap();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let legacy_path = env.path("legacy-flipped.tar.gz");
    std::fs::write(&legacy_path, &flipped).unwrap();

    let mut problems = Vec::new();
    for bad in [&crc_path, &cut_path, &legacy_path] {
        let gz = Proc::new("gzip").arg("-t").arg(bad).output().unwrap();
        assert!(!gz.status.success(), "gzip -t accepts {}", bad.display());
        let out = env.cmd().args(["verify", s(bad)]).output().unwrap();
        if out.status.code() != Some(14) {
            problems.push(format!(
                "verify {} exits {:?}: {}",
                bad.display(),
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).trim()
            ));
        }
    }
    // Importing it would store the damaged content as a sound snapshot.
    let before = snapshots(&env).len();
    let out = env
        .cmd()
        .args(["import", s(&legacy_path)])
        .output()
        .unwrap();
    if out.status.code() != Some(14) || snapshots(&env).len() != before {
        problems.push(format!(
            "import {} exits {:?} and makes {} snapshot(s)",
            legacy_path.display(),
            out.status.code(),
            snapshots(&env).len() - before
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Builds `<dir>/<file>` with Python's tarfile (GNU format, names kept
/// verbatim) from `(name, type, data-or-link)` triples.
const PY_BUILD: &str = r#"
import io, json, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz", format=tarfile.GNU_FORMAT) as t:
    for name, kind, arg in json.loads(sys.argv[2]):
        i = tarfile.TarInfo(name)
        i.mtime = 1700000000
        if kind == "dir":
            i.type, i.mode = tarfile.DIRTYPE, 0o755
            t.addfile(i)
        elif kind == "symlink":
            i.type, i.mode, i.linkname = tarfile.SYMTYPE, 0o777, arg
            t.addfile(i)
        else:
            data = arg.encode()
            i.size, i.mode = len(data), 0o644
            t.addfile(i, io.BytesIO(data))
"#;

const HOSTILE_NAME: &str = "opc_backup_comp_20240101_000000";

/// A hostile archive, named like a real backup so that only its content
/// can make it fail. `outside` are paths a careless extractor would create.
struct Hostile {
    archive: PathBuf,
    target: PathBuf,
    outside: Vec<PathBuf>,
}

fn hostile(env: &Env, members: &[(String, &str, String)], outside: &[&str]) -> Hostile {
    env.components(&[("comp", &[&env.path("data/unused")])]);
    std::fs::create_dir_all(env.path("outside")).unwrap();
    let dir = env.path("hostile");
    std::fs::create_dir_all(&dir).unwrap();
    let archive = dir.join(format!("{HOSTILE_NAME}.tar.gz"));
    let spec = serde_json::to_string(members).unwrap();
    python(PY_BUILD, &[s(&archive), &spec]);
    Hostile {
        archive,
        // Two levels below the sandbox, so `..` escapes stay observable.
        target: env.path("restore/t"),
        outside: outside.iter().map(|p| env.path(p)).collect(),
    }
}

fn member(name: impl Into<String>, kind: &str, arg: impl Into<String>) -> (String, &str, String) {
    (name.into(), kind, arg.into())
}

/// Regular files under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd {
        let p = e.unwrap().path();
        let md = p.symlink_metadata().unwrap();
        if md.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `restore FILE` and `import FILE` both refuse `h` with exit 14 and a
/// message containing `why`, write nothing outside the target, create no
/// snapshot; `verify` calls the archive unsound, and the refused restore
/// wrote no file inside the target either (the archive is verified first).
fn assert_refused(env: &Env, h: &Hostile, why: &str) {
    env.cmd()
        .args(["restore", s(&h.archive), "--target", s(&h.target)])
        .assert()
        .code(14)
        .stderr(predicate::str::contains(why));
    for p in &h.outside {
        assert!(
            p.symlink_metadata().is_err(),
            "restore wrote {} outside the target",
            p.display()
        );
    }

    let before = snapshots(env).len();
    env.cmd()
        .args(["import", s(&h.archive)])
        .assert()
        .code(14)
        .stderr(predicate::str::contains(why));
    assert_eq!(
        snapshots(env).len(),
        before,
        "import of a hostile archive made a snapshot"
    );
    for p in &h.outside {
        assert!(p.symlink_metadata().is_err(), "{}", p.display());
    }

    // Both checked, then reported together.
    let mut problems = Vec::new();
    let v = env.cmd().args(["verify", s(&h.archive)]).output().unwrap();
    let text =
        String::from_utf8_lossy(&v.stdout).into_owned() + &String::from_utf8_lossy(&v.stderr);
    if v.status.code() != Some(14) || !text.contains(why) {
        problems.push(format!(
            "verify exits {:?} without naming {why:?}: {}",
            v.status.code(),
            text.trim()
        ));
    }
    let written = files_under(&h.target);
    if !written.is_empty() {
        problems.push(format!(
            "the refused restore left files in the target: {written:?}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Test 8: `..` after the top folder.
#[test]
fn hostile_dotdot_member_is_refused() {
    let env = Env::with_repo();
    let t = HOSTILE_NAME;
    let h = hostile(
        &env,
        &[
            member(format!("{t}/comp/ok.txt"), "file", "ok"),
            member(format!("{t}/../evil"), "file", "evil"),
        ],
        &["restore/evil", "evil"],
    );
    assert_refused(&env, &h, "..");
}

/// Test 8: `..` deep enough to climb out of the target.
#[test]
fn hostile_deep_dotdot_member_is_refused() {
    let env = Env::with_repo();
    let t = HOSTILE_NAME;
    let h = hostile(
        &env,
        &[
            member(format!("{t}/comp/ok.txt"), "file", "ok"),
            member(format!("{t}/comp/../../../evil"), "file", "evil"),
        ],
        &["restore/evil", "evil"],
    );
    assert_refused(&env, &h, "..");
}

/// Test 8: an absolute member path.
#[test]
fn hostile_absolute_member_is_refused() {
    let env = Env::with_repo();
    let t = HOSTILE_NAME;
    let abs = env.path("abs-evil");
    let h = hostile(
        &env,
        &[
            member(format!("{t}/comp/ok.txt"), "file", "ok"),
            member(s(&abs), "file", "evil"),
        ],
        &["abs-evil"],
    );
    assert_refused(&env, &h, "absolute");
}

/// Test 8: a symlink to an absolute folder outside (a sandbox folder
/// standing in for /etc), then a member written through it.
#[test]
fn hostile_write_through_absolute_symlink_is_refused() {
    let env = Env::with_repo();
    let t = HOSTILE_NAME;
    let outside = env.path("outside");
    let h = hostile(
        &env,
        &[
            member(format!("{t}/comp/ok.txt"), "file", "ok"),
            member(format!("{t}/comp/l"), "symlink", s(&outside)),
            member(format!("{t}/comp/l/passwd"), "file", "root::0:0::/:/bin/sh"),
        ],
        &["outside/passwd"],
    );
    assert_refused(&env, &h, "comp/l");
}

/// Test 8: a symlink climbing out with `../../..`, then a member through it.
#[test]
fn hostile_write_through_upward_symlink_is_refused() {
    let env = Env::with_repo();
    let t = HOSTILE_NAME;
    let h = hostile(
        &env,
        &[
            member(format!("{t}/comp/ok.txt"), "file", "ok"),
            member(format!("{t}/comp/up"), "symlink", "../../.."),
            member(format!("{t}/comp/up/evil"), "file", "evil"),
        ],
        // <target>/comp/up resolves to <sandbox>/restore.
        &["restore/evil", "evil"],
    );
    assert_refused(&env, &h, "comp/up");
}

/// Test 8: a member below a symlink member, even one pointing inside.
#[test]
fn hostile_member_below_a_symlink_is_refused() {
    let env = Env::with_repo();
    let t = HOSTILE_NAME;
    let h = hostile(
        &env,
        &[
            member(format!("{t}/comp/ok.txt"), "file", "ok"),
            member(format!("{t}/comp/sub"), "dir", ""),
            member(format!("{t}/comp/l"), "symlink", "sub"),
            member(format!("{t}/comp/l/x"), "file", "through a link"),
        ],
        &[],
    );
    assert_refused(&env, &h, "comp/l");
    assert!(!h.target.join("comp/sub/x").exists());
}

/// Test 8: two top folders.
#[test]
fn hostile_two_top_folders_are_refused() {
    let env = Env::with_repo();
    let t = HOSTILE_NAME;
    let h = hostile(
        &env,
        &[
            member(format!("{t}/comp/a"), "file", "a"),
            member("other/comp/b", "file", "b"),
        ],
        &["restore/other", "other"],
    );
    assert_refused(&env, &h, "more than one top folder");
}

/// Test 8: a lone symlink pointing outside the target is not restored from
/// an archive, and nothing lands outside.
#[test]
fn restore_from_archive_refuses_a_symlink_pointing_outside() {
    let env = Env::with_repo();
    let t = HOSTILE_NAME;
    let h = hostile(
        &env,
        &[
            member(format!("{t}/comp/ok.txt"), "file", "ok"),
            member(format!("{t}/comp/up"), "symlink", "../../../outside"),
        ],
        &[],
    );
    env.cmd()
        .args(["restore", s(&h.archive), "--target", s(&h.target)])
        .assert()
        .code(14)
        .stderr(predicate::str::contains("comp/up").and(predicate::str::contains("outside")));
    assert!(h.target.join("comp/up").symlink_metadata().is_err());
}

/// Test 9: `-o -` streams a valid archive to stdout; `--component` names
/// the archive by the component; two of three components are refused.
#[test]
fn export_to_stdout_and_by_component() {
    let env = Env::with_repo();
    let (app, chroma) = small_tree(&env);
    let third = env.path("data/third");
    write(&third.join("t.txt"), b"t");
    env.components(&[
        ("application", &[&app]),
        ("chromadb", &[&chroma]),
        ("third", &[&third]),
    ]);
    env.snapshot(&["--time", TIME]);

    let stdout = env
        .cmd()
        .args(["export", "latest", "-o", "-", "-q"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(&stdout[..2], &[0x1f, 0x8b], "gzip magic on stdout");
    let streamed = env.path("streamed.tar.gz");
    std::fs::write(&streamed, &stdout).unwrap();
    run(Proc::new("gzip").arg("-t").arg(&streamed));
    let names: Vec<String> = tar_list(&streamed).iter().map(|n| show(n)).collect();
    assert_eq!(names[0], format!("{NAME}/manifest.json"));
    for want in [
        "application/config/settings.yml",
        "chromadb/seg/data_level0.bin",
        "third/t.txt",
    ] {
        assert!(
            names.contains(&format!("{NAME}/{want}")),
            "{want} not in {names:?}"
        );
    }
    assert!(
        !env.path(&format!("{NAME}.tar.gz")).exists(),
        "-o - writes no file"
    );

    // -o FILE: that exact file, mode 0600.
    let file = env.path("custom/name.tgz");
    env.cmd()
        .args(["export", "latest", "-o", s(&file), "-q"])
        .assert()
        .code(0);
    assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(tar_list(&file).len(), names.len());

    let (one, rep) = export(&env, &["--component", "chromadb"]);
    let one_name = "opc_backup_chromadb_20241201_020000";
    assert_eq!(
        one.file_name().unwrap(),
        OsStr::new(&format!("{one_name}.tar.gz"))
    );
    assert_eq!(rep["type"], "chromadb");
    let listed: Vec<String> = tar_list(&one).iter().map(|n| show(n)).collect();
    assert_eq!(listed[0], format!("{one_name}/manifest.json"));
    assert!(
        listed[1..]
            .iter()
            .all(|n| n.starts_with(&format!("{one_name}/chromadb"))),
        "{listed:?}"
    );
    let m = manifest_json(&one, one_name);
    assert_eq!(m["type"], "chromadb");
    assert_eq!(m["components"].as_array().unwrap().len(), 1);
    assert_eq!(m["components"][0]["name"], "chromadb");

    // The same archive again: refused, the first kept.
    let before = std::fs::read(&one).unwrap();
    env.cmd()
        .args([
            "export",
            "latest",
            "--component",
            "chromadb",
            "--output-dir",
            s(&env.path("out")),
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("exists"));
    assert_eq!(std::fs::read(&one).unwrap(), before);

    let two = env.path("two");
    env.cmd()
        .args([
            "export",
            "latest",
            "--component",
            "chromadb",
            "--component",
            "application",
            "--output-dir",
            s(&two),
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("one component or all"));
    assert!(
        files_under(&two).is_empty(),
        "nothing written for a refused export"
    );
}

/// Test 10: `restore FILE --component` restores only that component, and a
/// non-empty target is refused without `--force`.
#[test]
fn restore_from_archive_by_component_and_force() {
    let env = Env::with_repo();
    let (app, chroma) = small(&env);
    let (archive, _) = export(&env, &[]);

    let t = env.path("t");
    env.restore(&[s(&archive), "--component", "chromadb", "--target", s(&t)]);
    assert_same_tree(&chroma, &t.join("chromadb"));
    let names: Vec<String> = std::fs::read_dir(&t)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["chromadb"]);

    env.cmd()
        .args([
            "restore",
            s(&archive),
            "--component",
            "nope",
            "--target",
            s(&t),
        ])
        .assert()
        .code(16)
        .stderr(predicate::str::contains("nope"));

    // Non-empty target: refused without --force, mine kept.
    let u = env.path("u");
    write(&u.join("application/keep.txt"), b"mine");
    env.cmd()
        .args(["restore", s(&archive), "--target", s(&u)])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("not empty").and(predicate::str::contains("--force")));
    assert_eq!(
        std::fs::read(u.join("application/keep.txt")).unwrap(),
        b"mine"
    );
    assert!(!u.join("application/notes.txt").exists());

    env.restore(&[s(&archive), "--target", s(&u), "--force"]);
    assert_same_tree(&chroma, &u.join("chromadb"));
    // --force replaces what the archive holds and leaves other files.
    let restored = manifest(&u.join("application"));
    let want = manifest(&app);
    assert_eq!(
        want.entries.len() + 1,
        restored.entries.len(),
        "archive entries plus keep.txt"
    );
    for (rel, e) in &want.entries {
        assert_eq!(restored.entries.get(rel), Some(e), "{}", show(rel));
    }
    assert_eq!(
        std::fs::read(u.join("application/keep.txt")).unwrap(),
        b"mine"
    );
}
