//! Reads a pack's trailer: the list of its blobs.

use super::format::{decode_trailer_version, PackEntry, PACK_MAGIC, PACK_MAGIC_V1, TRAILER_AAD};
use crate::backend::Backend;
use crate::crypto::Sealer;
use crate::error::{Error, Result};

/// Reads and authenticates the trailer of the pack stored as `name`.
pub fn read_trailer(backend: &dyn Backend, sealer: &Sealer, name: &str) -> Result<Vec<PackEntry>> {
    read_trailer_which(backend, sealer, name).map(|(_, e)| e)
}

/// [`read_trailer`], also telling which of the sealer's keys opened the
/// trailer (0: the newest generation; see [`Sealer::open_which`]).
pub fn read_trailer_which(
    backend: &dyn Backend,
    sealer: &Sealer,
    name: &str,
) -> Result<(usize, Vec<PackEntry>)> {
    let size = backend
        .size(name)?
        .ok_or_else(|| Error::NotFound(format!("pack {name} does not exist")))?;
    let what = || format!("pack {name}");
    if size < (PACK_MAGIC.len() + 4) as u64 {
        return Err(Error::corrupt(what(), "shorter than a pack header"));
    }
    let magic = backend.read_range(name, 0, PACK_MAGIC.len() as u64)?;
    let groups = magic == PACK_MAGIC;
    if !groups && magic != PACK_MAGIC_V1 {
        return Err(Error::corrupt(
            what(),
            "bad magic (not an opc-store pack, or a newer version)",
        ));
    }
    let len_bytes = backend.read_range(name, size - 4, 4)?;
    let tlen = u32::from_le_bytes(len_bytes[..].try_into().expect("4 bytes")) as u64;
    if tlen + 4 + PACK_MAGIC.len() as u64 > size {
        return Err(Error::corrupt(what(), "trailer length beyond the pack"));
    }
    let body_end = size - 4 - tlen;
    let sealed = backend.read_range(name, body_end, tlen)?;
    let (generation, plain) =
        sealer
            .open_which(TRAILER_AAD, &sealed)
            .ok_or_else(|| Error::Authentication {
                what: format!("trailer of pack {name}"),
            })?;
    let entries = decode_trailer_version(&plain, body_end, groups).map_err(|e| match e {
        Error::Corrupt { reason, .. } => Error::corrupt(format!("trailer of pack {name}"), reason),
        other => other,
    })?;
    Ok((generation, entries))
}
