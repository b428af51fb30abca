//! Real peers on 127.0.0.1 for the notification tests, shared by the
//! store and CLI test binaries: a Python `http.server` standing in for
//! Slack and generic webhooks, and Python's `aiosmtpd` as the SMTP server
//! (installed by `.ci/run`).

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// Records each POST as one JSON line `{path, content_type, body}` and
/// answers with the statuses given as arguments in turn (200 once they run
/// out). Prints its port.
pub const HTTP_PEER: &str = r#"
import http.server, json, sys
out, statuses = sys.argv[1], [int(s) for s in sys.argv[2:]]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "content_type": self.headers.get("Content-Type"), "body": body}) + "\n")
        code = statuses.pop(0) if statuses else 200
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"try later")
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// aiosmtpd without TLS, AUTH required (allowed in clear text, as for a
/// local relay) for user `backups@example.com` / `s3cret`; each accepted
/// message is one JSON line `{from, to, data, login}`. Prints its port.
pub const SMTP_PEER: &str = r#"
import json, socket, sys, time, warnings
warnings.simplefilter("ignore")
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
out = sys.argv[1]
def auth(server, session, envelope, mechanism, data):
    ok = data.login == b"backups@example.com" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False, auth_data=data.login.decode())
class Handler:
    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data if session.authenticated else None
        with open(out, "a") as f:
            f.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                "data": envelope.content.decode("utf8", "replace"), "login": login}) + "\n")
        return "250 OK"
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
c = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=auth,
               auth_required=True, auth_require_tls=False)
c.start()
print(port, flush=True)
while True:
    time.sleep(3600)
"#;

/// A Python peer, killed when dropped.
pub struct Peer {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Peer {
    pub fn start(script: &str, args: &[&str]) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.py");
        std::fs::write(&path, script).unwrap();
        let log = dir.path().join("received.jsonl");
        let mut child = Command::new("python3")
            .arg(&path)
            .arg(&log)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (the tests use it as a peer)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("peer did not start (is aiosmtpd installed? .ci/run installs it): {line:?}")
        });
        Peer {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every recorded request or message.
    pub fn received(&self) -> Vec<Value> {
        match std::fs::read_to_string(&self.log) {
            Ok(t) => t
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
