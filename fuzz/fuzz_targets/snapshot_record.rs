//! Snapshot records are parsed from every stored snapshot when the index
//! is rebuilt; a bad one must be an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opc_store::snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = serde_json::from_slice::<Snapshot>(data) {
        let _ = s.datetime();
        let _ = s.part("full");
        // A record that parses must survive a round trip unchanged.
        let again: Snapshot = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(again, s);
    }
});
