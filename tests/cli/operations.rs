//! `run` (the legacy `scheduled-backup.sh`) and `status`, end to end with
//! real peers on 127.0.0.1: a Python HTTP server receives the Slack JSON,
//! aiosmtpd receives the e-mail, and Prometheus' own Python parser reads the
//! metrics file. Time for `status` is moved with `--now`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use chrono::{Duration, Local};
use predicates::prelude::*;
use serde_json::{json, Value};

use crate::peers::{Peer, HTTP_PEER, SMTP_PEER};
use crate::support::{parse_json, write, Env};

/// A sandbox with two components (`full`, `application` and `chromadb`
/// on their legacy schedules) and the run files under the sandbox.
struct Ops {
    env: Env,
    app: PathBuf,
    log: PathBuf,
    state: PathBuf,
    metrics: PathBuf,
}

fn ops(notifications: Value) -> Ops {
    let env = Env::with_repo();
    let app = env.path("data/app");
    let chroma = env.path("data/chroma");
    write(
        &app.join("conversations/1.json"),
        br#"{"messages": ["hi"]}"#,
    );
    write(&app.join("settings.json"), b"{}");
    write(&chroma.join("chroma.sqlite3"), &vec![7u8; 100_000]);
    let o = Ops {
        app,
        log: env.path("log/opc-backup.log"),
        state: env.path("state/state.json"),
        metrics: env.path("metrics/opc_store.prom"),
        env,
    };
    o.env.config_value(json!({
        "repository": o.env.repo,
        "components": {
            "application": { "paths": [o.app] },
            "chromadb": { "paths": [chroma] },
        },
        "notifications": notifications,
        "operations": {
            "log_file": o.log,
            "state_file": o.state,
            "metrics_file": o.metrics,
        },
    }));
    o
}

impl Ops {
    fn run(&self, args: &[&str], envs: &[(&str, &str)]) -> assert_cmd::assert::Assert {
        let mut c = self.env.cmd();
        c.arg("run").args(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.assert()
    }

    fn log_lines(&self) -> Vec<Value> {
        log_lines(&self.log)
    }

    fn status(&self, now: chrono::DateTime<Local>) -> (i32, Value) {
        let out = self
            .env
            .cmd()
            .args(["status", "--json", "--now", &now.to_rfc3339()])
            .output()
            .unwrap();
        assert!(
            !out.stdout.is_empty(),
            "status printed nothing: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap(), parse_json(&out.stdout))
    }
}

fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each log line is JSON"))
        .collect()
}

fn slack_messages(peer: &Peer) -> Vec<Value> {
    peer.received()
        .iter()
        .map(|r| {
            assert_eq!(r["content_type"], "application/json");
            assert_eq!(r["path"], "/services/T000/B000/secret");
            serde_json::from_str(r["body"].as_str().unwrap()).unwrap()
        })
        .collect()
}

/// `metric name -> type label -> value`, as Prometheus' own text parser
/// (prometheus_client, installed by `.ci/run`) reads the file.
fn parse_metrics(path: &Path) -> BTreeMap<String, BTreeMap<String, f64>> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    assert fam.type == "gauge", fam
    for s in fam.samples:
        out.setdefault(s.name, {})[s.labels.get("type", "")] = s.value
print(json.dumps(out))
"#;
    let out = StdCommand::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "Prometheus' parser rejected the metrics file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn success_and_failure_reach_slack_email_log_state_and_metrics() {
    let slack = Peer::start(HTTP_PEER, &[]);
    let smtp = Peer::start(SMTP_PEER, &[]);
    let o = ops(json!({
        // Slack from the legacy SLACK_WEBHOOK variable: no webhook in the file.
        "slack": { "success_channel": "#backups", "failure_channel": "#alerts" },
        "email": {
            "enabled": true, "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
            "username": "backups@example.com", "password": "${EMAIL_PASSWORD}",
            "recipients": ["admin@example.com"], "starttls": false,
        },
    }));
    let hook = slack.url("/services/T000/B000/secret");
    let envs = [
        ("SLACK_WEBHOOK", hook.as_str()),
        ("EMAIL_PASSWORD", "s3cret"),
        ("ENVIRONMENT", "staging"),
    ];
    let started = Local::now();

