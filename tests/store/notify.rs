//! Notifications delivered to real peers on 127.0.0.1: a Python
//! `http.server` standing in for Slack and a generic webhook, and Python's
//! `aiosmtpd` as the SMTP server (installed by `.ci/run`). Unreachable and
//! silent peers give failure outcomes after bounded retries, never panics.

use std::time::{Duration, Instant};

use opc_store::notify::{
    notify, Channel, EmailSettings, Event, Notifiers, NotifyError, Outcome, RetryPolicy,
    SlackSettings, WebhookSettings,
};
use opc_store::profile::{notifiers_with_env, Config};
use serde_json::Value;

use crate::peers::{Peer, HTTP_PEER, SMTP_PEER};

fn quick() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
    }
}

fn success() -> Event {
    let mut e = Event::new(Outcome::Success, "staging", "full");
    e.host = "web-7".into();
    e.snapshot_id = Some("3fa2c9d1".into());
    e.size = 3 * 1024 * 1024;
    e.bytes_added = 512 * 1024;
    e.duration_secs = 75.0;
    e
}

fn failure() -> Event {
    let mut e = Event::new(Outcome::Failure, "staging", "db");
    e.host = "web-7".into();
    e.duration_secs = 0.4;
    e.error = Some("components.db.paths: /srv/db does not exist".into());
    e.log_path = Some("/var/log/opc-backup.log".into());
    e
}

fn slack(url: String) -> SlackSettings {
    SlackSettings {
        webhook_url: url,
        success_channel: "#backups".into(),
        failure_channel: "#alerts".into(),
        on: Outcome::ALL.to_vec(),
    }
}

