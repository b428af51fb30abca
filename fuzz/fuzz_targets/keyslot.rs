//! Key slots are plaintext JSON read before any authentication, so whoever
//! holds the storage controls every byte of them. Version 2 slots wrap a
//! keyring whose decoder only sees authenticated plaintext; it is fed the
//! raw input too, so a bug there cannot hide behind the AEAD.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opc_store::crypto::{KeySlot, Keyring};

fuzz_target!(|data: &[u8]| {
    if let Some(k) = Keyring::from_bytes(data) {
        assert_eq!(k.to_bytes(), data, "keyring decoding is not canonical");
    }
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