    // Success: a snapshot, one Slack message to #backups, no e-mail (the
    // default `on` of e-mail is warnings and failures).
    let out = o.run(&["application", "--json"], &envs).code(0);
    let report = parse_json(&out.get_output().stdout);
    let rec = &report["record"];
    let id = rec["snapshot"].as_str().expect("a snapshot id").to_string();
    assert_eq!(rec["outcome"], "success");
    assert!(rec["bytes_added"].as_u64().unwrap() > 0);
    let listed = o.env.json(&["snapshots"]);
    assert!(
        listed.to_string().contains(&id),
        "the snapshot is in the repository"
    );
    let msgs = slack_messages(&slack);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["channel"], "#backups");
    let text = msgs[0]["text"].as_str().unwrap();
    for fact in [
        "application",
        "staging",
        &id[..8],
        &opc_store::hostname(),
        "succeeded",
    ] {
        assert!(text.contains(fact), "{fact:?} missing from {text}");
    }
    assert!(
        smtp.received().is_empty(),
        "no e-mail for a success by default"
    );

    let lines = o.log_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "application");
    assert_eq!(lines[0]["outcome"], "success");
    assert_eq!(lines[0]["level"], "info");
    assert_eq!(lines[0]["snapshot"], id.as_str());
    assert!(lines[0]["duration_secs"].as_f64().unwrap() > 0.0);
    assert!(lines[0]["bytes_added"].as_u64().unwrap() > 0);
    let logged = chrono::DateTime::parse_from_rfc3339(lines[0]["time"].as_str().unwrap()).unwrap();
    assert!(logged >= started.fixed_offset() - Duration::seconds(1));

    let m = parse_metrics(&o.metrics);
    let last = m["opc_store_last_success_timestamp_seconds"]["application"];
    assert!((last - logged.timestamp() as f64).abs() < 1.0, "{m:?}");
    assert_eq!(m["opc_store_last_run_success"]["application"], 1.0);
    assert_eq!(
        m["opc_store_last_bytes_added"]["application"],
        rec["bytes_added"].as_u64().unwrap() as f64
    );
    assert!(m["opc_store_last_snapshot_size_bytes"]["application"] > 0.0);
    assert!(m["opc_store_repository_size_bytes"][""] > 0.0);
    assert!(m["opc_store_last_duration_seconds"]["application"] > 0.0);

    // Failure: the source path is gone. Slack's #alerts and the mailbox
    // both get the error and the log location.
    std::fs::remove_dir_all(&o.app).unwrap();
    let out = o.run(&["application"], &envs).failure();
    let code = out.get_output().status.code().unwrap();
    assert!(
        ![0, 1, 17].contains(&code),
        "a failed run has a failure code: {code}"
    );
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("data/app"), "{stderr}");

    let msgs = slack_messages(&slack);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[1]["channel"], "#alerts");
    let text = msgs[1]["text"].as_str().unwrap();
    for fact in [
        "FAILED",
        "application",
        "staging",
        "data/app",
        o.log.to_str().unwrap(),
    ] {
        assert!(text.contains(fact), "{fact:?} missing from {text}");
    }
    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["login"], "backups@example.com");
    assert_eq!(mails[0]["to"], json!(["admin@example.com"]));
    let mail = mails[0]["data"].as_str().unwrap();
    assert!(mail.contains("FAILURE: application backup"), "{mail}");
    assert!(mail.contains("data/app"), "{mail}");
    assert!(mail.contains(o.log.to_str().unwrap()), "{mail}");
    assert!(
        !mail.contains("s3cret"),
        "the SMTP password is not in the mail"
    );

    let lines = o.log_lines();
    assert_eq!(lines.len(), 2, "appended, not rewritten");
    assert_eq!(lines[1]["outcome"], "failure");
    assert_eq!(lines[1]["level"], "error");
    assert!(lines[1]["snapshot"].is_null());
    assert!(lines[1]["error"].as_str().unwrap().contains("data/app"));

    let m = parse_metrics(&o.metrics);
    assert_eq!(m["opc_store_last_run_success"]["application"], 0.0);
    assert_eq!(
        m["opc_store_last_success_timestamp_seconds"]["application"], last,
        "the last success stays the earlier run"
    );
    assert!(m["opc_store_last_failure_timestamp_seconds"]["application"] >= last);

    // status reports the failure and exits 17 for monitoring.
    let (code, st) = o.status(Local::now());
    assert_eq!(code, 17, "{st}");
    let app = st["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "application")
        .unwrap();
    assert_eq!(app["failing"], true);
    assert_eq!(app["last_success"]["snapshot"], id.as_str());
    assert!(app["last_failure"]["error"]
        .as_str()
        .unwrap()
        .contains("data/app"));
}

