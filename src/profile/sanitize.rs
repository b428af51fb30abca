//! The `sanitize:` sections of `backup-config.yml` (top level and per
//! component), merged into the rules `ops` applies. See `docs/CONFIG.md`.

use serde::Deserialize;

use crate::error::Result;
use crate::source::sanitize::{EnvFiles, SanitizeRules, Sanitizer};

/// A `sanitize:` section. Lists add to the built-in defaults (and a
/// component's lists to the top-level ones); `keep` takes files out of
/// every rule.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SanitizeConfig {
    /// On unless set to `false` (a component's setting wins).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// More name or path patterns of files to leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Patterns of files stored as they are (never excluded or redacted).
    #[serde(default)]
    pub keep: Vec<String>,
    /// More key-name globs whose values are redacted (case-insensitive).
    #[serde(default)]
    pub redact_keys: Vec<String>,
    /// Key-name globs never redacted.
    #[serde(default)]
    pub keep_keys: Vec<String>,
    /// `redact` (default) or `exclude` `.env` files.
    #[serde(default)]
    pub env_files: Option<EnvFiles>,
}

/// The rules for a component: `None` when sanitization is off for it.
pub fn rules_for(global: &SanitizeConfig, component: &SanitizeConfig) -> Option<SanitizeRules> {
    if !component.enabled.or(global.enabled).unwrap_or(true) {
        return None;
    }
    let mut r = SanitizeRules::default();
    for c in [global, component] {
        r.exclude.extend(c.exclude.iter().cloned());
        r.keep.extend(c.keep.iter().cloned());
        r.redact_keys.extend(c.redact_keys.iter().cloned());
        r.keep_keys.extend(c.keep_keys.iter().cloned());
    }
    r.env_files = component
        .env_files
        .or(global.env_files)
        .unwrap_or(EnvFiles::Redact);
    Some(r)
}

/// Checks that every pattern compiles.
pub fn validate(global: &SanitizeConfig, component: &SanitizeConfig) -> Result<()> {
    if let Some(r) = rules_for(global, component) {
        Sanitizer::new(&r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_settings_win_and_lists_add_up() {
        let g = SanitizeConfig {
            exclude: vec!["*.secret".into()],
            env_files: Some(EnvFiles::Exclude),
            ..Default::default()
        };
        let c = SanitizeConfig {
            keep: vec!["*.bin".into()],
            ..Default::default()
        };
        let r = rules_for(&g, &c).unwrap();
        assert!(
            r.exclude.contains(&"*.pem".to_string()) && r.exclude.contains(&"*.secret".to_string())
        );
        assert_eq!(r.keep, ["*.bin"]);
        assert_eq!(r.env_files, EnvFiles::Exclude);
        let off = SanitizeConfig {
            enabled: Some(false),
            ..Default::default()
        };
        assert!(rules_for(&g, &off).is_none());
        assert!(rules_for(&off, &c).is_none());
        assert!(rules_for(
            &off,
            &SanitizeConfig {
                enabled: Some(true),
                ..Default::default()
            }
        )
        .is_some());
    }
}
