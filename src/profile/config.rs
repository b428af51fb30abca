//! `backup-config.yml`: schema, loading, validation. See `docs/CONFIG.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::interpolate::interpolate_with;
use crate::error::{Error, Result};
use crate::notify::Outcome;

/// One component: what to capture.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Absolute paths to capture.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Docker volumes captured by name, resolved to their mount points with
    /// `docker volume inspect` when a snapshot starts.
    #[serde(default)]
    pub docker_volumes: Vec<String>,
    /// Exclude patterns (see `docs/CONFIG.md`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Copy SQLite databases through SQLite's backup API (consistent while
    /// written). On by default.
    #[serde(default = "yes")]
    pub sqlite: bool,
    /// Globs of files that are SQLite databases, besides those recognised
    /// by their header.
    #[serde(default)]
    pub sqlite_globs: Vec<String>,
    /// Commands around this component's capture and restore.
    #[serde(default)]
    pub hooks: super::capture::HooksConfig,
    /// Sanitization settings for this component (over the top-level ones).
    #[serde(default)]
    pub sanitize: super::sanitize::SanitizeConfig,
}

/// Slack notification settings (used by scheduled runs).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Send notifications. Unset: on when a webhook URL is known (here or in
    /// `SLACK_WEBHOOK`), like the legacy script.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Incoming-webhook URL (`webhook` is accepted too); `SLACK_WEBHOOK`
    /// from the environment when empty.
    #[serde(default, alias = "webhook")]
    pub webhook_url: String,
    /// Channel for successes.
    #[serde(default = "default_success_channel")]
    pub success_channel: String,
    /// Channel for failures.
    #[serde(default = "default_failure_channel")]
    pub failure_channel: String,
    /// Outcomes sent (default: success, warning, failure).
    #[serde(default = "all_outcomes")]
    pub on: Vec<Outcome>,
}

impl Default for SlackConfig {
    /// The values of an empty section (the serde defaults).
    fn default() -> Self {
        serde_yaml_ng::from_str("{}").expect("every field has a default")
    }
}

fn all_outcomes() -> Vec<Outcome> {
    Outcome::ALL.to_vec()
}
fn problem_outcomes() -> Vec<Outcome> {
    vec![Outcome::Warning, Outcome::Failure]
}
fn yes() -> bool {
    true
}

fn default_success_channel() -> String {
    "#backups".into()
}
fn default_failure_channel() -> String {
    "#alerts".into()
}

/// Email notification settings (used by scheduled runs).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Send notifications.
    #[serde(default)]
    pub enabled: bool,
    /// SMTP server.
    #[serde(default)]
    pub smtp_host: String,
    /// SMTP port (a number, or a string such as `${SMTP_PORT}`).
    #[serde(default = "default_smtp_port", deserialize_with = "number")]
    pub smtp_port: u16,
    /// SMTP user.
    #[serde(default)]
    pub username: String,
    /// SMTP password (use `${EMAIL_PASSWORD}`).
    #[serde(default)]
    pub password: String,
    /// Sender address; the username when empty.
    #[serde(default)]
    pub from: String,
    /// Recipients.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Require TLS (STARTTLS, or implicit TLS on port 465); `false` only
    /// for a relay on the local host.
    #[serde(default = "yes")]
    pub starttls: bool,
    /// Outcomes sent (default: warning, failure).
    #[serde(default = "problem_outcomes")]
    pub on: Vec<Outcome>,
}

impl Default for EmailConfig {
    /// The values of an empty section (the serde defaults).
    fn default() -> Self {
        serde_yaml_ng::from_str("{}").expect("every field has a default")
    }
}

/// Generic webhook: the run's event POSTed as JSON.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Send notifications.
    #[serde(default)]
    pub enabled: bool,
    /// Where to POST.
    #[serde(default)]
    pub url: String,
    /// Outcomes sent (default: success, warning, failure).
    #[serde(default = "all_outcomes")]
    pub on: Vec<Outcome>,
}

impl Default for WebhookConfig {
    /// The values of an empty section (the serde defaults).
    fn default() -> Self {
        serde_yaml_ng::from_str("{}").expect("every field has a default")
    }
}

fn default_smtp_port() -> u16 {
    587
}

