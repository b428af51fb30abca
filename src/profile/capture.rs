//! How components are captured and restored beyond their paths: hook
//! commands (`hooks:`), SQLite capture, and Docker volumes named instead of
//! paths (`docker_volumes:`), resolved with `docker volume inspect`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use super::Config;
use crate::error::{Error, Result};
use crate::source::{HookSet, SqliteCapture};

/// `hooks:` of a component or of the whole file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// Before capture, e.g. `docker stop opc-chromadb`.
    #[serde(default)]
    pub before: Option<String>,
    /// After capture, run whenever `before` succeeded.
    #[serde(default)]
    pub after: Option<String>,
    /// When `before`, the capture or `after` failed.
    #[serde(default)]
    pub on_error: Option<String>,
    /// Before an in-place restore.
    #[serde(default)]
    pub before_restore: Option<String>,
    /// After an in-place restore, run whenever `before_restore` succeeded.
    #[serde(default)]
    pub after_restore: Option<String>,
    /// After `after_restore`; its failure fails the restore.
    #[serde(default)]
    pub health_check: Option<String>,
    /// Limit per command (default 5min).
    #[serde(default, deserialize_with = "super::config::duration")]
    pub timeout: Option<Duration>,
}

impl HooksConfig {
    /// The generic hook set.
    pub fn to_set(&self) -> HookSet {
        HookSet {
            before: self.before.clone(),
            after: self.after.clone(),
            on_error: self.on_error.clone(),
            before_restore: self.before_restore.clone(),
            after_restore: self.after_restore.clone(),
            health_check: self.health_check.clone(),
            timeout: self.timeout,
        }
    }
}

/// Docker volume names: what `docker volume create` accepts.
pub fn check_volume_name(name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{name:?} is not a Docker volume name (letters, digits, _ . -)"
        )))
    }
}

/// The mount point of a Docker volume, from `docker volume inspect`.
/// `docker` is the command to run (`OPC_DOCKER`, else `docker` on PATH).
pub fn volume_mountpoint(name: &str) -> Result<PathBuf> {
    let docker = std::env::var("OPC_DOCKER").unwrap_or_else(|_| "docker".into());
    let out = Command::new(&docker)
        .args(["volume", "inspect", "--format", "{{.Mountpoint}}", name])
        .output()
        .map_err(|e| {
            Error::Config(format!(
                "docker_volumes: cannot run `{docker}` to find volume {name}: {e}; install Docker, \
                 or list the volume's folder under paths: (e.g. /var/lib/docker/volumes/{name}/_data)"
            ))
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Config(format!(
            "docker_volumes: `{docker} volume inspect {name}` failed: {}; check the name with \
             `docker volume ls`",
            err.trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(text.trim());
    if !path.is_absolute() {
        return Err(Error::Config(format!(
            "docker_volumes: volume {name} has no local mount point ({:?}); volumes of other \
             drivers cannot be read as files",
            text.trim()
        )));
    }
    Ok(path)
}

impl Config {
    /// Every path of a component: its `paths`, then its Docker volumes'
    /// mount points (which runs `docker`).
    pub fn component_paths(&self, name: &str) -> Result<Vec<PathBuf>> {
        let c = &self.components[name];
        let mut v = c.paths.clone();
        for vol in &c.docker_volumes {
            let p = volume_mountpoint(vol).map_err(|e| match e {
                Error::Config(m) => Error::Config(format!("components.{name}.{m}")),
                other => other,
            })?;
            if !v.contains(&p) {
                v.push(p);
            }
        }
        Ok(v)
    }

    /// How a component's databases are captured.
    pub fn sqlite_capture(&self, name: &str) -> Result<SqliteCapture> {
        let c = &self.components[name];
        SqliteCapture::new(c.sqlite, &c.sqlite_globs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names() {
        assert!(check_volume_name("opc_prometheus").is_ok());
        assert!(check_volume_name("a.b-c_1").is_ok());
        for bad in ["", "x", "-x", "a/b", "a b", "../x"] {
            assert!(check_volume_name(bad).is_err(), "{bad:?}");
        }
    }
}
