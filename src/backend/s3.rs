//! S3-compatible object storage through OpenDAL, behind the synchronous
//! [`Backend`] trait: the backend owns a small tokio runtime and blocks on
//! each request.
//!
//! How the contract is kept (see `docs/FORMAT.md`, "Repositories on S3"):
//! - `write_atomic` is one PUT: S3 makes an object visible whole or not at
//!   all. `put_file` uploads a finished pack with one PUT when it is at
//!   most [`PART_SIZE`], else as a multipart upload, which becomes visible
//!   only at its completion; on any error the multipart upload is aborted.
//! - Transient failures (connection errors, 5xx, throttling) are retried
//!   with exponential backoff and jitter; each request has a time limit.
//! - Listing follows continuation tokens (all pages).
//! - Nothing here relies on conditional writes (Garage ignores
//!   `If-None-Match`): every name written is content-addressed or random.

use std::future::IntoFuture;
use std::path::Path;
use std::time::Duration;

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind as DalKind, Operator};

use super::url::S3Url;
use super::{Backend, S3Settings};
use crate::error::{Error, Result};

/// Packs larger than this go up as multipart uploads of parts this big.
pub const PART_SIZE: usize = 8 << 20;
/// Parts of one multipart upload sent at once.
const PART_CONCURRENCY: usize = 2;

/// A repository under `s3:ENDPOINT/BUCKET/PREFIX`.
pub struct S3Backend {
    op: Operator,
    rt: tokio::runtime::Runtime,
    url: S3Url,
}

impl S3Backend {
    /// Connects to the bucket of `url` and checks, with one listing, that
    /// it is reachable, exists and that the credentials are accepted.
    pub fn connect(url: &S3Url, settings: &S3Settings) -> Result<S3Backend> {
        // TLS on ring (see Cargo.toml), then the reqwest HTTP transport;
        // each is installed once per process, later calls change nothing.
        let _ = rustls::crypto::ring::default_provider().install_default();
        opendal::install_default();
        opendal_http_transport_reqwest::install_default();
        let s = settings;
        let mut b = opendal::services::S3::default()
            .endpoint(&url.endpoint)
            .bucket(&url.bucket)
            .root(&format!("/{}", url.prefix))
            .region(s.region.as_deref().unwrap_or("us-east-1"))
            .disable_ec2_metadata();
        if let (Some(k), Some(sec)) = (&s.access_key_id, &s.secret_access_key) {
            b = b
                .access_key_id(k)
                .secret_access_key(sec)
                .disable_config_load();
            if let Some(t) = &s.session_token {
                b = b.session_token(t);
            }
        }
        if !s.path_style.unwrap_or_else(|| url.default_path_style()) {
            b = b.enable_virtual_host_style();
        }
        let retries = s.max_retries.unwrap_or(5);
        let op = Operator::new(b)
            .map_err(|e| Error::Config(format!("repository {url}: {}", short(&e))))?
            .layer(
                TimeoutLayer::new()
                    .with_timeout(Duration::from_secs(120))
                    .with_io_timeout(Duration::from_secs(60)),
            )
            .layer(
                RetryLayer::new()
                    .with_max_times(retries)
                    .with_min_delay(Duration::from_millis(500))
                    .with_max_delay(Duration::from_secs(30))
                    .with_jitter(),
            );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("opc-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the S3 client for", url.to_string(), e))?;
        let backend = S3Backend {
            op,
            rt,
            url: url.clone(),
        };
        backend.probe()?;
        Ok(backend)
    }

    /// One listing request: turns a wrong endpoint, refused credentials or
    /// a missing bucket into a clear error before anything else runs.
    fn probe(&self) -> Result<()> {
        self.rt
            .block_on(self.op.list_with("keys/").limit(1).into_future())
            .map(|_| ())
            .map_err(|e| self.error("listing", "keys/", e))
    }

    /// Maps an OpenDAL error to the library's: a missing object stays an
    /// I/O "not found" (callers test for it), the rest become typed storage
    /// errors that say what to do.
    fn error(&self, action: &'static str, name: &str, e: opendal::Error) -> Error {
        let endpoint = self.url.endpoint.clone();
        let bucket = self.url.bucket.clone();
        let full = format!("{}/{name}", self.url);
        match e.kind() {
            DalKind::NotFound => Error::io(
                action,
                full,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"),
            ),
            DalKind::RangeNotSatisfied => Error::io(
                action,
                full,
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "range past the end"),
            ),
            DalKind::PermissionDenied => Error::StorageDenied {
                endpoint,
                bucket,
                cause: short(&e),
            },
            DalKind::ConfigInvalid if e.to_string().contains("NoSuchBucket") => {
                Error::NoSuchBucket { endpoint, bucket }
            }
            _ => Error::StorageUnreachable {
                endpoint,
                action,
                name: full,
                cause: short(&e),
            },
        }
    }

    async fn upload(&self, name: &str, file: &Path) -> std::result::Result<(), UploadError> {
        use std::io::Read;
        // Local reads block this (the calling) thread only: `block_on`
        // runs this future here, the parts upload on the runtime's workers.
        let mut f = std::fs::File::open(file).map_err(UploadError::Local)?;
        let mut w = self
            .op
            .writer_with(name)
            .chunk(PART_SIZE)
            .concurrent(PART_CONCURRENCY)
            .await
            .map_err(UploadError::Remote)?;
        let result = async {
            loop {
                let mut buf = Vec::with_capacity(PART_SIZE);
                while buf.len() < PART_SIZE {
                    let n = (&mut f)
                        .take((PART_SIZE - buf.len()) as u64)
                        .read_to_end(&mut buf)
                        .map_err(UploadError::Local)?;
                    if n == 0 {
                        break;
                    }
                }
                if buf.is_empty() {
                    break;
                }
                let last = buf.len() < PART_SIZE;
                w.write(buf).await.map_err(UploadError::Remote)?;
                if last {
                    break;
                }
            }
            w.close().await.map_err(UploadError::Remote)?;
            Ok(())
        }
        .await;
        if result.is_err() {
            // A multipart upload that is not completed stays invisible, but
            // its parts take space until aborted.
            if let Err(e) = w.abort().await {
                tracing::warn!("could not abort the upload of {name}: {e}");
            }
        }
        result
    }
}

