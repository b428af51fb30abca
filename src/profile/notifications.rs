//! `notifications:` of the configuration turned into `notify` settings.

use super::config::{Config, Notifications};
use crate::notify::{EmailSettings, Notifiers, SlackSettings, WebhookSettings};

/// Checks what can be checked when the file is loaded: an enabled e-mail
/// needs a server and recipients, an enabled webhook an http(s) URL. A
/// missing Slack webhook is not an error here: it may come from
/// `SLACK_WEBHOOK` when the run starts.
pub(super) fn validate(n: &Notifications) -> Result<(), String> {
    let e = &n.email;
    if e.enabled {
        if e.smtp_host.trim().is_empty() {
            return Err("notifications.email.smtp_host: needed when e-mail is enabled".into());
        }
        if e.recipients.iter().all(|r| r.trim().is_empty()) {
            return Err(
                "notifications.email.recipients: give at least one address when e-mail is enabled"
                    .into(),
            );
        }
    }
    let w = &n.webhook;
    if w.enabled && !(w.url.starts_with("https://") || w.url.starts_with("http://")) {
        return Err(
            "notifications.webhook.url: an https:// (or http://) URL is needed when the webhook is enabled"
                .into(),
        );
    }
    let url = &n.slack.webhook_url;
    let http = url.starts_with("https://") || url.starts_with("http://");
    if !url.is_empty() && !http {
        return Err("notifications.slack.webhook_url: must be an https:// URL".into());
    }
    Ok(())
}

/// The notifiers of a configuration, with `SLACK_WEBHOOK` from the process
/// environment as the Slack webhook when the file gives none.
pub fn notifiers(cfg: &Config) -> Notifiers {
    notifiers_with_env(cfg, &|k| std::env::var(k).ok())
}

/// [`notifiers`] with an explicit environment.
///
/// - Slack: on when `enabled: true`, or when `enabled` is not written and a
///   webhook URL is known (the file's `webhook_url`, else `SLACK_WEBHOOK`),
///   as the legacy script did. `enabled: true` without any URL keeps Slack on
///   with an empty URL, so each run reports the mistake as a failed
///   notification instead of staying silent.
/// - E-mail and the webhook: on when `enabled: true`. The sender is `from`,
///   else the user name.
pub fn notifiers_with_env(cfg: &Config, env: &dyn Fn(&str) -> Option<String>) -> Notifiers {
    let n = &cfg.notifications;
    let s = &n.slack;
    let url = if s.webhook_url.trim().is_empty() {
        env("SLACK_WEBHOOK")
            .map(|u| u.trim().to_string())
            .unwrap_or_default()
    } else {
        s.webhook_url.trim().to_string()
    };
    let slack_on = s.enabled.unwrap_or(!url.is_empty());
    let slack = slack_on.then(|| SlackSettings {
        webhook_url: url,
        success_channel: s.success_channel.clone(),
        failure_channel: s.failure_channel.clone(),
        on: s.on.clone(),
    });
    let e = &n.email;
    let email = e.enabled.then(|| EmailSettings {
        smtp_host: e.smtp_host.trim().to_string(),
        smtp_port: e.smtp_port,
        starttls: e.starttls,
        username: e.username.clone(),
        password: e.password.clone(),
        from: if e.from.trim().is_empty() {
            e.username.trim().to_string()
        } else {
            e.from.trim().to_string()
        },
        recipients: e
            .recipients
            .iter()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect(),
        on: e.on.clone(),
    });
    let w = &n.webhook;
    let webhook = w.enabled.then(|| WebhookSettings {
        url: w.url.trim().to_string(),
        on: w.on.clone(),
    });
    Notifiers {
        slack,
        email,
        webhook,
        ..Notifiers::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Outcome;

    const BASE: &str = "components:\n  db: { paths: [/x] }\n";

    fn load(extra: &str) -> crate::error::Result<Config> {
        Config::parse(&format!("{BASE}{extra}"), "t.yml", &|_| None)
    }

    #[test]
    fn slack_follows_the_legacy_environment_variable() {
        let none = load("").unwrap();
        assert!(notifiers_with_env(&none, &|_| None).is_empty());
        let env =
            |k: &str| (k == "SLACK_WEBHOOK").then(|| "https://hooks.example/T/B/x".to_string());
        let n = notifiers_with_env(&none, &env);
        let s = n.slack.expect("on from SLACK_WEBHOOK");
        assert_eq!(s.webhook_url, "https://hooks.example/T/B/x");
        assert_eq!(
            (s.success_channel.as_str(), s.failure_channel.as_str()),
            ("#backups", "#alerts")
        );
        assert_eq!(s.on, Outcome::ALL.to_vec());
        let off = load("notifications:\n  slack: { enabled: false }\n").unwrap();
        assert!(notifiers_with_env(&off, &env).slack.is_none());
        let own =
            load("notifications:\n  slack: { webhook: 'https://own/x', on: [failure] }\n").unwrap();
        let s = notifiers_with_env(&own, &env).slack.unwrap();
        assert_eq!(
            (s.webhook_url.as_str(), s.on.as_slice()),
            ("https://own/x", &[Outcome::Failure][..])
        );
    }

    #[test]
    fn email_and_webhook_settings_and_defaults() {
        let c = load(
            "notifications:\n  email: { enabled: true, smtp_host: ' mail.example ', smtp_port: 25, username: backups@example.com, password: pw, recipients: [a@example.com], starttls: false }\n  webhook: { enabled: true, url: 'http://127.0.0.1:9/x' }\n",
        )
        .unwrap();
        let n = notifiers_with_env(&c, &|_| None);
        let e = n.email.unwrap();
        assert_eq!(e.smtp_host, "mail.example");
        assert_eq!(e.from, "backups@example.com");
        assert!(!e.starttls);
        assert_eq!(e.on, vec![Outcome::Warning, Outcome::Failure]);
        assert_eq!(n.webhook.unwrap().on, Outcome::ALL.to_vec());
        assert!(
            load("notifications:\n  email: {}\n")
                .unwrap()
                .notifications
                .email
                .starttls
        );
    }

    #[test]
    fn incomplete_enabled_notifiers_are_refused_on_load() {
        for (yaml, key) in [
            ("email: { enabled: true, recipients: [a@b.c] }", "smtp_host"),
            ("email: { enabled: true, smtp_host: h }", "recipients"),
            ("webhook: { enabled: true, url: 'ftp://x' }", "webhook.url"),
            (
                "slack: { webhook_url: 'hooks.example' }",
                "slack.webhook_url",
            ),
            ("slack: { on: [sometimes] }", "on"),
        ] {
            let e = load(&format!("notifications:\n  {yaml}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{yaml}: {e}");
        }
    }
}