#[test]
fn legacy_variables_pick_type_and_retention_and_old_snapshots_go() {
    let o = ops(json!({}));
    let ago = |days: i64| (Local::now() - Duration::days(days)).to_rfc3339();
    let old = o.env.snapshot(&["application", "--time", &ago(10)]);
    let recent = o.env.snapshot(&["application", "--time", &ago(2)]);
    let chroma = o.env.snapshot(&["chromadb", "--time", &ago(10)]);

    // `scheduled-backup.sh` read BACKUP_TYPE and RETENTION_DAYS.
    let out = o
        .run(
            &["--json"],
            &[("BACKUP_TYPE", "application"), ("RETENTION_DAYS", "5")],
        )
        .code(0);
    let rec = parse_json(&out.get_output().stdout)["record"].clone();
    assert_eq!(rec["type"], "application");
    assert_eq!(rec["forgotten"], 1, "{rec}");
    assert!(
        rec["pruned_bytes"].is_u64(),
        "the first run prunes (none recorded yet): {rec}"
    );
    let ids = o.env.json(&["snapshots"]).to_string();
    let short = |v: &Value| v["id"].as_str().unwrap()[..8].to_string();
    assert!(
        !ids.contains(&short(&old)),
        "the 10-day-old one is forgotten"
    );
    assert!(ids.contains(&short(&recent)));
    assert!(
        ids.contains(&short(&chroma)),
        "other types keep their own retention"
    );

    // Arguments win over the variables; prune waits for prune_every_days.
    let out = o
        .run(
            &["application", "1", "--json"],
            &[("BACKUP_TYPE", "chromadb")],
        )
        .code(0);
    let rec = parse_json(&out.get_output().stdout)["record"].clone();
    assert_eq!(rec["type"], "application");
    assert_eq!(rec["forgotten"], 1, "the 2-day-old one is past 1 day");
    assert!(
        rec["pruned_bytes"].is_null(),
        "no second prune within 7 days: {rec}"
    );

    // The log is opened per run: after logrotate moves it, the next run
    // starts a new file and the rotated one is left alone.
    let rotated = o.log.with_extension("log.1");
    std::fs::rename(&o.log, &rotated).unwrap();
    o.run(&["chromadb"], &[]).code(0);
    assert_eq!(log_lines(&rotated).len(), 2);
    let fresh = o.log_lines();
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0]["type"], "chromadb");

    // --log-file overrides the configuration.
    let other = o.env.path("elsewhere/run.log");
    o.run(
        &["chromadb", "--log-file", other.to_str().unwrap()],
        &[("RETENTION_DAYS", "not-a-number")],
    )
    .failure()
    .stderr(predicate::str::contains("RETENTION_DAYS"));
    o.run(&["chromadb", "--log-file", other.to_str().unwrap()], &[])
        .code(0);
    let elsewhere = log_lines(&other);
    assert_eq!(elsewhere.len(), 2);
    assert_eq!(
        elsewhere[0]["outcome"], "failure",
        "a bad variable is a logged failure"
    );
    assert!(elsewhere[0]["error"]
        .as_str()
        .unwrap()
        .contains("RETENTION_DAYS"));
    assert_eq!(elsewhere[1]["outcome"], "success");
    assert_eq!(o.log_lines().len(), 1);
}

#[test]
fn a_failing_notifier_never_fails_the_backup() {
    let o = ops(json!({
        "webhook": { "enabled": true, "url": "http://127.0.0.1:9/hook" },
    }));
    // Port 9 (discard) is closed on loopback: every attempt is refused.
    let out = o
        .run(
            &["application"],
            &[("SLACK_WEBHOOK", "http://127.0.0.1:9/services/x")],
        )
        .code(0);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("slack notification failed after 3 attempt(s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("webhook notification failed after 3 attempt(s)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("/services/x"),
        "the webhook's secret path is not printed: {stderr}"
    );
    let lines = o.log_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["outcome"], "success");
}

#[test]
fn run_never_prompts_for_a_password() {
    let o = ops(json!({}));
    let out = o
        .env
        .cmd()
        .env_remove("OPC_PASSWORD")
        .args(["run", "application"])
        .write_stdin("")
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("never prompts"), "{stderr}");
    assert_eq!(o.log_lines()[0]["outcome"], "failure");
}

