//! manifest.json comes from archives of any origin (the legacy scripts,
//! other tools, an attacker): reading it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opc_store::ops::tarball::{read_loose, Manifest};

fuzz_target!(|data: &[u8]| {
    let _ = read_loose(data);
    if let Ok(m) = serde_json::from_slice::<Manifest>(data) {
        for f in &m.files {
            let _ = f.path_bytes();
        }
    }
});
