//! PAX extended headers, read by length prefix.
//!
//! The `tar` crate splits PAX data on newlines, so a record whose value
//! holds a newline (binary xattr values, e.g. ACLs) is reported malformed
//! and the rest of the block is lost. [`PaxSpy`] watches the byte stream
//! the crate reads, keeps the data of the latest `x` header, and
//! [`records`] parses it as the standard says: `<len> <key>=<value>\n`,
//! where `<len>` covers the whole record.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

const BLOCK: usize = 512;

/// The raw data of the latest PAX `x` header seen in the stream.
pub type LastPax = Arc<Mutex<Option<Vec<u8>>>>;

/// One PAX record: key and value bytes.
pub type Record = (Vec<u8>, Vec<u8>);

/// Parses PAX records; errors on a record whose length does not fit.
pub fn records(mut data: &[u8]) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        // Trailing NUL padding ends the block.
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("a PAX record has no length")?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("a PAX record length is not a number")?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("a PAX record's length does not match its content".into());
        }
        let body = &data[sp + 1..len - 1];
        let eq = body
            .iter()
            .position(|&b| b == b'=')
            .ok_or("a PAX record has no `=`")?;
        out.push((body[..eq].to_vec(), body[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

enum State {
    Header,
    // GNU sparse extension blocks before the member's data.
    SparseExt {
        data: u64,
    },
    Data {
        left: u64,
        keep: Option<(Vec<u8>, usize)>,
    },
}

/// A reader that passes bytes through and remembers PAX header data.
pub struct PaxSpy<R> {
    inner: R,
    last: LastPax,
    state: State,
    block: Vec<u8>,
    // A PAX `size` record overrides the next header's size field.
    next_size: Option<u64>,
}

impl<R: Read> PaxSpy<R> {
    /// Wraps `inner`; PAX data lands in `last`.
    pub fn new(inner: R, last: LastPax) -> PaxSpy<R> {
        PaxSpy {
            inner,
            last,
            state: State::Header,
            block: Vec::with_capacity(BLOCK),
            next_size: None,
        }
    }

    fn feed(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            match &mut self.state {
                State::Data { left, keep } => {
                    let n = (*left).min(buf.len() as u64) as usize;
                    if let Some((v, want)) = keep {
                        let take = n.min(want.saturating_sub(v.len()));
                        v.extend_from_slice(&buf[..take]);
                    }
                    *left -= n as u64;
                    buf = &buf[n..];
                    if *left == 0 {
                        if let State::Data {
                            keep: Some((v, _)), ..
                        } = std::mem::replace(&mut self.state, State::Header)
                        {
                            self.next_size = records(&v).ok().and_then(|r| {
                                r.iter()
                                    .find(|(k, _)| k == b"size")
                                    .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
                            });
                            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
                        }
                    }
                }
                State::Header | State::SparseExt { .. } => {
                    let take = (BLOCK - self.block.len()).min(buf.len());
                    self.block.extend_from_slice(&buf[..take]);
                    buf = &buf[take..];
                    if self.block.len() == BLOCK {
                        let block = std::mem::take(&mut self.block);
                        self.block_done(&block);
                    }
                }
            }
        }
    }

    fn block_done(&mut self, b: &[u8]) {
        if let State::SparseExt { data } = self.state {
            // isextended is the byte after 21 sparse entries of 24 bytes.
            self.state = if b[504] == 1 {
                State::SparseExt { data }
            } else {
                Self::data(data, None)
            };
            return;
        }
        if b.iter().all(|&x| x == 0) {
            return; // end-of-archive blocks
        }
        let header = tar::Header::from_byte_slice(b);
        let mut size = header.entry_size().unwrap_or(0);
        let ty = b[156];
        if ty != b'x' && ty != b'g' && ty != b'L' && ty != b'K' {
            if let Some(s) = self.next_size.take() {
                size = s;
            }
        }
        self.state = match ty {
            b'x' => Self::data(size, Some((Vec::new(), size as usize))),
            b'S' if b[482] == 1 => State::SparseExt { data: size },
            // Links, folders and devices carry no data whatever the field says.
            b'1' | b'2' | b'3' | b'4' | b'5' | b'6' => Self::data(0, None),
            _ => Self::data(size, None),
        };
    }

    fn data(size: u64, keep: Option<(Vec<u8>, usize)>) -> State {
        let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        if padded == 0 {
            if let Some((v, _)) = keep {
                // An empty PAX block still belongs to the next member.
                return State::Data {
                    left: 0,
                    keep: Some((v, 0)),
                };
            }
            return State::Header;
        }
        State::Data { left: padded, keep }
    }
}

impl<R: Read> Read for PaxSpy<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_may_hold_newlines() {
        let data = b"22 SCHILY.xattr.a=x\ny\n13 mtime=1.5\n";
        let r = records(data).unwrap();
        assert_eq!(r[0], (b"SCHILY.xattr.a".to_vec(), b"x\ny".to_vec()));
        assert_eq!(r[1], (b"mtime".to_vec(), b"1.5".to_vec()));
        assert!(records(b"99 a=b\n").is_err());
        assert!(records(b"x a=b\n").is_err());
    }
}
