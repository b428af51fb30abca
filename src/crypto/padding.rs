//! Padmé length padding (Nikitin et al., "Reducing Metadata Leakage from
//! Encrypted Files and Communication with PURBs", PETS 2019).
//!
//! Rounds a length up so that only O(log log L) bits of it remain visible,
//! with at most ~12% overhead (less for larger lengths). This hides exact
//! chunk sizes from the storage host, which the 2025 keyed-CDC attacks need.

/// The padded length for a plaintext of `len` bytes (`len` itself for 0 and 1).
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - len.leading_zeros() as u64; // floor(log2 len)
    let s = 64 - e.leading_zeros() as u64; // floor(log2 e) + 1
    let last_bits = e - s;
    let mask = (1u64 << last_bits) - 1;
    (len + mask) & !mask
}

#[cfg(test)]
mod tests {
    use super::padme;

    #[test]
    fn padme_never_shrinks_and_bounds_overhead() {
        for len in (0..100_000u64).chain([1 << 20, (1 << 20) + 1, 8 << 20, 123_456_789]) {
            let p = padme(len);
            assert!(p >= len);
            if len > 256 {
                assert!((p - len) as f64 / len as f64 <= 0.12, "{len} -> {p}");
            }
        }
    }

    #[test]
    fn padme_known_values() {
        // From the paper's definition: L=9 -> E=3, S=2, last bits 1 -> 10.
        assert_eq!(padme(9), 10);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(4096), 4096);
        assert_eq!(padme(4097), 4352);
    }
}
