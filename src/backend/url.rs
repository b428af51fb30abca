//! Repository locations (`/path` or `s3:ENDPOINT/BUCKET/PREFIX`) and the
//! S3 settings that go with them.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The prefix that marks a repository on S3-compatible storage.
pub const S3_SCHEME: &str = "s3:";

/// A parsed `s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    /// `http[s]://HOST[:PORT]`.
    pub endpoint: String,
    /// Host without the port.
    pub host: String,
    /// Bucket name.
    pub bucket: String,
    /// Folder inside the bucket, without leading or trailing `/` (may be
    /// empty: the repository is the whole bucket).
    pub prefix: String,
}

impl S3Url {
    /// Parses a repository URL; the error shows the expected form.
    pub fn parse(text: &str) -> Result<S3Url> {
        let bad = |why: &str| {
            Error::Config(format!(
                "repository {text:?}: {why}; expected s3:https://HOST[:PORT]/BUCKET[/PREFIX], e.g. s3:https://s3.eu-west-1.amazonaws.com/my-backups/opc"
            ))
        };
        let rest = text
            .strip_prefix(S3_SCHEME)
            .ok_or_else(|| bad("it does not start with s3:"))?;
        let (scheme, rest) = rest
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or_else(|| bad("the endpoint must start with http:// or https://"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("no host (credentials do not belong in the URL)"));
        }
        let path = path.trim_matches('/');
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || "-._/".contains(c);
        if !bucket.chars().all(ok) || !prefix.chars().all(ok) || prefix.contains("//") {
            return Err(bad("bucket and prefix use letters, digits, - . _ and /"));
        }
        let host = if let Some(v6) = authority.strip_prefix('[') {
            v6.split(']').next().unwrap_or_default().to_string()
        } else {
            authority.split(':').next().unwrap_or_default().to_string()
        };
        Ok(S3Url {
            endpoint: format!("{scheme}://{authority}"),
            host,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// Path-style addressing (`ENDPOINT/BUCKET/KEY`) for an IP address or
    /// localhost, where bucket subdomains cannot resolve; virtual-host
    /// style (`BUCKET.HOST/KEY`, what AWS expects) for any other host name.
    pub fn default_path_style(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
            || self.host == "localhost"
            || self.host.ends_with(".localhost")
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{S3_SCHEME}{}/{}", self.endpoint, self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// S3 settings: the configuration's `s3:` section, completed from the
/// environment (see [`S3Settings::or_env`]). The endpoint and bucket are
/// in the repository URL.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// Region to sign for (Garage: its `s3_region`); default `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Access key id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Session token of temporary credentials.
    #[serde(default)]
    pub session_token: Option<String>,
    /// Path-style addressing; default: see [`S3Url::default_path_style`].
    #[serde(default)]
    pub path_style: Option<bool>,
    /// Retries of a failed request (`OPC_S3_MAX_RETRIES`, default 5).
    #[serde(default)]
    pub max_retries: Option<usize>,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("path_style", &self.path_style)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl S3Settings {
    /// Fills every unset (or empty) field from the environment:
    /// `AWS_REGION` (else `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (taken only along with
    /// the key it belongs to), `OPC_S3_PATH_STYLE` (`1`/`true` or
    /// `0`/`false`, which overrides the configuration) and
    /// `OPC_S3_MAX_RETRIES`.
    pub fn or_env(mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<S3Settings> {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        let keep = |v: Option<String>| v.filter(|v| !v.is_empty());
        self.region = keep(self.region)
            .or_else(|| get("AWS_REGION"))
            .or_else(|| get("AWS_DEFAULT_REGION"));
        if keep(self.access_key_id.clone()).is_some() {
            self.secret_access_key =
                keep(self.secret_access_key).or_else(|| get("AWS_SECRET_ACCESS_KEY"));
            self.session_token = keep(self.session_token);
        } else {
            self.access_key_id = get("AWS_ACCESS_KEY_ID");
            self.secret_access_key = get("AWS_SECRET_ACCESS_KEY");
            self.session_token = get("AWS_SESSION_TOKEN");
        }
        if let Some(v) = get("OPC_S3_PATH_STYLE") {
            self.path_style = Some(match v.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => {
                    return Err(Error::Config(format!(
                        "OPC_S3_PATH_STYLE={v:?}: use 1 (path-style) or 0 (virtual-host style)"
                    )))
                }
            });
        }
        if let Some(v) = get("OPC_S3_MAX_RETRIES") {
            self.max_retries = Some(v.parse().map_err(|_| {
                Error::Config(format!("OPC_S3_MAX_RETRIES={v:?}: expected a whole number"))
            })?);
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err(Error::Config(
                "S3 credentials are incomplete: give both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or access_key_id and secret_access_key under `s3:` in the configuration)".into(),
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_pick_an_addressing_style() {
        let u = S3Url::parse("s3:http://127.0.0.1:3900/bucket/a/b/").unwrap();
        assert_eq!(u.endpoint, "http://127.0.0.1:3900");
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("bucket", "a/b"));
        assert!(u.default_path_style());
        assert_eq!(u.to_string(), "s3:http://127.0.0.1:3900/bucket/a/b");
        let aws = S3Url::parse("s3:https://s3.eu-west-1.amazonaws.com/b").unwrap();
        assert!(!aws.default_path_style());
        assert_eq!(aws.prefix, "");
        for bad in [
            "s3:ftp://h/b",
            "s3:https://h",
            "s3:https://h/",
            "s3:https://k:s@h/b",
            "s3:https://h/b/x y",
        ] {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_come_from_the_config_first_then_the_environment() {
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("envkey".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_string()),
            "AWS_REGION" => Some("garage".to_string()),
            _ => None,
        };
        let s = S3Settings::default().or_env(&env).unwrap();
        assert_eq!(s.access_key_id.as_deref(), Some("envkey"));
        assert_eq!(s.region.as_deref(), Some("garage"));
        let c = S3Settings {
            access_key_id: Some("cfgkey".into()),
            secret_access_key: Some("cfgsecret".into()),
            ..Default::default()
        }
        .or_env(&env)
        .unwrap();
        assert_eq!(c.secret_access_key.as_deref(), Some("cfgsecret"));
        assert!(!format!("{c:?}").contains("cfgsecret"));
    }
}
