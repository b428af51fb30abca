//! Notifications about unattended runs: Slack incoming webhooks, e-mail over
//! SMTP and a generic JSON webhook.
//!
//! This layer knows nothing of the configuration file: it takes plain
//! settings ([`Notifiers`]), which `profile::notifiers` builds from
//! `backup-config.yml`. [`notify`] never fails its caller: every notifier is
//! tried a bounded number of times ([`RetryPolicy`]) and each outcome,
//! success or failure, is returned and logged with `tracing`. A notifier that
//! fails never fails the backup.

mod email;
mod http;
mod message;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use message::{email_body, email_subject, slack_payload, summary_lines};

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The snapshot was taken and everything went well.
    Success,
    /// The snapshot was taken, but something needs attention (files that
    /// could not be read, retention not applied, ...).
    Warning,
    /// No snapshot was taken, or the run failed after taking it.
    Failure,
}

impl Outcome {
    /// Every outcome, the default filter of Slack and the generic webhook.
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Warning, Outcome::Failure];

    /// `success`, `warning` or `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Warning => "warning",
            Outcome::Failure => "failure",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened in one run; the generic webhook receives it as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// How the run ended.
    pub outcome: Outcome,
    /// The host that ran the backup.
    pub host: String,
    /// Deployment environment (`production`, `staging`, ...).
    pub environment: String,
    /// Snapshot type (`full` or a component name).
    #[serde(rename = "type")]
    pub kind: String,
    /// Id of the snapshot taken, if one was.
    pub snapshot_id: Option<String>,
    /// Bytes newly stored in the repository by this run.
    pub bytes_added: u64,
    /// Size of the data captured by the snapshot.
    pub size: u64,
    /// How long the run took, in seconds.
    pub duration_secs: f64,
    /// For a failure, the error; for a warning, what needs attention.
    pub error: Option<String>,
    /// Where the run's log is, to be named in failure messages.
    pub log_path: Option<String>,
    /// When the run ended (RFC 3339, UTC).
    pub time: chrono::DateTime<chrono::Utc>,
}

impl Event {
    /// An event for this host at the current time, with nothing measured yet.
    pub fn new(outcome: Outcome, environment: &str, kind: &str) -> Event {
        Event {
            outcome,
            host: crate::hostname(),
            environment: environment.to_string(),
            kind: kind.to_string(),
            snapshot_id: None,
            bytes_added: 0,
            size: 0,
            duration_secs: 0.0,
            error: None,
            log_path: None,
            time: chrono::Utc::now(),
        }
    }
}

/// A Slack incoming webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackSettings {
    /// The incoming-webhook URL (a secret: it is never logged in full).
    pub webhook_url: String,
    /// Channel for successes, e.g. `#backups`.
    pub success_channel: String,
    /// Channel for warnings and failures, e.g. `#alerts`.
    pub failure_channel: String,
    /// Outcomes that are sent.
    pub on: Vec<Outcome>,
}

impl SlackSettings {
    /// The channel an outcome goes to: successes to the success channel,
    /// warnings and failures to the failure channel.
    pub fn channel_for(&self, outcome: Outcome) -> &str {
        match outcome {
            Outcome::Success => &self.success_channel,
            Outcome::Warning | Outcome::Failure => &self.failure_channel,
        }
    }
}

/// E-mail over SMTP.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailSettings {
    /// SMTP server name.
    pub smtp_host: String,
    /// SMTP port (587 submission with STARTTLS, 465 implicit TLS, 25 relay).
    pub smtp_port: u16,
    /// Require TLS: STARTTLS, or implicit TLS on port 465. `false` sends in
    /// clear text, for a relay on the local host only.
    pub starttls: bool,
    /// AUTH user name; no AUTH when empty.
    pub username: String,
    /// AUTH password.
    pub password: String,
    /// Sender address.
    pub from: String,
    /// Recipient addresses.
    pub recipients: Vec<String>,
    /// Outcomes that are sent.
    pub on: Vec<Outcome>,
}

