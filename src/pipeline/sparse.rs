//! Writing restored content so that sparse files stay sparse: 4 KiB blocks
//! of zeros are left as holes (the caller extends the file with `set_len`),
//! and pieces adjacent in the file go out in one vectored write.

use std::fs::File;

/// Writes `data` at `off`, leaving 4 KiB blocks of zeros as holes so
/// sparse files stay sparse (the file is extended by `set_len` at the end).
pub fn write_sparse(f: &File, data: &[u8], off: u64) -> std::io::Result<()> {
    write_sparse_parts(f, &[data], off)
}

/// [`write_sparse`] for `parts` that follow each other in the file: one
/// vectored write per stretch without holes, and no copy to join them.
pub fn write_sparse_parts(f: &File, parts: &[&[u8]], off: u64) -> std::io::Result<()> {
    const BLOCK: usize = 4096;
    // Stretches to write next (part, start, end), adjacent in the file.
    let mut pending: Vec<(usize, usize, usize)> = Vec::new();
    let mut pending_at = off;
    let mut at = off;
    let flush = |pending: &mut Vec<(usize, usize, usize)>, at: u64| {
        let bufs: Vec<&[u8]> = pending.iter().map(|&(p, s, e)| &parts[p][s..e]).collect();
        pending.clear();
        pwrite_all(f, &bufs, at)
    };
    for (p, part) in parts.iter().enumerate() {
        let mut start = 0;
        while start < part.len() {
            let end = (start + BLOCK).min(part.len());
            if part[start..end].iter().all(|&b| b == 0) {
                flush(&mut pending, pending_at)?;
            } else {
                if pending.is_empty() {
                    pending_at = at;
                }
                match pending.last_mut() {
                    Some(last) if last.0 == p && last.2 == start => last.2 = end,
                    _ => pending.push((p, start, end)),
                }
                if pending.len() == IOV_MAX {
                    flush(&mut pending, pending_at)?;
                    pending_at = at + (end - start) as u64;
                }
            }
            at += (end - start) as u64;
            start = end;
        }
    }
    flush(&mut pending, pending_at)
}

/// Buffers one `pwritev` takes (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Writes all of `bufs` at `off`: one call unless the kernel writes less.
fn pwrite_all(f: &File, bufs: &[&[u8]], mut off: u64) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> =
        bufs.iter().map(|b| std::io::IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match nix::sys::uio::pwritev(f, rest, off as i64) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                off += n as u64;
                std::io::IoSlice::advance_slices(&mut rest, n);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn written(parts: &[&[u8]], off: u64) -> (Vec<u8>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = File::create(&path).unwrap();
        write_sparse_parts(&f, parts, off).unwrap();
        let total = off + parts.iter().map(|p| p.len() as u64).sum::<u64>();
        f.set_len(total).unwrap();
        let blocks = std::fs::metadata(&path).unwrap().blocks();
        (std::fs::read(&path).unwrap(), blocks)
    }

    #[test]
    fn parts_land_at_their_offsets_with_zero_blocks_as_holes() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8 + 1).collect();
        let zeros = vec![0u8; 64 << 10];
        let parts: Vec<&[u8]> = vec![&data[..3000], &zeros, &data[3000..], &zeros[..100], b"x"];
        let (got, blocks) = written(&parts, 8192);
        let mut want = vec![0u8; 8192];
        for p in &parts {
            want.extend_from_slice(p);
        }
        assert!(got == want, "content differs");
        // 64 KiB of zeros and the first 8 KiB were not written (512-byte
        // units; a filesystem without holes would report them all).
        let full = (want.len() as u64).div_ceil(512);
        assert!(blocks < full - 100, "{blocks} of {full} blocks allocated");
    }

    #[test]
    fn more_pieces_than_one_call_takes_are_all_written() {
        let pieces: Vec<Vec<u8>> = (0..3 * IOV_MAX + 7)
            .map(|i| vec![(i % 200) as u8 + 1; 1 + i % 13])
            .collect();
        let parts: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
        let (got, _) = written(&parts, 3);
        assert_eq!(&got[..3], &[0, 0, 0]);
        assert!(got[3..] == parts.concat()[..], "content differs");
    }
}
