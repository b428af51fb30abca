//! A live SQLite database read page by page as of one commit.
//!
//! One `SELECT data FROM sqlite_dbpage ORDER BY pgno` runs in a single read
//! transaction, so the pages it yields are the database as of one commit,
//! with what is still only in its WAL, read through SQLite's own file
//! handle and locks. Unlike the backup API ([`super::sqlite::consistent_copy`])
//! it writes no copy of the database: the 272 MB database of the benchmark data took
//! 0.75 s to copy before a byte of it was stored.
//!
//! The statement runs on a thread of its own (a statement borrows its
//! connection, and neither can cross threads), which hands pages over a
//! bounded channel; [`PageStream`] reads them back as one byte stream.
//! In rollback-journal mode writers wait, with their busy timeout, while
//! the stream is read, as they would for any reader; in WAL mode they go
//! on and only checkpoints wait.
//!
//! `sqlite_dbpage` exists only where SQLite was built with
//! `SQLITE_ENABLE_DBPAGE_VTAB` (`.cargo/config.toml` sets it for the
//! bundled SQLite). Without it, [`PageStream::open`] fails before a byte
//! is read and the caller copies the database instead.

use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// Bytes of pages handed over at once (64 pages of 4 KiB, 4 of 64 KiB):
/// counted in bytes, so what waits in the channel is bounded in bytes
/// whatever the database's page size.
const MESSAGE_BYTES: usize = 256 << 10;

/// What the reader thread sends. The end is said explicitly: a channel
/// that closes without `Done` (the thread died) must read as an error, not
/// as the end of a shorter database.
enum Message {
    Pages(Vec<u8>),
    Done,
    Failed(String),
}

/// The pages of a database, in order, as one byte stream; see the module doc.
pub struct PageStream {
    rx: Option<Receiver<Message>>,
    buf: Vec<u8>,
    pos: usize,
    reader: Option<JoinHandle<()>>,
    /// `Done` was received.
    done: bool,
    /// The first failure, repeated to every later read.
    failed: Option<String>,
}

impl PageStream {
    /// Starts reading the database at `path`, with up to `ahead` bytes of
    /// pages read before they are asked for (at least one message). The
    /// caller reads in windows and stores each on every core: with a
    /// window's worth ahead, the next window is read meanwhile; with 1 MiB
    /// ahead of 8 MiB windows, both cores waited on this thread's page
    /// reads for most of each window (64-80% busy while a 272 MB database
    /// was stored). Fails, before anything is read, when the database
    /// cannot be opened or its first page read, or when this SQLite lacks
    /// `sqlite_dbpage`.
    pub fn open(path: &Path, ahead: usize) -> Result<PageStream> {
        let (tx, rx) = sync_channel((ahead / MESSAGE_BYTES).max(1));
        let owned = path.to_path_buf();
        let reader = std::thread::Builder::new()
            .name("opc-dbpage".into())
            .spawn(move || read_pages(&owned, &tx))
            .map_err(|e| Error::io("starting a database reader for", path, e))?;
        let mut s = PageStream {
            rx: Some(rx),
            buf: Vec::new(),
            pos: 0,
            reader: Some(reader),
            done: false,
            failed: None,
        };
        // The first message tells whether the statement runs at all.
        match s.next_message() {
            Ok(Some(first)) => s.buf = first,
            Ok(None) => {}
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "{}: reading through sqlite_dbpage failed: {e}",
                    path.display()
                )))
            }
        }
        Ok(s)
    }

    fn next_message(&mut self) -> std::result::Result<Option<Vec<u8>>, String> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.done {
            return Ok(None);
        }
        let got = self.rx.as_ref().map(Receiver::recv);
        match got {
            Some(Ok(Message::Pages(pages))) => return Ok(Some(pages)),
            Some(Ok(Message::Done)) => {
                self.done = true;
                return Ok(None);
            }
            Some(Ok(Message::Failed(e))) => self.failed = Some(e),
            Some(Err(_)) | None => {
                self.failed = Some("the database reader stopped before the last page".into());
            }
        }
        Err(self.failed.clone().unwrap_or_default())
    }
}