/// Notification settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// Slack.
    #[serde(default)]
    pub slack: SlackConfig,
    /// Email.
    #[serde(default)]
    pub email: EmailConfig,
    /// Generic JSON webhook.
    #[serde(default)]
    pub webhook: WebhookConfig,
}

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Repository folder, or `s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]`.
    #[serde(default = "default_repository")]
    pub repository: PathBuf,
    /// S3 settings for an `s3:` repository (credentials, region,
    /// addressing); unset fields come from the `AWS_*` variables.
    #[serde(default)]
    pub s3: Option<crate::backend::S3Settings>,
    /// Deployment environment recorded in snapshots.
    #[serde(default = "default_environment")]
    pub environment: String,
    /// Components by name.
    pub components: BTreeMap<String, Component>,
    /// Retention in days per snapshot type (defaults: full 7, chromadb 3,
    /// application 14, volumes 30).
    #[serde(default)]
    pub retention: BTreeMap<String, u32>,
    /// Cron schedule per snapshot type (defaults: the legacy schedules;
    /// `off` disables one).
    #[serde(default)]
    pub schedules: BTreeMap<String, String>,
    /// Scheduled runs start up to this much later, at random (e.g. `10min`).
    #[serde(default, deserialize_with = "duration")]
    pub schedule_randomized_delay: Option<std::time::Duration>,
    /// Notifications.
    #[serde(default)]
    pub notifications: Notifications,
    /// Unattended runs: log, state and metrics files, prune interval.
    #[serde(default)]
    pub operations: super::operations::Operations,
    /// A second repository `run` copies each new snapshot to (off-site).
    #[serde(default)]
    pub copy_to: Option<super::operations::CopyTo>,
    /// Commands around every snapshot and restore.
    #[serde(default)]
    pub hooks: super::capture::HooksConfig,
    /// Removing secrets from what is stored (on by default).
    #[serde(default)]
    pub sanitize: super::sanitize::SanitizeConfig,
    /// Variables under `notifications` that were unset when the file was
    /// read (expanded to nothing), as messages for `run` to warn about.
    #[serde(skip)]
    pub unset_variables: Vec<String>,
}

/// A number written as a number or as a string: `${VAR}` expands to text,
/// and `smtp_port: ${SMTP_PORT}` must work like `smtp_port: 587`.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText<T> {
    Num(T),
    Text(String),
}

impl<T: std::str::FromStr> NumOrText<T> {
    fn get<E: serde::de::Error>(self) -> Result<T, E> {
        match self {
            NumOrText::Num(n) => Ok(n),
            NumOrText::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| E::custom(format!("expected a whole number, found {s:?}"))),
        }
    }
}

fn number<'de, D: serde::Deserializer<'de>, T: Deserialize<'de> + std::str::FromStr>(
    d: D,
) -> Result<T, D::Error> {
    NumOrText::<T>::deserialize(d)?.get()
}

pub(super) fn duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::time::Duration>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    match text.as_deref().map(str::trim) {
        None | Some("") | Some("0") => Ok(None),
        Some(t) => humantime::parse_duration(t).map(Some).map_err(|e| {
            serde::de::Error::custom(format!("{t:?} is not a duration such as 10min or 1h: {e}"))
        }),
    }
}

fn default_repository() -> PathBuf {
    PathBuf::from(super::defaults::REPOSITORY)
}

fn default_environment() -> String {
    std::env::var("ENVIRONMENT").unwrap_or_else(|_| "production".into())
}

/// Expands variables in every string. Under `notifications`, an unset
/// variable becomes empty and is recorded in `unset`: its secrets are needed
/// only when `run` notifies, and `status` or a restore must not fail for want
/// of `EMAIL_PASSWORD`.
fn expand(
    v: &mut Value,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<()> {
    match v {
        Value::String(s) => {
            let lenient = at.starts_with("notifications.");
            *s = interpolate_with(s, at, env, &mut |e| {
                if lenient {
                    unset.push(e.to_string());
                    Ok(())
                } else {
                    Err(e)
                }
            })?
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand(item, &format!("{at}[{i}]"), env, unset)?;
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = k
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{k:?}"));
                let at = if at.is_empty() {
                    key
                } else {
                    format!("{at}.{key}")
                };
                expand(item, &at, env, unset)?;
            }
        }
        _ => {}
    }
    Ok(())
}