/// A generic webhook: the [`Event`] is POSTed as JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookSettings {
    /// Where to POST.
    pub url: String,
    /// Outcomes that are sent.
    pub on: Vec<Outcome>,
}

/// How often and how long a notifier is tried.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Pause after the first failed attempt; doubled after each further one.
    pub backoff: Duration,
    /// Bound of one attempt (connect, send, answer).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 1 s then 2 s apart, 10 s each: at most 33 s per notifier.
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The longest a notifier can take under this policy (attempts, their
    /// timeouts and the pauses between them). Notifiers run in parallel, so
    /// this also bounds [`notify`].
    pub fn max_total(&self) -> Duration {
        let attempts = self.attempts.max(1);
        let pauses: Duration = (0..attempts - 1)
            .map(|i| self.backoff.saturating_mul(1 << i.min(16)))
            .sum();
        self.timeout.saturating_mul(attempts) + pauses
    }
}

/// Every configured notifier; `None` means off.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notifiers {
    /// Slack incoming webhook.
    pub slack: Option<SlackSettings>,
    /// E-mail.
    pub email: Option<EmailSettings>,
    /// Generic JSON webhook.
    pub webhook: Option<WebhookSettings>,
    /// Retries, shared by all notifiers.
    pub retry: RetryPolicy,
}

impl Notifiers {
    /// True when no notifier is configured.
    pub fn is_empty(&self) -> bool {
        self.slack.is_none() && self.email.is_none() && self.webhook.is_none()
    }
}

/// Which notifier an outcome is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Slack incoming webhook.
    Slack,
    /// E-mail over SMTP.
    Email,
    /// Generic JSON webhook.
    Webhook,
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Channel::Slack => "slack",
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        })
    }
}

/// Why a notification could not be delivered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotifyError {
    /// The HTTP request did not get an answer (connection refused, timeout,
    /// TLS, DNS).
    #[error("POST to {url} failed: {cause}")]
    Http {
        /// The URL without its path (webhook paths are secrets).
        url: String,
        /// What went wrong.
        cause: String,
    },
    /// The HTTP server answered with an error status.
    #[error("POST to {url} answered HTTP {status}: {body}")]
    Status {
        /// The URL without its path.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The SMTP exchange failed.
    #[error("sending mail through {server} failed: {cause}")]
    Smtp {
        /// `host:port`.
        server: String,
        /// What went wrong.
        cause: String,
        /// The server refused for good (5xx): retrying cannot help.
        permanent: bool,
    },
    /// The settings cannot work (bad address, no recipient, bad URL).
    #[error("{0}")]
    Settings(String),
}

impl NotifyError {
    /// Whether another attempt may succeed: network errors, timeouts, HTTP
    /// 408/429/5xx and temporary SMTP errors are; settings errors, other
    /// HTTP 4xx and permanent SMTP refusals are not.
    pub fn is_transient(&self) -> bool {
        match self {
            NotifyError::Http { .. } => true,
            NotifyError::Status { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            NotifyError::Smtp { permanent, .. } => !permanent,
            NotifyError::Settings(_) => false,
        }
    }
}

/// The result of one notifier for one event.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifyOutcome {
    /// Which notifier.
    pub channel: Channel,
    /// Attempts made (1 when the first one succeeded).
    pub attempts: u32,
    /// Delivered, or the last error.
    pub result: Result<(), NotifyError>,
}

