//! The layer rules of docs/ARCHITECTURE.md, checked on the source text:
//! a module may `use` only the layers below it, and component names of
//! One-Place-Chat appear only in `profile`, `demo` and `cli`.

use std::path::{Path, PathBuf};

/// Modules usable from every layer.
const LEAVES: &[&str] = &[
    "error", "id", "crypto", "chunker", "compress", "lanes", "util", "hostname",
];

/// Each layer with the layers (besides the leaves) it may use.
const LAYERS: &[(&str, &[&str])] = &[
    ("backend", &[]),
    ("notify", &[]),
    ("repo", &["backend"]),
    ("snapshot", &["backend", "repo"]),
    ("source", &["snapshot"]),
    ("pipeline", &["backend", "repo", "snapshot", "source"]),
    (
        "ops",
        &["backend", "repo", "snapshot", "source", "pipeline"],
    ),
    (
        "profile",
        &[
            "backend", "repo", "snapshot", "source", "pipeline", "ops", "notify",
        ],
    ),
    (
        "demo",
        &[
            "backend", "repo", "snapshot", "source", "pipeline", "ops", "notify", "profile",
        ],
    ),
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `crate::<module>` a file names.
fn crate_refs(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .map(|(i, _)| {
            text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn layers_depend_downward_only() {
    let mut bad = Vec::new();
    for (layer, allowed) in LAYERS {
        for f in rust_files(&src().join(layer)) {
            let text = std::fs::read_to_string(&f).unwrap();
            for m in crate_refs(&text) {
                let ok =
                    m == *layer || LEAVES.contains(&m.as_str()) || allowed.contains(&m.as_str());
                if !ok {
                    bad.push(format!("{} uses crate::{m}", f.display()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn the_store_never_names_a_component() {
    let store_dirs = [
        "backend", "repo", "snapshot", "source", "pipeline", "ops", "crypto", "notify",
    ];
    let mut files: Vec<PathBuf> = store_dirs
        .iter()
        .flat_map(|d| rust_files(&src().join(d)))
        .collect();
    files.extend(
        ["chunker.rs", "compress.rs", "error.rs", "id.rs", "util.rs"].map(|f| src().join(f)),
    );
    let mut bad = Vec::new();
    for f in files {
        // `application/json` is a media type, not the component.
        let text = std::fs::read_to_string(&f)
            .unwrap()
            .to_lowercase()
            .replace("application/json", "");
        for word in [
            "chromadb",
            "application",
            "volumes",
            "prometheus",
            "grafana",
        ] {
            if text.contains(word) {
                bad.push(format!("{} mentions {word}", f.display()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "component knowledge below profile:\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_the_cli_prints() {
    let mut bad = Vec::new();
    for f in rust_files(&src()) {
        if f.starts_with(src().join("cli")) || f.ends_with("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for pat in ["println!", "eprintln!", "print!(", "eprint!("] {
            if text.contains(pat) {
                bad.push(format!("{} uses {pat}", f.display()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "printing below the CLI:\n{}",
        bad.join("\n")
    );
}
