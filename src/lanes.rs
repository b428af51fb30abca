//! Byte lanes: data made of 4-byte values (float32 vectors, integer lists)
//! compresses better with the bytes of each position mod 4 taken apart,
//! so that zstd sees the sign-and-exponent bytes of floats side by side
//! instead of between random mantissa bytes. Format: `docs/FORMAT.md` §5.1.
//!
//! Measured on the reference data set at zstd level 1-2: HNSW segments
//! (vectors and link lists) 0.90 -> 0.82 of their size, time-series database block
//! indexes 0.63 -> 0.30; SQLite pages, text and compressed data get worse
//! (0.51 -> 0.60 for a vector database's pages), so lanes are chosen by
//! a sample, never always.

/// Pieces a sample reads, spread evenly over the data.
const SAMPLE_PIECES: usize = 16;
/// Bytes of one sample piece.
const SAMPLE_PIECE: usize = 4096;
/// Smallest sample that decides anything: below it the entropy estimates
/// of the lanes (a quarter of the bytes each) are too biased.
const MIN_SAMPLE: usize = 4096;
/// Lanes are used when, in the sample, the bytes of each lane have on
/// average this many bits less order-0 entropy than all the bytes
/// together. On the reference data the two kinds sit far apart: vectors,
/// links and postings 0.4-1.0 bits, text, pages and compressed data
/// 0.00-0.05 bits.
const LANE_GAIN_BITS: f64 = 0.25;

/// Byte counts of the four lanes of a sample.
pub struct LaneSample {
    counts: [[u32; 256]; 4],
    bytes: usize,
}

impl LaneSample {
    fn new() -> LaneSample {
        LaneSample {
            counts: [[0; 256]; 4],
            bytes: 0,
        }
    }

    /// Counts `bytes`, the first of which is at `offset` in the data.
    /// Whole words at a time once at lane 0: the lane of each byte is then
    /// fixed, where computing it per byte ran at half the speed (1.4
    /// against 2.5 GB/s); every small file is sampled whole, so this loop
    /// was 9% of a first backup's CPU time on ten thousands of them.
    fn add(&mut self, bytes: &[u8], offset: usize) {
        let lead = ((4 - (offset & 3)) & 3).min(bytes.len());
        let (head, rest) = bytes.split_at(lead);
        for (i, &b) in head.iter().enumerate() {
            self.counts[(offset + i) & 3][b as usize] += 1;
        }
        let words = rest.chunks_exact(4);
        for (lane, &b) in words.remainder().iter().enumerate() {
            self.counts[lane][b as usize] += 1;
        }
        let [c0, c1, c2, c3] = &mut self.counts;
        for w in words {
            c0[w[0] as usize] += 1;
            c1[w[1] as usize] += 1;
            c2[w[2] as usize] += 1;
            c3[w[3] as usize] += 1;
        }
        self.bytes += bytes.len();
    }

    /// Whether the lanes taken apart promise a smaller output.
    pub fn helps(&self) -> bool {
        if self.bytes < MIN_SAMPLE {
            return false;
        }
        let mut all = [0u32; 256];
        for lane in &self.counts {
            for (a, c) in all.iter_mut().zip(lane) {
                *a += c;
            }
        }
        let lanes: f64 = self.counts.iter().map(entropy).sum::<f64>() / 4.0;
        entropy(&all) - lanes > LANE_GAIN_BITS
    }
}

/// Order-0 entropy in bits per byte, with the Miller-Madow correction:
/// a plain estimate from few bytes is biased low, and more so for a lane
/// than for the whole sample. Computed as `log2 n - sum(c log2 c) / n`,
/// with `c log2 c` from a table for the counts a sample mostly has: one
/// `log2` per used byte value in five histograms per small file was 3% of a
/// first backup's CPU time.
fn entropy(counts: &[u32; 256]) -> f64 {
    let n: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if n == 0 {
        return 0.0;
    }
    let table = c_log2_c_table();
    let mut used = 0u32;
    let mut sum = 0.0;
    for &c in counts.iter().filter(|&&c| c > 0) {
        used += 1;
        sum += table
            .get(c as usize)
            .copied()
            .unwrap_or_else(|| c_log2_c(c));
    }
    let n = n as f64;
    n.log2() - sum / n + f64::from(used - 1) / (2.0 * n * std::f64::consts::LN_2)
}

/// Counts below this take `c log2 c` from the table (32 KiB).
const TABLE_COUNTS: usize = 4096;

fn c_log2_c(c: u32) -> f64 {
    let c = f64::from(c);
    c * c.log2()
}

fn c_log2_c_table() -> &'static [f64] {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| (0..TABLE_COUNTS as u32).map(c_log2_c).collect())
}

/// Samples the consecutive `parts` (one stream cut into chunks, or a single
/// buffer): [`SAMPLE_PIECES`] pieces at evenly spaced offsets of the whole,
/// each lane counted by its offset in the whole. Reads at most 64 KiB.
pub fn sample(parts: &[&[u8]]) -> LaneSample {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut s = LaneSample::new();
    let step = (total / SAMPLE_PIECES).max(SAMPLE_PIECE);
    let mut next = 0;
    let mut start = 0;
    for part in parts {
        let end = start + part.len();
        while next < end {
            let from = next - start;
            let piece = &part[from..part.len().min(from + SAMPLE_PIECE)];
            s.add(piece, next);
            next += step;
        }
        start = end;
    }
    s
}

