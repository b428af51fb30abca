//! Archives given to `import`, `verify` and `restore FILE.tar.gz` come from
//! anywhere: a damaged or hostile tar stream must be refused with an error,
//! never a panic, a hang or unbounded memory, and no accepted member may
//! name a path outside its top folder.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use opc_store::ops::tarball::{for_each_member, read_loose, MemberKind};

fuzz_target!(|data: &[u8]| {
    let input = Box::new(std::io::Cursor::new(data.to_vec()));
    let _ = for_each_member(input, "fuzz", |m, r| {
        assert!(!m.rel.starts_with(b"/"), "absolute member accepted");
        for c in m.rel.split(|&b| b == b'/') {
            assert!(c != b".." && c != b"." && (m.rel.is_empty() || !c.is_empty()));
        }
        if let MemberKind::Hardlink(t) = &m.kind {
            assert!(!t.is_empty() && !t.starts_with(b"/"));
        }
        let mut buf = Vec::new();
        r.take(1 << 20).read_to_end(&mut buf).ok();
        if m.rel == b"manifest.json" {
            let _ = read_loose(&buf);
        }
        Ok(())
    });
});
