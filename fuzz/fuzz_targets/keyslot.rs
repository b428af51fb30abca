//! Key slots are plaintext JSON read before any authentication, so whoever
//! holds the storage controls every byte of them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opc_store::crypto::KeySlot;

fuzz_target!(|data: &[u8]| {
    let Ok(slot) = serde_json::from_slice::<KeySlot>(data) else {
        return;
    };
    // The Argon2 cost comes from the input. Real costs (64 MiB and more) make
    // one run take a quarter second, so skip them: parsing them is covered
    // above and Argon2 itself is not what is under test.
    if let Some(p) = slot.params {
        if p.memory_kib > 1024 || p.iterations > 2 {
            return;
        }
    }
    let _ = slot.open(b"pw");
});
