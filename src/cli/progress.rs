//! Progress bars on a terminal (indicatif); silent otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use opc_store::pipeline::Progress;

/// A byte-based bar with a file counter.
pub struct Bar {
    pb: Option<ProgressBar>,
    files: AtomicU64,
}

impl Bar {
    /// A bar when stderr is a terminal and `quiet` is off.
    pub fn new(quiet: bool, verb: &str) -> Bar {
        let pb = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template(&format!(
                    "{verb} {{msg}} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} ETA {{eta}}"
                ))
                .expect("valid template")
                .progress_chars("=> "),
            );
            pb
        });
        Bar {
            pb,
            files: AtomicU64::new(0),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(pb) = &self.pb {
            pb.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn add_total(&self, _files: u64, bytes: u64) {
        if let Some(pb) = &self.pb {
            pb.inc_length(bytes);
        }
    }

    fn advance(&self, files: u64, bytes: u64) {
        if let Some(pb) = &self.pb {
            let n = self.files.fetch_add(files, Ordering::Relaxed) + files;
            pb.set_message(format!("{n} files"));
            pb.inc(bytes);
        }
    }

    fn warn(&self, msg: &str) {
        match &self.pb {
            Some(pb) => pb.println(format!("warning: {msg}")),
            None => eprintln!("warning: {msg}"),
        }
    }

    fn wants_totals(&self) -> bool {
        self.pb.is_some()
    }
}
