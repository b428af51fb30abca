//! Commands run around a capture or a restore (`before`, `after`,
//! `on_error`, `before_restore`, `after_restore`, `health_check`): for
//! example stopping a container so a database is still while it is
//! read. Each runs with `sh -c`, stdin closed, its output captured (the tail
//! is kept for the log), and is killed with its whole process group when its
//! timeout passes.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How much of a hook's output is kept (the end, where errors are).
const OUTPUT_TAIL: usize = 8 * 1024;

/// After the timeout, SIGTERM; after this grace, SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Default timeout of a hook.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The commands of one scope (a part, or the whole run).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HookSet {
    /// Before capturing; a failure skips what it guards.
    pub before: Option<String>,
    /// After capturing, whenever `before` succeeded (or there was none).
    pub after: Option<String>,
    /// When `before`, the capture or `after` failed.
    pub on_error: Option<String>,
    /// Before restoring in place; a failure stops the restore.
    pub before_restore: Option<String>,
    /// After restoring, whenever `before_restore` succeeded.
    pub after_restore: Option<String>,
    /// After `after_restore`: the restore counts as failed if it fails.
    pub health_check: Option<String>,
    /// Limit for each command; `None` is [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
}

impl HookSet {
    /// True when no command is set.
    pub fn is_empty(&self) -> bool {
        self.before.is_none()
            && self.after.is_none()
            && self.on_error.is_none()
            && self.before_restore.is_none()
            && self.after_restore.is_none()
            && self.health_check.is_none()
    }

    /// The timeout that applies.
    pub fn limit(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }
}

/// What one hook did, for reports and the log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HookRun {
    /// Which hook: `<part>.before`, `run.after`, ...
    pub hook: String,
    /// The command line.
    pub command: String,
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Succeeded (exit 0 within the timeout).
    pub ok: bool,
    /// Killed after its timeout.
    pub timed_out: bool,
    /// Wall time in seconds.
    pub seconds: f64,
    /// The end of its stdout and stderr, interleaved as written.
    pub output: String,
}

impl HookRun {
    /// One line saying how it failed, for error messages.
    pub fn failure(&self) -> String {
        let how = if self.timed_out {
            format!("timed out after {:.0}s and was killed", self.seconds)
        } else {
            match self.exit_code {
                Some(c) => format!("exited with code {c}"),
                None => "was killed by a signal".into(),
            }
        };
        let out = self.output.trim();
        let last = out.lines().last().unwrap_or("");
        if last.is_empty() {
            format!("{} hook `{}` {how}", self.hook, self.command)
        } else {
            format!("{} hook `{}` {how}: {last}", self.hook, self.command)
        }
    }
}

/// Runs `command` with `sh -c`, with `env` added, for at most `timeout`.
/// Never fails: a command that cannot be started is a failed [`HookRun`].
pub fn run_hook(hook: &str, command: &str, env: &[(&str, &str)], timeout: Duration) -> HookRun {
    let started = Instant::now();
    let mut run = HookRun {
        hook: hook.to_string(),
        command: command.to_string(),
        exit_code: None,
        ok: false,
        timed_out: false,
        seconds: 0.0,
        output: String::new(),
    };
    // One pipe for both streams keeps their order; reading it in a thread
    // keeps a chatty command from blocking on a full pipe.
    let (reader, writer) = match nix::unistd::pipe() {
        Ok((r, w)) => (std::fs::File::from(r), w),
        Err(e) => {
            run.output = format!("cannot create a pipe: {e}");
            return run;
        }
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => {
            run.output = format!("cannot create a pipe: {e}");
            return run;
        }
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        // Its own process group, so a timeout kills what it started too.
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            run.output = format!("cannot run sh: {e}");
            return run;
        }
    };
    // Our copies of the write ends went into `cmd`; drop it so the reader
    // sees end-of-file when the command's side closes.
    drop(cmd);
    let collector = std::thread::spawn(move || tail_of(reader));
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut status = None;
    let mut killed_at: Option<Instant> = None;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => {
                status = Some(s);
                break;
            }
            Ok(None) => {}
            Err(_) => break,
        }
        let elapsed = started.elapsed();
        match killed_at {
            None if elapsed >= timeout => {
                run.timed_out = true;
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
                killed_at = Some(Instant::now());
            }
            Some(t) if t.elapsed() >= KILL_GRACE => {
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if run.timed_out {
        // Children that outlived the shell would keep the pipe open.
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    }
    run.output = collector.join().unwrap_or_default();
    run.seconds = started.elapsed().as_secs_f64();
    if let Some(s) = status {
        run.exit_code = s.code().or_else(|| s.signal().map(|n| 128 + n));
        run.ok = s.success() && !run.timed_out;
    }
    tracing::info!(
        hook = %run.hook,
        command = %run.command,
        ok = run.ok,
        exit_code = ?run.exit_code,
        seconds = run.seconds,
        output = %run.output,
        "hook ran"
    );
    run
}

/// Reads `r` to the end, keeping the last [`OUTPUT_TAIL`] bytes.
fn tail_of(mut r: impl Read) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * OUTPUT_TAIL {
                    kept.drain(..kept.len() - OUTPUT_TAIL);
                }
            }
        }
    }
    if kept.len() > OUTPUT_TAIL {
        kept.drain(..kept.len() - OUTPUT_TAIL);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_exit_code_and_environment_are_captured() {
        let r = run_hook(
            "app.before",
            "echo out; echo err >&2; echo $OPC_PART; exit 3",
            &[("OPC_PART", "app")],
            Duration::from_secs(10),
        );
        assert!(!r.ok);
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.output, "out\nerr\napp\n");
        assert!(
            r.failure().contains("exited with code 3: app"),
            "{}",
            r.failure()
        );
        let ok = run_hook("x", "true", &[], Duration::from_secs(10));
        assert!(ok.ok && ok.exit_code == Some(0));
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed_with_its_children() {
        let t = Instant::now();
        let r = run_hook(
            "slow",
            "sleep 30 & sleep 30; echo never",
            &[],
            Duration::from_millis(300),
        );
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(r.timed_out && !r.ok);
        assert!(r.failure().contains("timed out"), "{}", r.failure());
        assert!(!r.output.contains("never"));
    }

    #[test]
    fn long_output_keeps_its_end() {
        let r = run_hook(
            "big",
            "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done",
            &[],
            Duration::from_secs(20),
        );
        assert!(r.ok);
        assert!(r.output.len() <= OUTPUT_TAIL);
        assert!(r.output.ends_with("line-2999\n"));
    }
}
