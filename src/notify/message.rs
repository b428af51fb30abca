//! What each message says: the same facts for Slack, e-mail and logs.

use serde_json::{json, Value};

use super::{Event, Outcome, SlackSettings};
use crate::util::human_bytes;

fn headline(e: &Event) -> String {
    let what = match e.outcome {
        Outcome::Success => "succeeded",
        Outcome::Warning => "completed with warnings",
        Outcome::Failure => "FAILED",
    };
    format!(
        "opc-store backup {} {what} on {} ({})",
        e.kind, e.host, e.environment
    )
}

fn duration(secs: f64) -> String {
    let whole = std::time::Duration::from_secs(secs.max(0.0).round() as u64);
    if whole.is_zero() {
        format!("{:.1}s", secs.max(0.0))
    } else {
        humantime::format_duration(whole).to_string()
    }
}

/// The facts of an event as `label: value` pairs, in message order: host,
/// environment, type, snapshot, size, added, duration, then for a warning or
/// failure the error and the log location.
pub fn summary_lines(e: &Event) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("Host", e.host.clone()),
        ("Environment", e.environment.clone()),
        ("Type", e.kind.clone()),
        (
            "Snapshot",
            e.snapshot_id.clone().unwrap_or_else(|| "none".into()),
        ),
        ("Size", human_bytes(e.size)),
        ("Added", human_bytes(e.bytes_added)),
        ("Duration", duration(e.duration_secs)),
    ];
    if e.outcome != Outcome::Success {
        v.push((
            "Error",
            e.error.clone().unwrap_or_else(|| "(not given)".into()),
        ));
        v.push((
            "Log",
            e.log_path.clone().unwrap_or_else(|| "(no log file)".into()),
        ));
    }
    v.push(("Time", e.time.to_rfc3339()));
    v
}

/// The Slack incoming-webhook payload: `channel` chosen by outcome, a plain
/// `text` with every fact (what notifications and old clients show), and an
/// attachment coloured by outcome with the facts as fields.
pub fn slack_payload(s: &SlackSettings, e: &Event) -> Value {
    let (icon, color) = match e.outcome {
        Outcome::Success => (":white_check_mark:", "good"),
        Outcome::Warning => (":warning:", "warning"),
        Outcome::Failure => (":x:", "danger"),
    };
    let lines = summary_lines(e);
    let mut text = format!("{icon} {}", headline(e));
    for (k, v) in &lines {
        text.push_str(&format!("\n*{k}:* {v}"));
    }
    let fields: Vec<Value> = lines
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v, "short": !matches!(*k, "Error" | "Log")}))
        .collect();
    json!({
        "channel": s.channel_for(e.outcome),
        "username": "opc-store",
        "text": text,
        "attachments": [{
            "color": color,
            "fallback": headline(e),
            "fields": fields,
        }],
    })
}

/// `[opc-store] FAILURE: full backup on web-1 (production)`.
pub fn email_subject(e: &Event) -> String {
    format!(
        "[opc-store] {}: {} backup on {} ({})",
        e.outcome.as_str().to_uppercase(),
        e.kind,
        e.host,
        e.environment
    )
}

/// The plain-text body: the headline, then one `Label: value` line per fact.
pub fn email_body(e: &Event) -> String {
    let mut body = headline(e);
    body.push_str("\n\n");
    for (k, v) in summary_lines(e) {
        body.push_str(&format!("{k}: {v}\n"));
    }
    body.push_str(
        "\n-- \nSent by opc-store; settings under notifications: in backup-config.yml.\n",
    );
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_error_and_the_log() {
        let mut e = Event::new(Outcome::Failure, "production", "full");
        e.error = Some("components.db.paths: /x does not exist".into());
        e.log_path = Some("/var/log/opc-backup.log".into());
        let body = email_body(&e);
        assert!(body.contains("Error: components.db.paths"), "{body}");
        assert!(body.contains("Log: /var/log/opc-backup.log"), "{body}");
        let ok = Event::new(Outcome::Success, "production", "full");
        assert!(!email_body(&ok).contains("Error:"));
        assert_eq!(duration(0.3), "0.3s");
        assert_eq!(duration(75.0), "1m 15s");
    }
}
