//! The trust boundary: master keys, password-wrapped key slots, sealing of
//! every stored object, and length padding. Pure code, no I/O.

mod keyfile;
mod keyring;
mod keys;
mod keyslot;
mod padding;
mod seal;

pub use keyfile::{KeyFileSecret, KEY_FILE_PREFIX};
pub use keyring::{Generation, Keyring, MAX_GENERATIONS};
pub use keys::MasterKeys;
pub use keyslot::{KdfParams, KeySlot};
pub use padding::padme;
pub use seal::{Sealer, NONCE_LEN, TAG_LEN};

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    // getrandom only fails when the OS has no entropy source at all; there is
    // nothing safe to continue with in that case.
    getrandom::getrandom(buf).expect("the operating system's random source failed");
}
