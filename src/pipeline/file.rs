//! Reading one file's content into blobs.

use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::chunker::{ChunkMethod, Chunker};
use crate::error::Error;
use crate::id::BlobKind;
use crate::repo::Packer;
use crate::snapshot::{Content, ContentBuilder};
use crate::util::read_full;

/// What reading a file produced.
pub(crate) struct FileContent {
    pub content: Content,
    pub bytes: u64,
    /// Set when size or mtime moved while the file was read.
    pub changed: bool,
}

/// Why a file could not be stored: its source (skip it, warn) or the
/// repository (stop the snapshot: nothing after it could be trusted).
pub(crate) enum FileError {
    /// Reading the source failed.
    Source(Error),
    /// Writing to the repository failed.
    Repo(Error),
}

impl From<Error> for FileError {
    fn from(e: Error) -> Self {
        FileError::Source(e)
    }
}

/// Stores the content of the file at `path` and returns its blob ids.
pub(crate) fn store_file(
    path: &Path,
    rel: &[u8],
    chunker: &Chunker,
    packer: &Packer<'_>,
    progress: &dyn Fn(u64),
) -> std::result::Result<FileContent, FileError> {
    let io = |e| Error::io("reading", path, e);
    // O_NOFOLLOW: the entry was a regular file when listed; if it was
    // swapped for a symlink since, refuse rather than back up its target.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .map_err(io)?;
    let before = f.metadata().map_err(io)?;
    let (content, total) = store_stream(&mut f, before.len(), rel, chunker, packer, progress)
        .map_err(|e| match e {
            StreamError::Read(e) => FileError::Source(io(e)),
            StreamError::Store(e) => FileError::Repo(e),
        })?;
    let after = f.metadata().map_err(io)?;
    let changed = after.len() != before.len()
        || after.mtime() != before.mtime()
        || after.mtime_nsec() != before.mtime_nsec()
        || total != before.len();
    Ok(FileContent {
        content,
        bytes: total,
        changed,
    })
}

/// Where storing a stream failed: reading it, or storing what was read.
pub enum StreamError {
    /// The source could not be read.
    Read(std::io::Error),
    /// The repository refused a blob.
    Store(Error),
}

impl StreamError {
    /// Turns a read failure into a library error with `f`.
    pub fn map_err(self, f: impl FnOnce(std::io::Error) -> Error) -> Error {
        match self {
            StreamError::Read(e) => f(e),
            StreamError::Store(e) => e,
        }
    }
}

/// What a window holds beyond the chunk that usually follows: each round
/// stores about this much. Small, because a worker waiting on its round's
/// sealing may steal another file and open a window of its own: with
/// 1 MiB a first backup of the 1.2 GB benchmark data peaked at 86-93 MiB,
/// with 8 MiB at 119-129 MiB, for the same time.
pub const WINDOW_BATCH: usize = 1 << 20;

/// Database pages are read in windows this many times larger. Pages are
/// grouped, and a group is sealed by the thread whose page fills it: with
/// one group's worth of pages per window, a large database was sealed one
/// group at a time on one core while the other waited for the next window.
/// Four, not eight: a live database's pages are read a window ahead on
/// another thread (`PageStream`), and 4 MiB windows with 4 MiB ahead
/// stored a 459 MB part 7% faster in 2-4 MiB less memory than 8 MiB
/// windows with 1 MiB ahead.
pub const PAGE_BATCH_FACTOR: usize = 4;

/// Chunks and stores everything `reader` yields, `size_hint` bytes
/// expected; `rel` (the path in the snapshot) chooses the chunking rule.
/// Returns the content to record (blob ids inline, or lists of them for a
/// large file: see [`ContentBuilder`]) and the byte count.
///
/// The stream is read into one window of [`WINDOW_BATCH`] plus twice the
/// average chunk (smaller for a small file) and its chunks are stored as
/// slices of it, never copied. The last chunk of a window is kept back
/// when it ends at the window's end (it may have been cut for want of
/// data), which keeps every cut where a cut over the whole stream would put
/// it. The uncut tail moves to the front and the window is filled again;
/// a window that holds no whole chunk grows to [`WINDOW_BATCH`] plus the
/// largest chunk. (Windows used to hold a whole largest chunk after every
/// cut: 9 MiB, of which 8 were moved and cut again each round.)
pub fn store_stream(
    reader: &mut dyn Read,
    size_hint: u64,
    rel: &[u8],
    chunker: &Chunker,
    packer: &Packer<'_>,
    progress: &dyn Fn(u64),
) -> std::result::Result<(Content, u64), StreamError> {
    let mut ids = ContentBuilder::new(packer);
    let mut first = true;
    let total = for_each_batch(
        reader,
        size_hint,
        rel,
        chunker,
        WINDOW_BATCH,
        &mut |chunks| {
            if first && !chunks.is_empty() {
                first = false;
                // Sized from the first batch's chunks: a list's worth of a
                // large database's ids (32 bytes per page) never doubles.
                let avg = chunks.iter().map(|c| c.len()).sum::<usize>() / chunks.len();
                ids.reserve((size_hint as usize / avg.max(1) + 1).min(1 << 18));
            }
            ids.push(&packer.add_batch(BlobKind::Data, chunks)?, packer)?;
            progress(chunks.iter().map(|c| c.len() as u64).sum());
            Ok(())
        },
    )?;
    let content = ids.finish(packer).map_err(StreamError::Store)?;
    Ok((content, total))
}