/// `data` with its lanes taken apart: every byte at a position 0 mod 4,
/// then 1, 2 and 3 mod 4, then the last `len % 4` bytes as they are.
pub fn split(data: &[u8]) -> Vec<u8> {
    let q = data.len() / 4;
    let mut out = crate::util::large_buffer(data.len());
    out.resize(data.len(), 0);
    let (l0, rest) = out.split_at_mut(q);
    let (l1, rest) = rest.split_at_mut(q);
    let (l2, rest) = rest.split_at_mut(q);
    let (l3, tail) = rest.split_at_mut(q);
    let words = data.chunks_exact(4);
    tail.copy_from_slice(words.remainder());
    for ((((w, a), b), c), d) in words.zip(l0).zip(l1).zip(l2).zip(l3) {
        *a = w[0];
        *b = w[1];
        *c = w[2];
        *d = w[3];
    }
    out
}

/// The inverse of [`split`].
pub fn join(lanes: &[u8]) -> Vec<u8> {
    let q = lanes.len() / 4;
    let mut out = crate::util::large_buffer(lanes.len());
    out.resize(lanes.len(), 0);
    let (l0, rest) = lanes.split_at(q);
    let (l1, rest) = rest.split_at(q);
    let (l2, rest) = rest.split_at(q);
    let (l3, tail) = rest.split_at(q);
    // Each word built as one u32: the compiler vectorises the shifts and
    // ors (8 GiB/s here); a byte-array copy per word it did not (3.5).
    let mut words = out.chunks_exact_mut(4);
    for ((((w, &a), &b), &c), &d) in (&mut words).zip(l0).zip(l1).zip(l2).zip(l3) {
        let v = u32::from(a) | u32::from(b) << 8 | u32::from(c) << 16 | u32::from(d) << 24;
        w.copy_from_slice(&v.to_le_bytes());
    }
    words.into_remainder().copy_from_slice(tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed | 1;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// float32 values around +-1, as embedding vectors are.
    fn floats(n: usize) -> Vec<u8> {
        let mut r = xorshift(7);
        (0..n)
            .flat_map(|_| {
                let v = (r() % 2_000_000) as f32 / 1_000_000.0 - 1.0;
                v.to_le_bytes()
            })
            .collect()
    }

    proptest! {
        #[test]
        fn split_then_join_gives_the_input(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let s = split(&data);
            prop_assert_eq!(s.len(), data.len());
            prop_assert_eq!(join(&s), data);
        }
    }

    proptest! {
        #[test]
        fn counts_each_byte_in_the_lane_of_its_offset(
            data in proptest::collection::vec(any::<u8>(), 0..64),
            offset in 0usize..16,
        ) {
            let mut s = LaneSample::new();
            s.add(&data, offset);
            let mut want = [[0u32; 256]; 4];
            for (i, &b) in data.iter().enumerate() {
                want[(offset + i) % 4][b as usize] += 1;
            }
            prop_assert_eq!(s.counts, want);
            prop_assert_eq!(s.bytes, data.len());
        }
    }

    #[test]
    fn entropy_matches_its_definition() {
        let mut r = xorshift(11);
        for spread in [1u64, 2, 16, 256] {
            let mut counts = [0u32; 256];
            for _ in 0..20_000 {
                // Some counts above the table, most below.
                counts[(r() % spread) as usize] += 1;
            }
            let n: f64 = counts.iter().map(|&c| f64::from(c)).sum();
            let used = counts.iter().filter(|&&c| c > 0).count() as f64;
            let plain: f64 = counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| -(f64::from(c) / n) * (f64::from(c) / n).log2())
                .sum();
            let want = plain + (used - 1.0) / (2.0 * n * std::f64::consts::LN_2);
            let got = entropy(&counts);
            assert!((got - want).abs() < 1e-9, "{spread}: {got} against {want}");
        }
        assert_eq!(entropy(&[0; 256]), 0.0);
    }

    #[test]
    fn split_puts_each_position_in_its_lane() {
        assert_eq!(
            split(&[1, 2, 3, 4, 11, 12, 13, 14, 99]),
            vec![1, 11, 2, 12, 3, 13, 4, 14, 99]
        );
    }

    #[test]
    fn vectors_take_lanes_text_noise_and_small_samples_do_not() {
        let v = floats(300_000);
        assert!(sample(&[&v]).helps(), "floats");
        // Cut at odd offsets, the lanes still count by position in the whole.
        let parts: Vec<&[u8]> = v.chunks(16_381).collect();
        assert!(sample(&parts).helps(), "floats in chunks");
        // Chat-like JSON: words of every length, so no period of 4 bytes.
        let words = [
            "the", "vector", "store", "is", "backed", "up", "nightly", "a", "query",
        ];
        let mut r = xorshift(5);
        let text: Vec<u8> = (0..40_000)
            .flat_map(|i| {
                let w = words[(r() % words.len() as u64) as usize];
                let s = if i % 12 == 0 {
                    format!("\"}},\n{{\"role\":\"user\",\"content\":\"{w}")
                } else {
                    format!(" {w}")
                };
                s.into_bytes()
            })
            .collect();
        assert!(!sample(&[&text]).helps(), "text");
        let mut r = xorshift(3);
        let noise: Vec<u8> = (0..1_000_000).map(|_| r() as u8).collect();
        assert!(!sample(&[&noise]).helps(), "noise");
        assert!(!sample(&[&v[..4000]]).helps(), "too small to tell");
        assert!(!sample(&[]).helps());
    }

    #[test]
    fn a_sample_reads_at_most_sixty_four_kib() {
        let v = floats(1_000_000);
        let s = sample(&[&v[..1_000_001], &v[1_000_001..]]);
        assert!(s.bytes <= SAMPLE_PIECES * SAMPLE_PIECE, "{}", s.bytes);
        assert!(s.bytes >= SAMPLE_PIECES * SAMPLE_PIECE / 2);
    }
}
