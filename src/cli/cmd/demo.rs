//! `opc-store demo`.

use anyhow::{Context, Result};
use opc_store::util::human_bytes;

use crate::cli::args::{DemoArgs, Global};
use crate::cli::progress::Bar;
use crate::cli::{exit, print_json};

/// Runs the demo in a temporary folder (or `--dir`) and prints the report.
pub fn run(g: &Global, a: &DemoArgs) -> Result<u8> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("opc-store-demo-")
                .tempdir()
                .context("creating a temporary folder")?;
            tmp.path().to_path_buf()
        }
    };
    if !g.quiet && !g.json {
        println!("opc-store demo in {}", dir.display());
    }
    let bar = Bar::new(true, "");
    let report = opc_store::demo::run(&dir, a.scale, &bar).context("running the demo")?;
    if g.json {
        print_json(&report)?;
        return Ok(exit::OK);
    }
    for s in &report.steps {
        println!("  {:<30} {:>6.2}s  {}", s.what, s.seconds, s.detail);
    }
    println!();
    println!(
        "data set:                     {}",
        human_bytes(report.data_bytes)
    );
    println!(
        "first snapshot stored:        {}",
        human_bytes(report.first_stored)
    );
    println!(
        "a day later, files touched:   {}, stored anew: {} ({:.1}% of the touched bytes)",
        human_bytes(report.changed_file_bytes),
        human_bytes(report.second_stored),
        100.0 * report.second_stored as f64 / report.changed_file_bytes.max(1) as f64
    );
    println!("logical / stored (2 snapshots): {:.2}x", report.total_ratio);
    println!(
        "restored chromadb: {} files verified against the source (byte for byte; databases row for row)",
        report.verified_files
    );
    if a.dir.is_some() {
        println!("kept in {}", dir.display());
    }
    Ok(exit::OK)
}
