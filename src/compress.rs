//! zstd compression of blob payloads, stored raw when it does not shrink,
//! optionally over the payload's byte lanes (see `lanes`).
//!
//! Each thread keeps one compression and one decompression context: making
//! a context per blob (what `zstd::bulk::compress` does) was 7% of a first
//! backup, whose SQLite pages are tens of thousands of 4 KiB blobs.

use std::cell::RefCell;

/// Blobs up to this size are compressed at level 1 at most: on 4-64 KiB
/// inputs (SQLite pages, HNSW chunks) higher levels gained 0.1-0.3% of size
/// on the reference data set for a third more time.
const SMALL_BLOB: usize = 64 * 1024;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
    /// Where lanes are decompressed before they are joined: the same
    /// buffer for every group, not a fresh megabyte faulted in each time.
    static LANES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Largest lanes buffer a thread keeps between blobs.
const LANES_KEPT: usize = 4 << 20;

/// How a payload is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec {
    /// zstd level; 0 stores payloads as they are.
    pub level: i32,
    /// Whether zstd is given the payload's lanes taken apart
    /// ([`crate::lanes::split`]) rather than the payload itself.
    pub lanes: bool,
}

impl Codec {
    /// zstd at `level` over the payload as it is.
    pub fn plain(level: i32) -> Codec {
        Codec {
            level,
            lanes: false,
        }
    }
}

/// Compresses `data` as `codec` says; `None` when the result would not be
/// smaller (already-compressed data), in which case the blob is stored raw.
pub fn compress(data: &[u8], codec: Codec) -> Option<Vec<u8>> {
    // Room for about the input's size: output that does not fit is output
    // that does not shrink, and zstd stops early with an error.
    let mut out = crate::util::large_buffer(data.len().saturating_sub(1));
    compress_into(data, codec, &mut out).then_some(out)
}

/// [`compress`] into `out`, replacing what it held and using no more than
/// its capacity; returns whether `out` now holds a payload smaller than
/// `data`. A caller that frames the payload gives its frame buffer, so a
/// large chunk is not compressed into a buffer of its own size only to be
/// copied into another (two such buffers per 8 MiB chunk in flight on
/// each thread).
pub fn compress_into(data: &[u8], codec: Codec, out: &mut Vec<u8>) -> bool {
    out.clear();
    let level = codec.level;
    if level == 0 || data.len() < 64 {
        return false;
    }
    let split;
    let data = if codec.lanes {
        split = crate::lanes::split(data);
        &split[..]
    } else {
        data
    };
    let level = if data.len() <= SMALL_BLOB {
        level.min(1)
    } else {
        level
    };
    COMPRESSOR
        .with(|c| {
            let mut c = c.borrow_mut();
            match c.as_mut() {
                Some((l, z)) if *l != level => {
                    z.set_compression_level(level).ok()?;
                    *l = level;
                }
                Some(_) => {}
                None => *c = Some((level, zstd::bulk::Compressor::new(level).ok()?)),
            }
            let (_, z) = c.as_mut()?;
            z.compress_to_buffer(data, out).ok()
        })
        .is_some_and(|_| out.len() < data.len())
}

/// Decompresses a payload known to expand to exactly `raw_len` bytes;
/// `lanes`: it was compressed with [`Codec::lanes`].
pub fn decompress(data: &[u8], raw_len: usize, lanes: bool) -> Option<Vec<u8>> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().ok()?);
        }
        let d = d.as_mut()?;
        if !lanes {
            let mut out = crate::util::large_buffer(raw_len);
            d.decompress_to_buffer(data, &mut out).ok()?;
            return (out.len() == raw_len).then_some(out);
        }
        LANES.with(|split| {
            let mut split = split.borrow_mut();
            split.clear();
            split.reserve(raw_len);
            let out = d
                .decompress_to_buffer(data, &mut *split)
                .ok()
                .filter(|_| split.len() == raw_len)
                .map(|_| crate::lanes::join(&split));
            if split.capacity() > LANES_KEPT {
                *split = Vec::new();
            }
            out
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_size_and_level_and_skips_what_does_not_shrink() {
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("line {} of a chat log\n", i % 977).into_bytes())
            .take(300_000)
            .collect();
        for level in [1, 3, 19] {
            for len in [64, 4096, SMALL_BLOB, SMALL_BLOB + 1, 300_000] {
                let d = &text[..len];
                for lanes in [false, true] {
                    let codec = Codec { level, lanes };
                    let c = compress(d, codec).expect("text shrinks");
                    assert!(c.len() < d.len());
                    assert_eq!(decompress(&c, len, lanes).unwrap(), d);
                    assert_ne!(decompress(&c, len, !lanes).unwrap(), d, "lanes matter");
                    assert!(
                        decompress(&c, len + 1, lanes).is_none(),
                        "wrong length is refused"
                    );
                }
            }
        }
        let noise = crate::util::noise(0x9e37_79b9_7f4a_7c15, 100_000);
        assert!(
            compress(&noise, Codec::plain(3)).is_none(),
            "random data is stored raw"
        );
        assert!(compress(&text[..63], Codec::plain(3)).is_none());
        assert!(
            compress(&text, Codec::plain(0)).is_none(),
            "level 0 disables compression"
        );
    }
}