#[test]
fn slack_gets_successes_and_failures_in_their_channels() {
    let peer = Peer::start(HTTP_PEER, &[]);
    let n = Notifiers {
        slack: Some(slack(peer.url("/services/T0/B0/secret"))),
        retry: quick(),
        ..Notifiers::default()
    };
    for e in [success(), failure()] {
        let out = notify(&n, &e);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].channel, Channel::Slack);
        assert_eq!(out[0].result, Ok(()), "{out:?}");
        assert_eq!(out[0].attempts, 1);
    }
    let got = peer.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["path"], "/services/T0/B0/secret");
    assert_eq!(got[0]["content_type"], "application/json");
    let ok: Value = serde_json::from_str(got[0]["body"].as_str().unwrap()).unwrap();
    let bad: Value = serde_json::from_str(got[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(ok["channel"], "#backups");
    assert_eq!(bad["channel"], "#alerts");
    let text = ok["text"].as_str().unwrap();
    for want in [
        "succeeded",
        "web-7",
        "staging",
        "full",
        "3fa2c9d1",
        "3.0 MiB",
        "512.0 KiB",
        "1m 15s",
    ] {
        assert!(text.contains(want), "success text lacks {want:?}: {text}");
    }
    assert!(!text.contains("Error"), "{text}");
    let text = bad["text"].as_str().unwrap();
    for want in [
        "FAILED",
        "web-7",
        "staging",
        "db",
        "/srv/db does not exist",
        "/var/log/opc-backup.log",
        "0.4s",
    ] {
        assert!(text.contains(want), "failure text lacks {want:?}: {text}");
    }
    assert_eq!(bad["attachments"][0]["color"], "danger");
}

#[test]
fn the_generic_webhook_gets_the_event_as_json_and_filters_apply() {
    let peer = Peer::start(HTTP_PEER, &[]);
    let n = Notifiers {
        webhook: Some(WebhookSettings {
            url: peer.url("/hook"),
            on: vec![Outcome::Failure],
        }),
        retry: quick(),
        ..Notifiers::default()
    };
    assert!(notify(&n, &success()).is_empty(), "success is filtered out");
    let e = failure();
    let out = notify(&n, &e);
    assert_eq!(out.len(), 1);
    assert!(out[0].ok(), "{out:?}");
    let got = peer.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let body: Value = serde_json::from_str(got[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["outcome"], "failure");
    assert_eq!(body["type"], "db");
    assert_eq!(body["log_path"], "/var/log/opc-backup.log");
    let back: Event = serde_json::from_value(body).unwrap();
    assert_eq!(back, e);
}

#[test]
fn a_server_error_is_retried_until_it_succeeds() {
    let peer = Peer::start(HTTP_PEER, &["503"]);
    let n = Notifiers {
        webhook: Some(WebhookSettings {
            url: peer.url("/hook"),
            on: Outcome::ALL.to_vec(),
        }),
        retry: quick(),
        ..Notifiers::default()
    };
    let out = notify(&n, &success());
    assert!(out[0].ok(), "{out:?}");
    assert_eq!(out[0].attempts, 2);
    assert_eq!(peer.received().len(), 2);
}

#[test]
fn a_rejected_webhook_is_not_retried_and_its_secret_path_is_not_shown() {
    let peer = Peer::start(HTTP_PEER, &["404", "404", "404"]);
    let n = Notifiers {
        slack: Some(slack(peer.url("/services/T0/B0/secret"))),
        retry: quick(),
        ..Notifiers::default()
    };
    let out = notify(&n, &failure());
    assert_eq!(out[0].attempts, 1, "{out:?}");
    match &out[0].result {
        Err(e @ NotifyError::Status { status: 404, .. }) => {
            assert!(!e.to_string().contains("secret"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unreachable_webhook_fails_after_bounded_retries() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: connections are refused
    let n = Notifiers {
        slack: Some(slack(format!("http://127.0.0.1:{port}/services/x"))),
        webhook: Some(WebhookSettings {
            url: format!("http://127.0.0.1:{port}/hook"),
            on: Outcome::ALL.to_vec(),
        }),
        retry: quick(),
        ..Notifiers::default()
    };
    let t = Instant::now();
    let out = notify(&n, &failure());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(out.len(), 2);
    for o in &out {
        assert_eq!(o.attempts, 3, "{o:?}");
        assert!(matches!(o.result, Err(NotifyError::Http { .. })), "{o:?}");
    }
}

#[test]
fn a_silent_server_is_given_up_on_within_the_time_bound() {
    // Accepts connections (the kernel does) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let retry = RetryPolicy {
        attempts: 2,
        backoff: Duration::from_millis(100),
        timeout: Duration::from_millis(400),
    };
    let n = Notifiers {
        webhook: Some(WebhookSettings {
            url: format!("http://127.0.0.1:{port}/hook"),
            on: Outcome::ALL.to_vec(),
        }),
        retry,
        ..Notifiers::default()
    };
    let t = Instant::now();
    let out = notify(&n, &success());
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(800), "{took:?}");
    assert!(
        took < retry.max_total() + Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(out[0].attempts, 2);
    assert!(
        matches!(out[0].result, Err(NotifyError::Http { .. })),
        "{out:?}"
    );
    drop(silent);
}

fn smtp_config(port: u16, extra: &str) -> Config {
    let yaml = format!(
        "components:\n  db: {{ paths: [/srv/db] }}\nnotifications:\n  email:\n    enabled: true\n    smtp_host: 127.0.0.1\n    smtp_port: {port}\n    starttls: false\n    username: backups@example.com\n    password: \"${{EMAIL_PASSWORD}}\"\n    recipients: [admin@example.com, oncall@example.com]\n{extra}"
    );
    let env = |k: &str| (k == "EMAIL_PASSWORD").then(|| "s3cret".to_string());
    Config::parse(&yaml, "test.yml", &env).unwrap()
}

fn sent_email(n: &Notifiers, e: &Event) -> Vec<opc_store::notify::NotifyOutcome> {
    let mut n = n.clone();
    n.retry = quick();
    notify(&n, e)
}

#[test]
fn email_is_delivered_over_smtp_with_auth() {
    let peer = Peer::start(SMTP_PEER, &[]);
    let cfg = smtp_config(peer.port, "");
    let n = notifiers_with_env(&cfg, &|_| None);
    // Default filter: warnings and failures only.
    assert!(sent_email(&n, &success()).is_empty());
    let out = sent_email(&n, &failure());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].channel, Channel::Email);
    assert!(out[0].ok(), "{out:?}");
    let got = peer.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(m["from"], "backups@example.com");
    assert_eq!(
        m["to"],
        serde_json::json!(["admin@example.com", "oncall@example.com"])
    );
    assert_eq!(m["login"], "backups@example.com");
    let data = m["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: [opc-store] FAILURE: db backup on web-7 (staging)"),
        "{data}"
    );
    for want in [
        "Error: components.db.paths: /srv/db does not exist",
        "Log: /var/log/opc-backup.log",
        "Host: web-7",
        "Environment: staging",
        "Type: db",
    ] {
        assert!(data.contains(want), "mail lacks {want:?}: {data}");
    }
}

#[test]
fn email_with_a_wrong_password_fails_without_retrying() {
    let peer = Peer::start(SMTP_PEER, &[]);
    let cfg = smtp_config(peer.port, "");
    let mut n = notifiers_with_env(&cfg, &|_| None);
    n.email.as_mut().unwrap().password = "wrong".into();
    let out = sent_email(&n, &failure());
    assert_eq!(out[0].attempts, 1, "{out:?}");
    assert!(
        matches!(
            &out[0].result,
            Err(NotifyError::Smtp {
                permanent: true,
                ..
            })
        ),
        "{out:?}"
    );
    assert!(peer.received().is_empty());
}

#[test]
fn email_requires_tls_unless_told_otherwise() {
    let peer = Peer::start(SMTP_PEER, &[]);
    let n = Notifiers {
        email: Some(EmailSettings {
            smtp_host: "127.0.0.1".into(),
            smtp_port: peer.port,
            starttls: true,
            username: "backups@example.com".into(),
            password: "s3cret".into(),
            from: String::new(),
            recipients: vec!["admin@example.com".into()],
            on: Outcome::ALL.to_vec(),
        }),
        ..Notifiers::default()
    };
    let out = sent_email(&n, &success());
    assert!(
        matches!(&out[0].result, Err(NotifyError::Smtp { .. })),
        "a server without STARTTLS must be refused: {out:?}"
    );
    assert!(peer.received().is_empty(), "nothing sent in clear text");
}