enum UploadError {
    Local(std::io::Error),
    Remote(opendal::Error),
}

/// The library's message and the innermost cause, without the context dump.
fn short(e: &opendal::Error) -> String {
    let mut msg = format!("{}: {}", e.kind(), e.message());
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = src {
        last = Some(s.to_string());
        src = s.source();
    }
    if let Some(l) = last.filter(|l| !msg.contains(l.as_str())) {
        msg.push_str(" (");
        msg.push_str(&l);
        msg.push(')');
    }
    msg
}

impl Backend for S3Backend {
    fn read(&self, name: &str) -> Result<Vec<u8>> {
        self.rt
            .block_on(self.op.read(name))
            .map(|b| b.to_vec())
            .map_err(|e| self.error("reading", name, e))
    }

    fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let buf = self
            .rt
            .block_on(
                self.op
                    .read_with(name)
                    .range(offset..offset + len)
                    .into_future(),
            )
            .map_err(|e| self.error("reading", name, e))?
            .to_vec();
        if (buf.len() as u64) < len {
            return Err(Error::io(
                "reading",
                format!("{}/{name}", self.url),
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "object too short"),
            ));
        }
        Ok(buf)
    }

    fn size(&self, name: &str) -> Result<Option<u64>> {
        match self.rt.block_on(self.op.stat(name)) {
            Ok(m) => Ok(Some(m.content_length())),
            Err(e) if e.kind() == DalKind::NotFound => Ok(None),
            Err(e) => Err(self.error("reading metadata of", name, e)),
        }
    }

    fn write_atomic(&self, name: &str, data: &[u8]) -> Result<()> {
        self.rt
            .block_on(self.op.write(name, data.to_vec()))
            .map(|_| ())
            .map_err(|e| self.error("uploading", name, e))
    }

    fn put_file(&self, name: &str, file: &Path) -> Result<()> {
        let r = self.rt.block_on(self.upload(name, file));
        // The local copy is a temporary file either way: uploaded, or
        // belonging to a failed operation.
        let _ = std::fs::remove_file(file);
        r.map_err(|e| match e {
            UploadError::Local(e) => Error::io("reading", file, e),
            UploadError::Remote(e) => self.error("uploading", name, e),
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = if prefix.is_empty() {
            "/".to_string()
        } else {
            format!("{}/", prefix.trim_end_matches('/'))
        };
        let entries = self
            .rt
            .block_on(self.op.list_with(&dir).recursive(true).into_future())
            .map_err(|e| self.error("listing", &dir, e))?;
        let mut out: Vec<String> = entries
            .into_iter()
            .map(|e| e.path().trim_start_matches('/').to_string())
            .filter(|p| !p.is_empty() && !p.ends_with('/'))
            .collect();
        out.sort();
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<()> {
        match self.rt.block_on(self.op.delete(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == DalKind::NotFound => Ok(()),
            Err(e) => Err(self.error("deleting", name, e)),
        }
    }

    fn local_dir(&self) -> Option<&Path> {
        None
    }
}
