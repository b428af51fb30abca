//! Packfiles: immutable files of many sealed blobs with an encrypted
//! trailer listing them. Format: `docs/FORMAT.md` §6.

pub mod format;
mod reader;
mod writer;

pub use format::{GroupSlot, PackEntry, PACK_MAGIC, PACK_MAGIC_V1};
pub use reader::{read_trailer, read_trailer_which};
pub use writer::{PackWriter, SealedPack};

use crate::id::Id;

/// The backend name of a pack.
pub fn pack_name(id: &Id) -> String {
    let h = id.to_hex();
    format!("data/{}/{}", &h[..2], h)
}

/// The pack id in a backend name produced by [`pack_name`].
pub fn pack_id_from_name(name: &str) -> Option<Id> {
    Id::from_hex(name.rsplit('/').next()?)
}