impl NotifyOutcome {
    /// True when the notification was delivered.
    pub fn ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// Sends `event` through every notifier whose filter (`on`) includes its
/// outcome, in parallel, each with bounded retries. Never fails and never
/// panics on a delivery error: the outcomes of the notifiers that were
/// tried are returned (skipped ones are absent) and logged with `tracing`.
pub fn notify(n: &Notifiers, event: &Event) -> Vec<NotifyOutcome> {
    type Job<'a> = (
        Channel,
        Box<dyn Fn() -> Result<(), NotifyError> + Send + Sync + 'a>,
    );
    let mut jobs: Vec<Job> = Vec::new();
    let policy = n.retry;
    if let Some(s) = n.slack.as_ref().filter(|s| s.on.contains(&event.outcome)) {
        jobs.push((
            Channel::Slack,
            Box::new(move || {
                let body = serde_json::to_vec(&slack_payload(s, event)).expect("JSON of a Value");
                http::post_json(&s.webhook_url, &body, policy.timeout)
            }),
        ));
    }
    if let Some(s) = n.email.as_ref().filter(|s| s.on.contains(&event.outcome)) {
        jobs.push((
            Channel::Email,
            Box::new(move || email::send(s, event, policy.timeout)),
        ));
    }
    if let Some(s) = n.webhook.as_ref().filter(|s| s.on.contains(&event.outcome)) {
        jobs.push((
            Channel::Webhook,
            Box::new(move || {
                let body = serde_json::to_vec(event).expect("JSON of an event");
                http::post_json(&s.url, &body, policy.timeout)
            }),
        ));
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(channel, job)| {
                let channel = *channel;
                (
                    channel,
                    scope.spawn(move || with_retries(channel, policy, job)),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(channel, h)| {
                h.join().unwrap_or_else(|_| NotifyOutcome {
                    channel,
                    attempts: 1,
                    result: Err(NotifyError::Settings(format!(
                        "{channel} notifier panicked"
                    ))),
                })
            })
            .collect()
    })
}

fn with_retries(
    channel: Channel,
    policy: RetryPolicy,
    job: &dyn Fn() -> Result<(), NotifyError>,
) -> NotifyOutcome {
    let attempts = policy.attempts.max(1);
    let mut pause = policy.backoff;
    let started = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        match job() {
            Ok(()) => {
                tracing::info!(notifier = %channel, attempts = n, "notification sent");
                return NotifyOutcome {
                    channel,
                    attempts: n,
                    result: Ok(()),
                };
            }
            Err(e) => {
                let last = n >= attempts || !e.is_transient();
                tracing::warn!(
                    notifier = %channel,
                    attempt = n,
                    of = attempts,
                    giving_up = last,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    error = %e,
                    "notification failed"
                );
                if last {
                    return NotifyOutcome {
                        channel,
                        attempts: n,
                        result: Err(e),
                    };
                }
                std::thread::sleep(pause);
                pause = pause.saturating_mul(2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_bound_adds_timeouts_and_pauses() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_total(), Duration::from_secs(33));
        let one = RetryPolicy { attempts: 0, ..p };
        assert_eq!(one.max_total(), Duration::from_secs(10));
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let policy = RetryPolicy {
            attempts: 5,
            backoff: Duration::from_millis(1),
            timeout: Duration::from_millis(1),
        };
        let out = with_retries(Channel::Webhook, policy, &|| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(NotifyError::Status {
                url: "http://x".into(),
                status: 404,
                body: String::new(),
            })
        });
        assert_eq!(out.attempts, 1);
        assert_eq!(calls.into_inner(), 1);
        let out = with_retries(Channel::Webhook, policy, &|| {
            Err(NotifyError::Status {
                url: "http://x".into(),
                status: 503,
                body: String::new(),
            })
        });
        assert_eq!(out.attempts, 5);
    }

    #[test]
    fn nothing_is_sent_when_the_filter_excludes_the_outcome() {
        let n = Notifiers {
            webhook: Some(WebhookSettings {
                url: "http://127.0.0.1:1/".into(),
                on: vec![Outcome::Failure],
            }),
            ..Notifiers::default()
        };
        let e = Event::new(Outcome::Success, "test", "full");
        assert!(notify(&n, &e).is_empty());
    }
}
