//! A generated source tree holding every kind of entry the tool must
//! round-trip. Run as root it also has foreign owners and device nodes.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::{is_root, random_bytes, write};

/// Size of the sparse file and where its two data regions are.
pub const SPARSE_LEN: u64 = 64 << 20;
pub const SPARSE_DATA: [u64; 2] = [1 << 20, 48 << 20];
pub const SPARSE_REGION: usize = 4096;

/// Foreign owner given to some entries when running as root.
pub const UID: u32 = 1234;
pub const GID: u32 = 5678;

/// What the generated tree could include on this system.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    /// The filesystem accepts `user.*` extended attributes.
    pub xattrs: bool,
    /// Running as root: foreign owners, device nodes.
    pub root: bool,
}

fn at(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

fn mkdir(p: &Path, mode: u32) {
    fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    chmod(p, mode);
}

pub fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// Whether the filesystem under `dir` takes user xattrs. Some (tmpfs on
/// old kernels, overlayfs setups) refuse them; then the xattr cases are
/// left out and a note is printed, rather than failing for the host.
pub fn xattrs_supported(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    write(&probe, b"");
    let ok = xattr::set(&probe, "user.probe", b"1").is_ok();
    fs::remove_file(&probe).expect("remove probe");
    if !ok {
        eprintln!(
            "note: {} refuses user xattrs; xattr cases are skipped",
            dir.display()
        );
    }
    ok
}

/// Builds the tree at `root` (which must not exist yet) and returns what it
/// holds. Every entry gets a distinct nanosecond mtime at the end.
pub fn everything(root: &Path) -> Features {
    mkdir(root, 0o755);
    let f = Features {
        xattrs: xattrs_supported(root),
        root: is_root(),
    };
    let p = |rel: &str| root.join(rel);

    // Regular files: small, multi-chunk (3 MiB random > 1 MiB average
    // chunk), empty; folders: nested and empty.
    write(&p("regular.txt"), b"hello world\n");
    write(&p("big.dat"), &random_bytes(1, 3 << 20));
    write(&p("empty"), b"");
    mkdir(&p("empty-dir"), 0o755);
    write(&p("dir/sub/deep.txt"), b"deep inside\n");

    // Symlinks: relative, absolute, to a folder, upwards, and dangling.
    symlink("regular.txt", p("link-rel")).expect("symlink");
    symlink("/etc/hostname", p("link-abs")).expect("symlink");
    symlink("dir/sub", p("link-to-dir")).expect("symlink");
    symlink("../../regular.txt", p("dir/sub/up-link")).expect("symlink");
    symlink("does/not/exist", p("dangling")).expect("symlink");

    // Hardlinks: a group of three across folders, a pair in one folder,
    // and an identical but separate copy that must stay separate.
    write(&p("hard-a"), b"linked content\n");
    fs::hard_link(p("hard-a"), p("dir/hard-b")).expect("link");
    fs::hard_link(p("hard-a"), p("dir/sub/hard-c")).expect("link");
    write(&p("pair-1"), &random_bytes(2, 10_000));
    fs::hard_link(p("pair-1"), p("pair-2")).expect("link");
    write(&p("same-content-not-linked"), b"linked content\n");

    sparse_file(&p("sparse.img"));

    // Permissions, including odd ones and set-id/sticky bits.
    for (name, mode) in [
        ("mode-0700", 0o700),
        ("mode-0640", 0o640),
        ("mode-0400", 0o400),
        ("mode-0000", 0),
        ("setuid", 0o4755),
    ] {
        write(&p(name), name.as_bytes());
        chmod(&p(name), mode);
    }
    write(&p("dir-0750/inside"), b"x");
    chmod(&p("dir-0750"), 0o750);
    write(&p("setgid-dir/inside"), b"x");
    mkdir(&p("setgid-dir/subdir"), 0o755);
    chmod(&p("setgid-dir"), 0o2775);
    mkdir(&p("sticky-dir"), 0o1777);
    mkdir(&p("dir-0700"), 0o700);

    // Names: not UTF-8, with a newline, a tab, a leading dash, 255 bytes.
    write(&at(root, b"caf\xe9.txt"), b"latin-1 name\n");
    write(&at(root, b"line\nbreak"), b"newline in name\n");
    write(&at(root, b"tab\tand space "), b"tab\n");
    write(&at(root, b"\xff\xfe-dir/inner\x80file"), b"bytes\n");
    write(&p("-leading-dash"), b"dash\n");
    write(&p(&"n".repeat(255)), b"longest name\n");

    // A path far beyond 255 bytes: 6 nested 200-byte names (~1.3 KB).
    let mut long = p("long");
    for i in 0..6 {
        long.push(format!("{i}{}", "x".repeat(199)));
    }
    write(&long.join("leaf.txt"), b"far away\n");

    // Special files. FIFOs are recreated, never opened.
    nix::unistd::mkfifo(&p("pipe"), Mode::from_bits_truncate(0o640)).expect("mkfifo");
    chmod(&p("pipe"), 0o640);

    if f.xattrs {
        xattr::set(p("regular.txt"), "user.comment", b"a comment").expect("xattr");
        xattr::set(p("big.dat"), "user.binary", &[0, 255, 1, 254, b'\n']).expect("xattr");
        xattr::set(p("empty"), "user.empty-value", b"").expect("xattr");
        xattr::set(p("dir"), "user.folder", b"on a folder").expect("xattr");
        xattr::set(p("hard-a"), "user.shared", b"by all links").expect("xattr");
    }

    if f.root {
        let dev = |rel: &str, kind: SFlag, major, minor| {
            let d = nix::sys::stat::makedev(major, minor);
            nix::sys::stat::mknod(&p(rel), kind, Mode::from_bits_truncate(0o620), d)
                .expect("mknod");
            chmod(&p(rel), 0o620);
        };
        dev("null-dev", SFlag::S_IFCHR, 1, 3);
        dev("block-dev", SFlag::S_IFBLK, 7, 200);
        write(&p("owned/file"), b"owned by someone else\n");
        symlink("file", p("owned/link")).expect("symlink");
        for rel in ["owned", "owned/file", "owned/link", "null-dev"] {
            std::os::unix::fs::lchown(p(rel), Some(UID), Some(GID)).expect("lchown");
        }
        std::os::unix::fs::lchown(p("setuid"), Some(0), Some(GID)).expect("lchown");
        // chown clears set-id bits; put them back.
        chmod(&p("setuid"), 0o4755);
    }

    let mut n = 0;
    set_mtimes(root, &mut n);
    // Times outside 1970..2038 (before the epoch, after 32-bit time_t).
    set_mtime(&p("regular.txt"), -1_500_000_001);
    set_mtime(&p("empty"), 4_102_444_800_123_456_789);
    f
}

/// A 64 MiB sparse file with two 4 KiB data regions.
pub fn sparse_file(path: &Path) {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).expect("mkdir");
    }
    let f = fs::File::create(path).expect("create sparse");
    f.set_len(SPARSE_LEN).expect("set_len");
    for (i, off) in SPARSE_DATA.iter().enumerate() {
        f.write_all_at(&random_bytes(10 + i as u64, SPARSE_REGION), *off)
            .expect("write_at");
    }
}

/// Sets the mtime of `path` without following symlinks.
pub fn set_mtime(path: &Path, ns: i64) {
    let ts = TimeSpec::new(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    nix::sys::stat::utimensat(None, path, &ts, &ts, UtimensatFlags::NoFollowSymlink)
        .unwrap_or_else(|e| panic!("utimensat {}: {e}", path.display()));
}

/// Distinct nanosecond mtimes for everything under `dir`, children first
/// so that setting them does not disturb the folders' own times.
pub fn set_mtimes(dir: &Path, n: &mut i64) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    for child in names {
        if child.symlink_metadata().expect("metadata").is_dir() {
            set_mtimes(&child, n);
        } else {
            set_mtime(&child, stamp(n));
        }
    }
    set_mtime(dir, stamp(n));
}

fn stamp(n: &mut i64) -> i64 {
    *n += 1;
    // Nanoseconds that a microsecond or second rounding would lose.
    1_600_000_000_000_000_000 + *n * 1_000_003_007 + (*n % 3) * 333_333_333
}
