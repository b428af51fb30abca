//! zstd compression of blob payloads, stored raw when it does not shrink.

/// Compresses `data` at `level`; `None` when the result would not be smaller
/// (already-compressed data), in which case the blob is stored raw.
pub fn compress(data: &[u8], level: i32) -> Option<Vec<u8>> {
    if level == 0 || data.len() < 64 {
        return None;
    }
    // Encoding from memory into memory cannot fail for valid levels; treat a
    // failure as "does not shrink" rather than aborting the backup.
    let out = zstd::bulk::compress(data, level).ok()?;
    (out.len() < data.len()).then_some(out)
}

/// Decompresses a payload known to expand to exactly `raw_len` bytes.
pub fn decompress(data: &[u8], raw_len: usize) -> Option<Vec<u8>> {
    let out = zstd::bulk::decompress(data, raw_len).ok()?;
    (out.len() == raw_len).then_some(out)
}
