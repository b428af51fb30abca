//! The only module that knows One-Place-Chat's components: it turns
//! `backup-config.yml` and a snapshot type (`full` or a component name)
//! into generic requests for `ops`.

mod capture;
mod config;
pub mod cron;
pub mod defaults;
mod interpolate;
mod notifications;
pub mod operations;
mod sanitize;
pub mod schedule;
pub mod status;

pub use capture::{check_volume_name, volume_mountpoint, HooksConfig};
pub use config::{Component, Config, EmailConfig, Notifications, SlackConfig, WebhookConfig};
pub use interpolate::interpolate;
pub use notifications::{notifiers, notifiers_with_env};
pub use sanitize::{rules_for, SanitizeConfig};

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::ops::{PartSource, SnapshotRequest};

/// The configuration file to use when none is given: the first of
/// `./backup-config.yml`, `./devops/backup/backup-config.yml` (the legacy
/// location) and `/etc/opc-store/backup-config.yml` that exists.
pub fn default_config_path() -> Option<PathBuf> {
    [
        "backup-config.yml",
        "devops/backup/backup-config.yml",
        "/etc/opc-store/backup-config.yml",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Builds the snapshot request for `kind`: `full` captures every component.
pub fn snapshot_request(cfg: &Config, kind: &str) -> Result<SnapshotRequest> {
    let names: Vec<&str> = if kind == "full" {
        cfg.components.keys().map(String::as_str).collect()
    } else if cfg.components.contains_key(kind) {
        vec![kind]
    } else {
        let known: Vec<_> = cfg.components.keys().map(String::as_str).collect();
        return Err(Error::Config(format!(
            "unknown backup type {kind:?}: use full or one of {}",
            known.join(", ")
        )));
    };
    cfg.check_paths(&names)?;
    let mut parts = Vec::new();
    for n in &names {
        let c = &cfg.components[*n];
        parts.push(PartSource {
            name: n.to_string(),
            paths: cfg.component_paths(n)?,
            excludes: c.exclude.clone(),
            sqlite: cfg.sqlite_capture(n)?,
            hooks: c.hooks.to_set(),
            sanitize: rules_for(&cfg.sanitize, &c.sanitize),
        });
    }
    Ok(SnapshotRequest {
        kind: kind.to_string(),
        parts,
        hooks: cfg.hooks.to_set(),
        tags: Vec::new(),
        retention_days: Some(cfg.retention_days(kind)),
        time: None,
        environment: cfg.environment.clone(),
    })
}
