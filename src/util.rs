//! Small helpers shared by several layers.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Sets a path's permission bits.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("setting permissions of", path, e))
}

/// Formats a byte count for people: `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Crash-test hook: when the environment variable `OPC_FAULT` equals
/// `point`, the process kills itself with SIGKILL right here, exactly as a
/// `kill -9` or power cut would stop it. Tests use it to prove that every
/// step of prune is crash-safe; it costs one environment lookup.
pub fn fault_point(point: &str) {
    if std::env::var_os("OPC_FAULT").is_some_and(|v| v == point) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

/// Whether no process with id `pid` runs on this host (signal 0 answers
/// ESRCH). A process of another user still counts as running.
pub fn process_gone(pid: i32) -> bool {
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// Reads until `buf` is full or the reader is done; returns the bytes read
/// (fewer than `buf.len()` only at the end).
pub fn read_full(r: &mut (impl std::io::Read + ?Sized), buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `n` bytes of xorshift noise from `seed`: incompressible test data.
#[cfg(test)]
pub(crate) fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Size classes of large buffers: 256 KiB steps.
const BUFFER_STEP: usize = 256 << 10;

/// An empty buffer with room for `len` bytes; above 256 KiB, the room is
/// rounded up to a multiple of 256 KiB. A restore frees and allocates
/// thousands of blob-sized buffers, each of a slightly different size;
/// rounded to a few classes, a freed one fits the next request exactly
/// instead of leaving the allocator a gap it keeps resident.
pub fn large_buffer(len: usize) -> Vec<u8> {
    let cap = if len > BUFFER_STEP {
        len.div_ceil(BUFFER_STEP) * BUFFER_STEP
    } else {
        len
    };
    Vec::with_capacity(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_come_in_256_kib_classes_and_small_ones_as_asked() {
        assert_eq!(large_buffer(4096).capacity(), 4096);
        assert_eq!(large_buffer(BUFFER_STEP).capacity(), BUFFER_STEP);
        // Sizes of nearby blobs share a class, so one's freed buffer fits the next.
        for len in [BUFFER_STEP + 1, 400_000, 2 * BUFFER_STEP] {
            assert_eq!(large_buffer(len).capacity(), 2 * BUFFER_STEP, "{len}");
        }
        assert_eq!(large_buffer(1_000_001).capacity(), 4 * BUFFER_STEP);
        assert!(large_buffer(1_000_001).is_empty());
    }
}