#[test]
fn status_goes_overdue_when_time_passes() {
    let o = ops(json!({}));
    // Nothing ran yet: every scheduled type is overdue.
    let (code, st) = o.status(Local::now());
    assert_eq!(code, 17);
    let kinds: Vec<&str> = st["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["full", "application", "chromadb"]);

    for kind in ["full", "application", "chromadb"] {
        o.run(&[kind], &[]).code(0);
    }
    let now = Local::now();
    let (code, st) = o.status(now + Duration::minutes(1));
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["ok"], true);
    for t in st["types"].as_array().unwrap() {
        assert_eq!(t["overdue"], false, "{t}");
        assert!(t["last_success"]["size"].as_u64().unwrap() > 0);
        let due = chrono::DateTime::parse_from_rfc3339(t["overdue_at"].as_str().unwrap()).unwrap();
        assert!(due > now, "{t}");
        let next = chrono::DateTime::parse_from_rfc3339(t["next_run"].as_str().unwrap()).unwrap();
        assert!(next > now && next <= now + Duration::days(1) + Duration::minutes(2));
    }

    // A type is overdue from its next scheduled run after its last success,
    // plus the grace hour: within 7 hours for chromadb (every 6 hours),
    // within 25 for the daily ones. Which comes first depends on the time
    // of day the test runs, so the moments are taken from the status.
    let due: Vec<(String, chrono::DateTime<chrono::FixedOffset>)> = st["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let at = t["overdue_at"].as_str().unwrap();
            let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
            (t["type"].as_str().unwrap().to_string(), at)
        })
        .collect();
    let slack = Duration::minutes(2);
    for (kind, at) in &due {
        let every = if kind == "chromadb" {
            Duration::hours(6)
        } else {
            Duration::days(1)
        };
        assert!(
            *at <= now + every + Duration::hours(1) + slack,
            "{kind} due {at}"
        );
    }
    let chroma = due.iter().find(|(k, _)| k == "chromadb").unwrap().1;
    let overdue_at = |t: chrono::DateTime<chrono::FixedOffset>| {
        let (code, st) = o.status(t.with_timezone(&Local));
        let kinds: Vec<String> = st["types"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["overdue"] == true)
            .map(|t| t["type"].as_str().unwrap().to_string())
            .collect();
        (code, kinds)
    };
    let (code, before) = overdue_at(chroma - Duration::minutes(1));
    assert!(!before.contains(&"chromadb".to_string()), "{before:?}");
    assert_eq!(code == 17, !before.is_empty());
    let t = chroma + Duration::minutes(1);
    let (code, after) = overdue_at(t);
    let expected: Vec<String> = due
        .iter()
        .filter(|(_, at)| *at <= t)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(code, 17);
    assert_eq!(after, expected);
    assert!(after.contains(&"chromadb".to_string()));

    // Two days later the daily ones are overdue too; the table says so.
    let out = o
        .env
        .cmd()
        .args(["status", "--now"])
        .arg((now + Duration::days(2)).to_rfc3339())
        .assert()
        .code(17);
    let table = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert_eq!(table.matches("OVERDUE").count(), 3, "{table}");
    assert!(table.contains("(2d00h)"), "ages are shown: {table}");
}

#[test]
fn the_shipped_alert_rules_and_dashboard_use_metrics_that_exist() {
    let o = ops(json!({}));
    o.run(&["application"], &[]).code(0);
    let emitted = std::fs::read_to_string(&o.metrics).unwrap();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/monitoring");
    let rules = std::fs::read_to_string(docs.join("opc-store-alerts.yml")).unwrap();
    let dash = std::fs::read_to_string(docs.join("grafana-dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&dash).expect("the dashboard is JSON");
    assert!(dash["panels"].as_array().unwrap().len() >= 4);
    let dash = dash.to_string();
    let mut used = 0;
    for text in [rules.as_str(), dash.as_str()] {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("opc_store_") {
                used += 1;
                assert!(
                    emitted.contains(&format!("# TYPE {word} gauge")),
                    "{word} is not written by run"
                );
            }
        }
    }
    assert!(used >= 6, "the rules and panels use the metrics");

    // Prometheus' own tool: the rules load and their unit tests pass, and
    // the metrics file passes its linter.
    let promtool = |args: &[&str], stdin: Option<&Path>| {
        let mut c = StdCommand::new("promtool");
        c.args(args).current_dir(&docs);
        if let Some(f) = stdin {
            c.stdin(std::fs::File::open(f).unwrap());
        }
        let out = c
            .output()
            .expect("promtool runs (Debian's prometheus package; .ci/run installs it)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "promtool {args:?}: {text}");
        text
    };
    promtool(&["check", "rules", "opc-store-alerts.yml"], None);
    promtool(&["test", "rules", "opc-store-alerts.test.yml"], None);
    let lint = promtool(&["check", "metrics"], Some(&o.metrics));
    assert!(lint.trim().is_empty(), "lint findings: {lint}");
}

#[test]
fn relative_run_files_are_refused_when_the_configuration_loads() {
    let o = ops(json!({}));
    let text = std::fs::read_to_string(&o.env.config).unwrap();
    let mut cfg: Value = serde_json::from_str(&text).unwrap();
    cfg["operations"]["metrics_file"] = json!("metrics/opc_store.prom");
    o.env.config_value(cfg);
    o.run(&["application"], &[])
        .code(15)
        .stderr(predicate::str::contains(
            "operations.metrics_file: metrics/opc_store.prom must be absolute",
        ));
    assert!(o.log_lines().is_empty(), "nothing ran");
}