/// Cuts the stream as [`store_stream`] describes and hands `f` the chunks
/// of each window (about `batch` bytes of them, less the chunk kept back);
/// returns the byte count.
fn for_each_batch(
    reader: &mut dyn Read,
    size_hint: u64,
    rel: &[u8],
    chunker: &Chunker,
    batch: usize,
    f: &mut dyn FnMut(&[&[u8]]) -> crate::error::Result<()>,
) -> std::result::Result<u64, StreamError> {
    let mut head = [0u8; 100];
    let head_len = read_full(reader, &mut head).map_err(StreamError::Read)?;
    let method = chunker.method_for(rel, &head[..head_len]);
    // `usual`: the window length that holds a batch and the chunk after
    // it in most files; `full`: one that always does.
    let (max, batch, usual) = match method {
        ChunkMethod::SqlitePages { pages_per_chunk } => {
            let page = crate::chunker::sqlite_page_size(&head[..head_len]).unwrap_or(4096);
            let max = page as usize * pages_per_chunk.max(1) as usize;
            (max, batch * PAGE_BATCH_FACTOR, max)
        }
        ChunkMethod::Fixed { size } => (size as usize, batch * PAGE_BATCH_FACTOR, size as usize),
        ChunkMethod::Cdc(p) => (p.max as usize, batch, (2 * p.avg).min(p.max) as usize),
    };
    let full = batch + max;
    // One byte more than expected, so that a file of the expected size
    // meets its end without a second, larger window.
    let first = (size_hint as usize)
        .saturating_add(1)
        .clamp(head_len.max(1), batch + usual);
    let mut window = Window::new(first);
    window.buf[..head_len].copy_from_slice(&head[..head_len]);
    let mut filled = head_len;
    let mut eof = head_len < head.len();
    let mut total = 0u64;
    let mut cuts: Vec<Range<usize>> = Vec::new();
    loop {
        if !eof {
            let n = read_full(reader, &mut window.buf[filled..]).map_err(StreamError::Read)?;
            filled += n;
            eof = filled < window.buf.len();
        }
        cuts.clear();
        match method {
            // Pages at the page size read from the file's header: later
            // windows do not start with it, and `Chunker::cut` would take
            // them for 4 KiB pages.
            ChunkMethod::SqlitePages { .. } | ChunkMethod::Fixed { .. } => {
                cuts.extend(
                    (0..filled)
                        .step_by(max)
                        .map(|at| at..(at + max).min(filled)),
                );
            }
            ChunkMethod::Cdc(_) => chunker.cut(&window.buf[..filled], method, |r| cuts.push(r)),
        }
        if !eof {
            // A chunk that ends where the bytes read so far end, shorter
            // than `max`, may have been cut for want of data: it waits for
            // the next round. Every other cut is where a cut over the whole
            // stream puts it: FastCDC finds a boundary from the bytes
            // between the chunk's start and the boundary alone, and cuts at
            // `max` regardless; pages are cut at fixed offsets.
            while cuts
                .last()
                .is_some_and(|r| r.end == filled && r.len() < max)
            {
                cuts.pop();
            }
        }
        let consumed = cuts.last().map_or(0, |r| r.end);
        if !cuts.is_empty() {
            let slices: Vec<&[u8]> = cuts.iter().map(|r| &window.buf[r.clone()]).collect();
            f(&slices).map_err(StreamError::Store)?;
            total += consumed as u64;
        }
        if eof {
            return Ok(total);
        }
        window.buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        if filled == window.buf.len() {
            // Longer than its size said: no chunk fits yet, widen.
            window.grow(full);
        }
    }
}

/// A window buffer, taken from a small pool and given back: the same few
/// buffers serve every large file, so the allocator neither faults in
/// fresh pages for each file nor keeps freed ones fragmented.
struct Window {
    buf: Vec<u8>,
}

/// Buffers kept for reuse; more are allocated when more files are read at
/// once (a worker waiting on a batch may start another file).
static POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
const POOL_MAX: usize = 4;
/// Windows below this are allocated for the file and freed with it.
const POOL_MIN: usize = 1 << 20;

