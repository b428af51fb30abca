//! A real S3 server for the tests: Garage on 127.0.0.1, started by
//! `tests/s3/start-garage.sh`.
//!
//! [`shared`] is one server per test binary: the one named by
//! `OPC_TEST_S3_ENDPOINT` (`.ci/run` starts it), else one this binary
//! starts on free ports in a temporary folder; it stops once the binary
//! has exited. [`Garage::private`] starts one that a test may kill and
//! start again. Without Garage installed, the S3 tests fail under CI
//! (`CI=true`) and are skipped loudly elsewhere.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where and how to reach an S3 server.
#[derive(Clone, Debug)]
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl S3 {
    /// `s3:ENDPOINT/BUCKET/PREFIX` with a prefix unique to this call.
    pub fn repo_url(&self, name: &str) -> PathBuf {
        let mut r = [0u8; 6];
        getrandom::getrandom(&mut r).expect("random");
        PathBuf::from(format!(
            "s3:{}/{}/{name}-{}",
            self.endpoint,
            self.bucket,
            hex::encode(r)
        ))
    }

    /// The variables that give the binary these credentials.
    pub fn vars(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), self.region.clone()),
            ("OPC_S3_MAX_RETRIES".into(), "2".into()),
        ]
    }
}

/// A Garage process this test binary started.
pub struct Garage {
    pub s3: S3,
    dir: PathBuf,
    ports: [u16; 3],
    _tmp: Option<tempfile::TempDir>,
}

fn garage_installed() -> bool {
    Command::new("bash")
        .args([
            "-c",
            "command -v garage >/dev/null || test -x \"$HOME/.cargo/bin/garage\"",
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails under CI, else says loudly that the test is skipped.
fn missing(what: &str) -> Option<Garage> {
    let msg = format!(
        "{what}: Garage is not installed, so the S3 tests cannot run; install it with `cargo install garage --version 2.5.0 --locked` (.ci/run does)"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{msg}");
    }
    // Straight to the process's stderr: the harness captures eprintln!.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED *** {msg}\n");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3/start-garage.sh")
}

impl Garage {
    /// Starts a Garage of this test's own (None: not installed, outside
    /// CI). It stops when dropped, or at the latest when the binary exits.
    pub fn private() -> Option<Garage> {
        if !garage_installed() {
            return missing("Garage::private");
        }
        let tmp = tempfile::Builder::new()
            .prefix("opc-garage-")
            .tempdir()
            .expect("tempdir");
        let mut g = Garage {
            s3: S3 {
                endpoint: String::new(),
                bucket: String::new(),
                access_key: String::new(),
                secret_key: String::new(),
                region: String::new(),
            },
            dir: tmp.path().to_path_buf(),
            ports: [free_port(), free_port(), free_port()],
            _tmp: Some(tmp),
        };
        g.start();
        Some(g)
    }

    /// Starts (or starts again) this Garage with its data.
    pub fn start(&mut self) {
        let out = Command::new("bash")
            .arg(script())
            .arg(&self.dir)
            .args(self.ports.map(|p| p.to_string()))
            .arg(std::process::id().to_string())
            .output()
            .expect("running start-garage.sh");
        assert!(
            out.status.success(),
            "start-garage.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let var = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                .unwrap_or_else(|| panic!("{k} missing in {text}"))
                .to_string()
        };
        self.s3 = S3 {
            endpoint: var("OPC_TEST_S3_ENDPOINT"),
            bucket: var("OPC_TEST_S3_BUCKET"),
            access_key: var("OPC_TEST_S3_ACCESS_KEY"),
            secret_key: var("OPC_TEST_S3_SECRET_KEY"),
            region: var("OPC_TEST_S3_REGION"),
        };
    }

    fn pid(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("garage.pid"))
            .ok()
            .map(|p| p.trim().to_string())
    }

    /// Kills Garage at once (SIGKILL) and waits until it is gone.
    pub fn kill(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "kill -9 {pid}; while kill -0 {pid} 2>/dev/null; do sleep 0.05; done"
                ))
                .status();
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The server shared by this binary's S3 tests (None: skipped, see the
/// module doc).
pub fn shared() -> Option<&'static S3> {
    static SHARED: OnceLock<Option<S3>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            if let Some(endpoint) = env("OPC_TEST_S3_ENDPOINT") {
                return Some(S3 {
                    endpoint,
                    bucket: env("OPC_TEST_S3_BUCKET").expect("OPC_TEST_S3_BUCKET"),
                    access_key: env("OPC_TEST_S3_ACCESS_KEY").expect("OPC_TEST_S3_ACCESS_KEY"),
                    secret_key: env("OPC_TEST_S3_SECRET_KEY").expect("OPC_TEST_S3_SECRET_KEY"),
                    region: env("OPC_TEST_S3_REGION").unwrap_or_else(|| "garage".into()),
                });
            }
            // Kept for the binary's lifetime: the watcher started by the
            // script stops Garage once this process is gone and removes
            // the folder.
            let g = Garage::private()?;
            let _ = std::fs::write(g.dir.join("remove-when-done"), b"");
            let s3 = g.s3.clone();
            std::mem::forget(g);
            Some(s3)
        })
        .as_ref()
}
