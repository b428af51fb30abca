//! The local cache folder: the SQLite index and a pin of the repository's
//! identity. It lives outside the repository on purpose: the index holds
//! every blob's exact plaintext length, which the encrypted pack trailers
//! and padding exist to hide from whoever holds the storage.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::RepoMarker;
use crate::error::{Error, Result};

/// The cache root: `OPC_CACHE_DIR`, else `$XDG_CACHE_HOME/opc-store`, else
/// `$HOME/.cache/opc-store`, else `/var/cache/opc-store`.
pub fn cache_root() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("OPC_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join("opc-store")))
        .or_else(|| env("HOME").map(|p| p.join(".cache/opc-store")))
        .unwrap_or_else(|| PathBuf::from("/var/cache/opc-store"))
}

#[derive(Serialize, Deserialize)]
struct Pin {
    id: String,
    encryption: String,
}

/// Creates `<root>/<repo id>/` (0700) and checks the pin recorded there at
/// the first open: a repository that was encrypted and now claims not to
/// be was replaced by whoever holds the storage, and writing to it would
/// put the next backups in the clear.
pub fn prepare(root: &Path, marker: &RepoMarker) -> Result<PathBuf> {
    let dir = root.join(&marker.id);
    crate::backend::LocalBackend::create_dir(&dir).map_err(|e| {
        Error::Invalid(format!(
            "cannot use the cache folder {} ({e}); set OPC_CACHE_DIR or --cache-dir to a folder this user can write",
            dir.display()
        ))
    })?;
    let pin_path = dir.join("pin.json");
    match std::fs::read(&pin_path) {
        Ok(b) => {
            let pin: Pin = serde_json::from_slice(&b).map_err(|e| {
                Error::corrupt(format!("cache pin {}", pin_path.display()), e.to_string())
            })?;
            if pin.encryption != "none" && marker.encryption == "none" {
                return Err(Error::Downgrade(marker.id.clone()));
            }
        }
        Err(_) => {
            let pin = Pin {
                id: marker.id.clone(),
                encryption: marker.encryption.clone(),
            };
            let tmp = dir.join("pin.json.tmp");
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(&serde_json::to_vec(&pin).expect("pin serializes"))?;
                f.sync_all()?;
                std::fs::rename(&tmp, &pin_path)
            };
            write().map_err(|e| Error::io("writing", &pin_path, e))?;
        }
    }
    Ok(dir)
}
