//! Writes tar members the way GNU tar reads them back exactly: GNU headers,
//! `././@LongLink` records for names and link targets over 100 bytes (raw
//! bytes, so names need not be UTF-8), PAX records for nanosecond mtimes
//! and `SCHILY.xattr.*`, base-256 numbers for sizes over 8 GiB and old GNU
//! sparse members (type `S`) for files with holes.

use std::io::{self, Write};

use tar::{EntryType, GnuExtSparseHeader, Header};

use crate::snapshot::{Node, NodeKind};

const BLOCK: usize = 512;

/// Data regions of a sparse file: `(offset, length)`, sorted, disjoint.
/// A file that ends in a hole ends with `(size, 0)`.
pub type Regions = Vec<(u64, u64)>;

/// Streams tar members into `out`.
pub struct TarWriter<W: Write> {
    out: W,
    // The file member being written: its data regions (None: dense), the
    // next expected content offset, bytes still owed to the archive.
    current: Option<Current>,
}

struct Current {
    regions: Option<Regions>,
    region: usize,
    offset: u64,
    size: u64,
    stored: u64,
}

impl<W: Write> TarWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W) -> TarWriter<W> {
        TarWriter { out, current: None }
    }

    /// Writes a member whose whole content is `data` (e.g. the manifest).
    pub fn bytes_member(
        &mut self,
        path: &[u8],
        mode: u32,
        mtime_s: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(mode);
        h.set_uid(nix::unistd::getuid().as_raw().into());
        h.set_gid(nix::unistd::getgid().as_raw().into());
        h.set_mtime(mtime_s);
        h.set_size(data.len() as u64);
        self.header(&mut h, path, None)?;
        self.out.write_all(data)?;
        self.pad(data.len() as u64)
    }

    /// Writes a folder, symlink, FIFO or device member (no content).
    pub fn special(&mut self, path: &[u8], node: &Node) -> io::Result<()> {
        let mut h = base_header(node)?;
        let (ty, link) = match node.kind {
            NodeKind::Dir => (EntryType::Directory, None),
            NodeKind::Symlink => (EntryType::Symlink, node.target.as_deref()),
            NodeKind::Fifo => (EntryType::Fifo, None),
            NodeKind::Chardev => (EntryType::Char, None),
            NodeKind::Blockdev => (EntryType::Block, None),
            NodeKind::File | NodeKind::Socket => {
                return Err(io::Error::other("not a special member"));
            }
        };
        h.set_entry_type(ty);
        if matches!(node.kind, NodeKind::Chardev | NodeKind::Blockdev) {
            h.set_device_major(nix::sys::stat::major(node.rdev) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(node.rdev) as u32)?;
        }
        let mut name = path.to_vec();
        if node.kind == NodeKind::Dir {
            name.push(b'/');
        }
        self.pax(node)?;
        self.header(&mut h, &name, link)
    }

    /// Writes a hardlink member pointing at the earlier member `target`.
    pub fn hardlink(&mut self, path: &[u8], target: &[u8], node: &Node) -> io::Result<()> {
        let mut h = base_header(node)?;
        h.set_entry_type(EntryType::Link);
        self.pax(node)?;
        self.header(&mut h, path, Some(target))
    }

    /// Starts a regular file member of `node.size` bytes; its content must
    /// follow through [`TarWriter::content`], then [`TarWriter::end_file`].
    pub fn begin_file(
        &mut self,
        path: &[u8],
        node: &Node,
        regions: Option<Regions>,
    ) -> io::Result<()> {
        let mut h = base_header(node)?;
        self.pax(node)?;
        let stored = match &regions {
            None => {
                h.set_entry_type(EntryType::Regular);
                h.set_size(node.size);
                self.header(&mut h, path, None)?;
                node.size
            }
            Some(r) => {
                let stored: u64 = r.iter().map(|x| x.1).sum();
                h.set_entry_type(EntryType::GNUSparse);
                h.set_size(stored);
                self.sparse_header(&mut h, path, r, node.size)?;
                stored
            }
        };
        self.current = Some(Current {
            regions,
            region: 0,
            offset: 0,
            size: node.size,
            stored,
        });
        Ok(())
    }

    /// The next `data` bytes of the current file's content.
    pub fn content(&mut self, data: &[u8]) -> io::Result<()> {
        let cur = self
            .current
            .as_mut()
            .ok_or_else(|| io::Error::other("content outside a file member"))?;
        let start = cur.offset;
        let end = start + data.len() as u64;
        if end > cur.size {
            return Err(io::Error::other("file content longer than recorded"));
        }
        cur.offset = end;
        let Some(regions) = &cur.regions else {
            return self.out.write_all(data);
        };
        // Emit the parts of [start, end) that lie in data regions.
        while cur.region < regions.len() {
            let (off, len) = regions[cur.region];
            let (a, b) = (off.max(start), (off + len).min(end));
            if a < b {
                self.out
                    .write_all(&data[(a - start) as usize..(b - start) as usize])?;
            }
            if off + len <= end {
                cur.region += 1;
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Ends the current file member.
    pub fn end_file(&mut self) -> io::Result<()> {
        let cur = self
            .current
            .take()
            .ok_or_else(|| io::Error::other("no file member open"))?;
        if cur.offset != cur.size {
            return Err(io::Error::other(format!(
                "file content is {} bytes, {} were recorded",
                cur.offset, cur.size
            )));
        }
        self.pad(cur.stored)
    }

    /// Writes the end-of-archive marker and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        Ok(self.out)
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    // PAX records: nanosecond mtime and user xattrs.
    fn pax(&mut self, node: &Node) -> io::Result<()> {
        let mut data = Vec::new();
        let ns = node.mtime_ns.rem_euclid(1_000_000_000);
        if ns != 0 || node.mtime_ns < 0 {
            let s = node.mtime_ns.div_euclid(1_000_000_000);
            let v = if ns == 0 {
                s.to_string()
            } else if s >= 0 {
                format!("{s}.{ns:09}")
            } else {
                // PAX times are decimal: -1.25 is 1.25 s before the epoch.
                let total = -(node.mtime_ns as i128);
                format!("-{}.{:09}", total / 1_000_000_000, total % 1_000_000_000)
            };
            pax_record(&mut data, b"mtime", v.as_bytes());
        }
        for x in &node.xattrs {
            let key = [b"SCHILY.xattr.".as_slice(), &x.name].concat();
            pax_record(&mut data, &key, &x.value);
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        zero_owner_and_time(&mut h);
        h.set_size(data.len() as u64);
        h.as_old_mut().name[..14].copy_from_slice(b"././@PaxHeader");
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        self.out.write_all(&data)?;
        self.pad(data.len() as u64)
    }

    // Name (and link target) in the header, or in GNU long-name records
    // before it when they do not fit.
    fn header(&mut self, h: &mut Header, path: &[u8], link: Option<&[u8]>) -> io::Result<()> {
        self.names(h, path, link)?;
        h.set_cksum();
        self.out.write_all(h.as_bytes())
    }

    fn names(&mut self, h: &mut Header, path: &[u8], link: Option<&[u8]>) -> io::Result<()> {
        if let Some(l) = link {
            let field = &mut h.as_old_mut().linkname;
            if l.len() <= field.len() {
                field[..l.len()].copy_from_slice(l);
            } else {
                self.long_name(b'K', l)?;
                let n = field.len();
                h.as_old_mut().linkname.copy_from_slice(&l[..n]);
            }
        }
        let field = &mut h.as_old_mut().name;
        if path.len() <= field.len() {
            field[..path.len()].copy_from_slice(path);
        } else {
            self.long_name(b'L', path)?;
            let n = field.len();
            h.as_old_mut().name.copy_from_slice(&path[..n]);
        }
        Ok(())
    }

    fn long_name(&mut self, ty: u8, value: &[u8]) -> io::Result<()> {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_mode(0o644);
        zero_owner_and_time(&mut h);
        h.set_entry_type(EntryType::new(ty));
        h.set_size(value.len() as u64 + 1);
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        self.out.write_all(value)?;
        self.out.write_all(&[0])?;
        self.pad(value.len() as u64 + 1)
    }

    fn sparse_header(
        &mut self,
        h: &mut Header,
        path: &[u8],
        regions: &[(u64, u64)],
        real: u64,
    ) -> io::Result<()> {
        self.names(h, path, None)?;
        let gnu = h.as_gnu_mut().expect("GNU header");
        gnu.set_real_size(real);
        let (first, rest) = regions.split_at(regions.len().min(4));
        for (slot, (off, len)) in gnu.sparse.iter_mut().zip(first) {
            slot.set_offset(*off);
            slot.set_length(*len);
        }
        gnu.set_is_extended(!rest.is_empty());
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        let chunks: Vec<&[(u64, u64)]> = rest.chunks(21).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut ext = GnuExtSparseHeader::new();
            for (slot, (off, len)) in ext.sparse.iter_mut().zip(chunk.iter()) {
                slot.set_offset(*off);
                slot.set_length(*len);
            }
            ext.set_is_extended(i + 1 < chunks.len());
            self.out.write_all(ext.as_bytes())?;
        }
        Ok(())
    }
}

/// A GNU header with the node's mode, owner and whole-second mtime.
fn base_header(node: &Node) -> io::Result<Header> {
    let mut h = Header::new_gnu();
    h.set_mode(node.mode & 0o7777);
    h.set_uid(node.uid.into());
    h.set_gid(node.gid.into());
    h.set_mtime(node.mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
    h.set_size(0);
    Ok(h)
}

// Numeric fields left as NULs are not numbers to strict readers.
fn zero_owner_and_time(h: &mut Header) {
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
}

fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // "<len> <key>=<value>\n", where <len> counts its own digits.
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} ").as_bytes());
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Data regions of content made of `blocks`, treating runs of zero 4 KiB
/// blocks of at least `min_hole` bytes as holes; `None` when there is no
/// such hole. `feed` is called with each piece of content in order.
pub struct HoleFinder {
    min_hole: u64,
    offset: u64,
    zero_run_start: Option<u64>,
    regions: Regions,
    data_start: Option<u64>,
    partial: Vec<u8>,
}

impl HoleFinder {
    /// A finder for holes of at least `min_hole` bytes (a multiple of 4096).
    pub fn new(min_hole: u64) -> HoleFinder {
        HoleFinder {
            min_hole,
            offset: 0,
            zero_run_start: None,
            regions: Vec::new(),
            data_start: None,
            partial: Vec::new(),
        }
    }

    /// Feeds the next content bytes.
    pub fn feed(&mut self, mut data: &[u8]) {
        const B: usize = 4096;
        if !self.partial.is_empty() {
            let take = (B - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() == B {
                let block = std::mem::take(&mut self.partial);
                self.block(&block);
            }
        }
        let mut chunks = data.chunks_exact(B);
        for block in &mut chunks {
            self.block(block);
        }
        self.partial.extend_from_slice(chunks.remainder());
    }

    fn block(&mut self, block: &[u8]) {
        let zero = block.iter().all(|&b| b == 0);
        let at = self.offset;
        self.offset += block.len() as u64;
        if zero {
            self.zero_run_start.get_or_insert(at);
            return;
        }
        self.close_zero_run(at);
        self.data_start.get_or_insert(at);
    }

    // A zero run ending at `end`: a hole if long enough, else data.
    fn close_zero_run(&mut self, end: u64) {
        if let Some(z) = self.zero_run_start.take() {
            if end - z >= self.min_hole {
                if let Some(d) = self.data_start.take() {
                    self.regions.push((d, z - d));
                }
            } else {
                self.data_start.get_or_insert(z);
            }
        }
    }

    /// The data regions, or `None` when the content has no hole.
    pub fn finish(mut self) -> Option<Regions> {
        let tail = std::mem::take(&mut self.partial);
        if !tail.is_empty() {
            // A short last block is data unless all zero; either way it
            // ends the file, so treat it like a full block.
            self.block(&tail);
        }
        let end = self.offset;
        let had_hole_at_end = self
            .zero_run_start
            .is_some_and(|z| end - z >= self.min_hole);
        self.close_zero_run(end);
        if let Some(d) = self.data_start.take() {
            self.regions.push((d, end - d));
        }
        let covered: u64 = self.regions.iter().map(|r| r.1).sum();
        if covered == end {
            return None;
        }
        if had_hole_at_end {
            self.regions.push((end, 0));
        }
        Some(self.regions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(parts: &[(usize, bool)]) -> Option<Regions> {
        let mut f = HoleFinder::new(8192);
        for &(len, zero) in parts {
            let v = vec![if zero { 0u8 } else { 7u8 }; len];
            // Feed in odd pieces to cross block boundaries.
            for c in v.chunks(1000) {
                f.feed(c);
            }
        }
        f.finish()
    }

    #[test]
    fn holes_are_found() {
        assert_eq!(regions(&[(10_000, false)]), None);
        assert_eq!(regions(&[(4096, true), (4096, false)]), None);
        assert_eq!(
            regions(&[(4096, false), (16384, true), (100, false)]),
            Some(vec![(0, 4096), (20480, 100)])
        );
        assert_eq!(
            regions(&[(4096, false), (16384, true)]),
            Some(vec![(0, 4096), (20480, 0)])
        );
        assert_eq!(regions(&[(16384, true)]), Some(vec![(16384, 0)]));
        assert_eq!(regions(&[]), None);
    }

    #[test]
    fn pax_lengths_count_themselves() {
        for n in [0, 1, 80, 88, 89, 90, 995, 996, 997, 5000] {
            let mut out = Vec::new();
            pax_record(&mut out, b"k", &vec![b'v'; n]);
            let sp = out.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&out[..sp]).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "{n}");
        }
    }
}