impl Window {
    fn new(len: usize) -> Window {
        let pooled = if len >= POOL_MIN {
            let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
            pool.iter()
                .position(|b| b.capacity() >= len)
                .map(|i| pool.swap_remove(i))
        } else {
            None
        };
        let mut buf = pooled.unwrap_or_default();
        buf.reserve_exact(len.saturating_sub(buf.len()));
        buf.resize(len, 0);
        Window { buf }
    }

    fn grow(&mut self, len: usize) {
        if self.buf.len() < len {
            // Exactly: `resize` alone doubles, and a pooled 8 MiB page
            // window widened for a 9 MiB CDC window became 16 MiB, kept in
            // the pool (two of them were a third of a backup's peak heap).
            self.buf.reserve_exact(len - self.buf.len());
            self.buf.resize(len, 0);
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if self.buf.capacity() >= POOL_MIN {
            let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOL_MAX {
                pool.push(std::mem::take(&mut self.buf));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_widened_window_is_as_large_as_asked_not_doubled() {
        let mut w = Window {
            buf: vec![0u8; (8 << 20) + 4096],
        };
        w.grow(9 << 20);
        assert_eq!(w.buf.len(), 9 << 20);
        assert!(w.buf.capacity() < 10 << 20, "capacity {}", w.buf.capacity());
    }
    use crate::chunker::{CdcParams, ChunkRule, ChunkingPolicy};
    use fastcdc::v2020::{Normalization, StreamCDC};

    /// A reader that returns at most `step` bytes per call, like a pipe.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn windows_cut_where_fastcdc_cuts_the_whole_stream() {
        const SEED: u64 = 0x5eed;
        let p = CdcParams::SMALL;
        let mut policy = ChunkingPolicy::default();
        policy.rules.push(ChunkRule {
            glob: "*.bin".into(),
            chunking: ChunkMethod::Cdc(p),
        });
        let chunker = Chunker::new(policy, SEED).unwrap();
        for (len, hint, step, batch) in [
            (0, 0, 7, 1024),
            (1, 1, 7, 1024),
            (700_000, 700_000, 100_000, 64 * 1024),
            (700_000, 10, 4096, 100 * 1024), // grew after it was listed
            (700_000, 2_000_000, 65_536, 4096), // shrank
            (300_001, 300_001, 1 << 20, 1 << 20), // one window
            (700_000, 700_000, 333, 1),      // windows of about two chunks
            (1_500_000, 0, 65_536, 10),      // no hint: grows from the header
        ] {
            let data = noise(len, len as u64 + 3);
            let want: Vec<Vec<u8>> = StreamCDC::with_level_and_seed(
                data.as_slice(),
                p.min,
                p.avg,
                p.max,
                Normalization::Level1,
                SEED,
            )
            .map(|c| c.unwrap().data)
            .collect();
            let mut got = Vec::new();
            let total = for_each_batch(
                &mut Trickle(&data, step),
                hint,
                b"x.bin",
                &chunker,
                batch,
                &mut |cs| {
                    got.extend(cs.iter().map(|c| c.to_vec()));
                    Ok(())
                },
            )
            .unwrap_or_else(|_| panic!("reading {len} bytes"));
            assert_eq!(total, len as u64);
            assert!(got == want, "cuts differ for {len} bytes, window {batch}");
        }
    }

    /// Every chunk `for_each_batch` hands out for `data` named `rel`, in
    /// windows of a few `block`s.
    fn cut_in_windows(data: &[u8], rel: &[u8], block: usize) -> Vec<Vec<u8>> {
        let chunker = Chunker::new(ChunkingPolicy::default(), 1).unwrap();
        let mut got = Vec::new();
        for_each_batch(
            &mut Trickle(data, 5000),
            data.len() as u64,
            rel,
            &chunker,
            // Windows of a few blocks, after PAGE_BATCH_FACTOR.
            3 * block / PAGE_BATCH_FACTOR + 1,
            &mut |cs| {
                got.extend(cs.iter().map(|c| c.to_vec()));
                Ok(())
            },
        )
        .unwrap_or_else(|_| panic!("reading {}", String::from_utf8_lossy(rel)));
        got
    }

    #[test]
    fn database_pages_and_fixed_blocks_are_cut_whole_across_windows() {
        // Pages of other sizes than 4 KiB too: windows after the first do
        // not start with the header that says the page size.
        for page in [512usize, 4096, 8192] {
            let mut db = noise(page * 37 + 100, 9);
            db[..16].copy_from_slice(b"SQLite format 3\0");
            db[16..18].copy_from_slice(&(page as u16).to_be_bytes());
            let want: Vec<Vec<u8>> = db.chunks(page).map(<[u8]>::to_vec).collect();
            assert!(
                cut_in_windows(&db, b"app.db", page) == want,
                "{page}-byte pages"
            );
        }
        let data = noise(4096 * 37 + 100, 10);
        let want: Vec<Vec<u8>> = data.chunks(4096).map(<[u8]>::to_vec).collect();
        assert!(cut_in_windows(&data, b"seg/data_level0.bin", 4096) == want);
    }
}