impl Read for PageStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.next_message().map_err(io::Error::other)? {
                Some(next) => {
                    self.buf = next;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for PageStream {
    fn drop(&mut self) {
        // Closing the channel makes the reader's next send fail: it stops
        // and its read transaction (and lock) ends before we return.
        self.rx = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// The reader thread: sends the pages in messages, then `Done`, or an
/// error.
fn read_pages(path: &Path, tx: &SyncSender<Message>) {
    let end = match send_pages(path, tx) {
        Ok(()) => Message::Done,
        Err(e) => Message::Failed(e.to_string()),
    };
    let _ = tx.send(end);
}

fn send_pages(path: &Path, tx: &SyncSender<Message>) -> rusqlite::Result<()> {
    // Read-only and no URI tricks: opening must never create, convert or
    // checkpoint anything in the folder of the program that owns it.
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(std::time::Duration::from_secs(60))?;
    let mut stmt = c.prepare("SELECT data FROM sqlite_dbpage ORDER BY pgno")?;
    let mut rows = stmt.query([])?;
    let mut msg = Vec::new();
    while let Some(row) = rows.next()? {
        if msg.capacity() == 0 {
            // A message's size at once, not grown by doubling and copying.
            msg.reserve_exact(MESSAGE_BYTES);
        }
        msg.extend_from_slice(row.get_ref(0)?.as_blob()?);
        if msg.len() >= MESSAGE_BYTES && tx.send(Message::Pages(std::mem::take(&mut msg))).is_err()
        {
            return Ok(());
        }
    }
    if !msg.is_empty() {
        let _ = tx.send(Message::Pages(msg));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn read_all(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        PageStream::open(path, 1 << 20)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// `dir/x.db` (rollback journal) with `rows` rows of 300 random bytes.
    fn filled(dir: &Path, rows: u32) -> (PathBuf, Connection) {
        let db = dir.join("x.db");
        let c = Connection::open(&db).unwrap();
        c.execute_batch(&format!(
            "create table t(v); with recursive n(i) as (select 1 union all select i+1 from n \
             where i < {rows}) insert into t select randomblob(300) from n;"
        ))
        .unwrap();
        (db, c)
    }

    #[test]
    fn a_quiet_database_streams_as_its_file_bytes() {
        let d = tempfile::tempdir().unwrap();
        let (db, c) = filled(d.path(), 3000);
        drop(c);
        let bytes = read_all(&db);
        assert!(bytes.len() > 64 * 4096, "more than one message");
        assert_eq!(bytes, std::fs::read(&db).unwrap());
    }

    #[test]
    fn commits_only_in_the_wal_are_in_the_stream() {
        let d = tempfile::tempdir().unwrap();
        let (db, c) = crate::source::sqlite::tests::wal_only_rows(d.path());
        let image = d.path().join("image.db");
        std::fs::write(&image, read_all(&db)).unwrap();
        let n: i64 = Connection::open(&image)
            .unwrap()
            .query_row("select count(*) from t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        drop(c);
    }

    #[test]
    fn a_reader_that_stops_without_its_end_is_an_error_not_a_short_database() {
        let (tx, rx) = sync_channel(4);
        tx.send(Message::Pages(vec![1u8; 4096])).unwrap();
        drop(tx);
        let mut s = PageStream {
            rx: Some(rx),
            buf: Vec::new(),
            pos: 0,
            reader: None,
            done: false,
            failed: None,
        };
        let mut out = Vec::new();
        let e = s.read_to_end(&mut out).unwrap_err();
        assert!(
            e.to_string().contains("stopped before the last page"),
            "{e}"
        );
        assert_eq!(out.len(), 4096);
        assert!(s.read(&mut [0u8; 16]).is_err(), "and stays an error");
    }

    #[test]
    fn a_file_that_is_no_database_fails_before_reading() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("not.db");
        std::fs::write(&p, vec![7u8; 8192]).unwrap();
        let e = PageStream::open(&p, 1 << 20).err().expect("refused");
        assert!(e.to_string().contains("not.db"), "{e}");
    }

    #[test]
    fn dropping_a_stream_half_read_ends_its_transaction() {
        let d = tempfile::tempdir().unwrap();
        let (db, w) = filled(d.path(), 10_000);
        let mut s = PageStream::open(&db, 1 << 20).unwrap();
        let mut first = [0u8; 4096];
        s.read_exact(&mut first).unwrap();
        // Rollback journal: the reader's lock holds writers off...
        w.busy_timeout(std::time::Duration::ZERO).unwrap();
        assert!(w.execute("insert into t values (1)", []).is_err());
        // ...until the stream is dropped.
        drop(s);
        w.execute("insert into t values (1)", []).unwrap();
    }
}