impl Config {
    /// Parses YAML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        let mut v: Value =
            serde_yaml_ng::from_str(text).map_err(|e| Error::Config(format!("{origin}: {e}")))?;
        let mut unset = Vec::new();
        expand(&mut v, "", env, &mut unset)?;
        let mut cfg: Config = serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            Error::Config(format!("{origin}: {path}: {}", e.into_inner()))
        })?;
        cfg.unset_variables = unset;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Reads and parses a file, expanding variables from the process environment.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!("cannot read configuration {}: {e}", path.display()))
        })?;
        Config::parse(&text, &path.display().to_string(), &|k| {
            std::env::var(k).ok()
        })
    }

    fn validate(&self, origin: &str) -> Result<()> {
        if self.components.is_empty() {
            return Err(Error::Config(format!(
                "{origin}: components: at least one component is needed"
            )));
        }
        for (name, c) in &self.components {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok || name == "full" {
                return Err(Error::Config(format!(
                    "{origin}: components.{name}: names use letters, digits, - and _, and `full` is reserved"
                )));
            }
            if c.paths.is_empty() && c.docker_volumes.is_empty() {
                return Err(Error::Config(format!(
                    "{origin}: components.{name}.paths: give at least one path (or docker_volumes)"
                )));
            }
            crate::source::SqliteCapture::new(c.sqlite, &c.sqlite_globs)
                .map_err(|e| Error::Config(format!("{origin}: components.{name}: {e}")))?;
            for v in &c.docker_volumes {
                super::capture::check_volume_name(v).map_err(|e| {
                    Error::Config(format!("{origin}: components.{name}.docker_volumes: {e}"))
                })?;
            }
            for p in &c.paths {
                if !p.is_absolute() {
                    return Err(Error::Config(format!(
                        "{origin}: components.{name}.paths: {} must be absolute",
                        p.display()
                    )));
                }
            }
            crate::source::Excludes::new(&c.exclude)
                .map_err(|e| Error::Config(format!("{origin}: components.{name}.exclude: {e}")))?;
            super::sanitize::validate(&self.sanitize, &c.sanitize)
                .map_err(|e| Error::Config(format!("{origin}: components.{name}: {e}")))?;
        }
        for k in self.retention.keys().chain(self.schedules.keys()) {
            if k != "full" && !self.components.contains_key(k) {
                return Err(Error::Config(format!(
                    "{origin}: {k:?} in retention/schedules is neither `full` nor a component"
                )));
            }
        }
        for k in self.schedules.keys() {
            super::schedule::schedule_for(self, k)
                .map_err(|e| Error::Config(format!("{origin}: {e}")))?;
        }
        super::notifications::validate(&self.notifications)
            .map_err(|e| Error::Config(format!("{origin}: {e}")))?;
        if let Some(c) = &self.copy_to {
            c.validate()
                .map_err(|e| Error::Config(format!("{origin}: {e}")))?;
        }
        let o = &self.operations;
        // Scheduled jobs run from another folder than the one the file was
        // written in: relative paths would land somewhere unexpected.
        for (key, p) in [
            ("log_file", Some(&o.log_file)),
            ("state_file", Some(&o.state_file)),
        ]
        .into_iter()
        .chain([("metrics_file", o.metrics_file.as_ref())])
        {
            if let Some(p) = p.filter(|p| !p.is_absolute()) {
                return Err(Error::Config(format!(
                    "{origin}: operations.{key}: {} must be absolute",
                    p.display()
                )));
            }
        }
        Ok(())
    }

    /// Retention days for a snapshot type.
    pub fn retention_days(&self, kind: &str) -> u32 {
        self.retention
            .get(kind)
            .copied()
            .unwrap_or_else(|| super::defaults::retention_days(kind))
    }

    /// Components checked against the filesystem: each path must exist.
    pub fn check_paths(&self, names: &[&str]) -> Result<()> {
        for n in names {
            let c = &self.components[*n];
            if c.hooks.before.is_some() || self.hooks.before.is_some() {
                // A `before` hook may create or mount it; checked after.
                continue;
            }
            for p in &c.paths {
                if std::fs::symlink_metadata(p).is_err() {
                    return Err(Error::Config(format!(
                        "components.{n}.paths: {} does not exist",
                        p.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_fill_numbers_and_keep_numeric_text() {
        let env = |k: &str| match k {
            "PORT" => Some("2525".to_string()),
            "PW" => Some("12345".to_string()),
            _ => None,
        };
        let yaml = "components:\n  chromadb: { paths: [/x] }\nretention: { full: 9 }\nnotifications:\n  email: { smtp_port: '${PORT}', password: '${PW}' }\n";
        let c = Config::parse(yaml, "t", &env).unwrap();
        assert_eq!(c.notifications.email.smtp_port, 2525);
        assert_eq!(c.notifications.email.password, "12345");
        assert_eq!(c.retention_days("full"), 9);
        let bad = Config::parse(&yaml.replace("${PORT}", "nope"), "t", &env)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("smtp_port"), "{bad}");
    }

    #[test]
    fn unset_notification_secrets_do_not_stop_loading_but_others_do() {
        let yaml = "repository: /r\ncomponents:\n  chromadb: { paths: [/x] }\nnotifications:\n  email: { password: '${EMAIL_PASSWORD}' }\n";
        let c = Config::parse(yaml, "t", &|_| None).unwrap();
        assert_eq!(c.notifications.email.password, "");
        assert_eq!(c.unset_variables.len(), 1);
        assert!(
            c.unset_variables[0].contains("notifications.email.password")
                && c.unset_variables[0].contains("EMAIL_PASSWORD"),
            "{:?}",
            c.unset_variables
        );
        let e = Config::parse(&yaml.replace("/r", "${REPO}"), "t", &|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("repository") && e.contains("REPO"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::parse(
            "components:\n  a: { paths: [/x], exclud: [] }\n",
            "f.yml",
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("f.yml") && e.contains("exclud"), "{e}");
    }
}
