//! `schedule print|install|remove`: the generated systemd timers and
//! crontab follow the legacy schedule (full daily 02:00, chromadb every
//! 6 hours, application daily 03:00, volumes Sunday 01:00), install writes
//! under `--root` and remove deletes, systemd accepts the units, and cron
//! expressions that cannot be translated are refused with exit 15.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use predicates::str::contains;

use crate::support::Env;

const BIN: &str = "/usr/bin/opc-store";

/// A sandbox whose configuration has the legacy components.
fn legacy_env(extra: serde_json::Value) -> Env {
    let env = Env::new();
    let mut cfg = serde_json::json!({
        "repository": env.repo,
        "components": {
            "chromadb": { "paths": ["/srv/chromadb"] },
            "application": { "paths": ["/srv/app"] },
            "volumes": { "paths": ["/var/lib/docker/volumes"] },
        },
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    env.config_value(cfg);
    env
}

fn cfg_path(env: &Env) -> String {
    std::fs::canonicalize(&env.config)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

/// `schedule print ARGS` split at its `# file: PATH` headers.
fn print(env: &Env, args: &[&str]) -> BTreeMap<String, String> {
    let out = env
        .cmd()
        .args(["schedule", "print", "--bin", BIN])
        .args(args)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let mut files = BTreeMap::new();
    let mut cur: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("# file: ") {
            if let Some((p, c)) = cur.take() {
                files.insert(p, c);
            }
            cur = Some((p.to_string(), String::new()));
        } else if let Some((_, c)) = cur.as_mut() {
            c.push_str(line);
            c.push('\n');
        }
    }
    if let Some((p, c)) = cur {
        files.insert(p, c);
    }
    // The blank separator line belongs to no file.
    for c in files.values_mut() {
        while c.ends_with("\n\n") {
            c.pop();
        }
    }
    files
}

/// Lines of `text` starting with `key=`, without the key.
fn values(text: &str, key: &str) -> Vec<String> {
    let k = format!("{key}=");
    text.lines()
        .filter_map(|l| l.strip_prefix(&k))
        .map(str::to_string)
        .collect()
}

const LEGACY: [(&str, &str, &str); 4] = [
    ("full", "0 2 * * *", "*-*-* 02:00:00"),
    ("chromadb", "0 */6 * * *", "*-*-* 00/6:00:00"),
    ("application", "0 3 * * *", "*-*-* 03:00:00"),
    ("volumes", "0 1 * * 0", "Sun *-*-* 01:00:00"),
];

#[test]
fn systemd_units_follow_the_legacy_schedule() {
    let env = legacy_env(serde_json::json!({}));
    let files = print(&env, &[]);
    let cfg = cfg_path(&env);
    let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
    names.sort();
    let mut want = vec!["/etc/logrotate.d/opc-store".to_string()];
    for (k, _, _) in LEGACY {
        want.push(format!("/etc/systemd/system/opc-store-{k}.service"));
        want.push(format!("/etc/systemd/system/opc-store-{k}.timer"));
    }
    want.sort();
    assert_eq!(names, want);
    for (kind, cron, calendar) in LEGACY {
        let timer = &files[&format!("/etc/systemd/system/opc-store-{kind}.timer")];
        assert_eq!(values(timer, "OnCalendar"), [calendar], "{kind}:\n{timer}");
        assert_eq!(values(timer, "Persistent"), ["true"]);
        assert_eq!(values(timer, "Unit"), [format!("opc-store-{kind}.service")]);
        assert_eq!(values(timer, "WantedBy"), ["timers.target"]);
        assert!(values(timer, "RandomizedDelaySec").is_empty());
        assert!(timer.contains(&format!("(cron \"{cron}\")")), "{timer}");
        let svc = &files[&format!("/etc/systemd/system/opc-store-{kind}.service")];
        assert_eq!(
            values(svc, "ExecStart"),
            [format!("{BIN} --config {cfg} run {kind}")]
        );
        for (k, v) in [
            ("Type", "oneshot"),
            ("User", "backup"),
            ("Group", "backup"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "read-only"),
            ("PrivateTmp", "true"),
            ("NoNewPrivileges", "true"),
            ("Environment", "OPC_CACHE_DIR=/var/cache/opc-store"),
        ] {
            assert_eq!(values(svc, k), [v], "{k} in {kind}:\n{svc}");
        }
        assert_eq!(
            values(svc, "ReadWritePaths"),
            [format!(
                "{} -/var/cache/opc-store -/var/log -/var/lib/opc-store",
                env.repo.display()
            )]
        );
    }
    // The timers fire at the legacy times: ask systemd where it exists.
    if which("systemd-analyze") {
        for (kind, _, calendar) in LEGACY {
            let out = std::process::Command::new("systemd-analyze")
                .args([
                    "calendar",
                    "--iterations=3",
                    "--base-time=2024-11-30 12:00:00 UTC",
                    calendar,
                ])
                .env("TZ", "UTC")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{kind}: {text}");
            let next: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("Next elapse:") || l.contains("Iter. #"))
                .map(|l| l.split_once(": ").unwrap().1.trim())
                .collect();
            let want: &[&str] = match kind {
                "full" => &[
                    "Sun 2024-12-01 02:00:00 UTC",
                    "Mon 2024-12-02 02:00:00 UTC",
                    "Tue 2024-12-03 02:00:00 UTC",
                ],
                "chromadb" => &[
                    "Sat 2024-11-30 18:00:00 UTC",
                    "Sun 2024-12-01 00:00:00 UTC",
                    "Sun 2024-12-01 06:00:00 UTC",
                ],
                "application" => &[
                    "Sun 2024-12-01 03:00:00 UTC",
                    "Mon 2024-12-02 03:00:00 UTC",
                    "Tue 2024-12-03 03:00:00 UTC",
                ],
                _ => &[
                    "Sun 2024-12-01 01:00:00 UTC",
                    "Sun 2024-12-08 01:00:00 UTC",
                    "Sun 2024-12-15 01:00:00 UTC",
                ],
            };
            assert_eq!(next, want, "{kind}");
        }
    }
}

#[test]
fn crontab_follows_the_legacy_schedule() {
    let env = legacy_env(serde_json::json!({}));
    let files = print(&env, &["--cron", "--user", "opc"]);
    let cfg = cfg_path(&env);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["/etc/cron.d/opc-store", "/etc/logrotate.d/opc-store"]
    );
    let tab = &files["/etc/cron.d/opc-store"];
    let jobs: Vec<&str> = tab
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty() && !l.contains('='))
        .collect();
    // `full` first, then the components in name order.
    let want: Vec<String> = [
        ("0 2 * * *", "full"),
        ("0 3 * * *", "application"),
        ("0 */6 * * *", "chromadb"),
        ("0 1 * * 0", "volumes"),
    ]
    .iter()
    .map(|(c, k)| format!("{c} opc {BIN} --config {cfg} run {k}"))
    .collect();
    assert_eq!(jobs, want, "{tab}");
    assert!(
        tab.contains("\nOPC_CACHE_DIR=/var/cache/opc-store\n"),
        "{tab}"
    );
    let lr = &files["/etc/logrotate.d/opc-store"];
    for want in [
        "/var/log/opc-backup.log {",
        "    weekly\n",
        "    rotate 12\n",
        "    compress\n",
        "    missingok\n",
        "    notifempty\n",
        "    create 0640 opc opc\n",
    ] {
        assert!(lr.contains(want), "{want:?} not in:\n{lr}");
    }
    assert!(!lr.lines().any(|l| l.trim() == "copytruncate"), "{lr}");
}

#[test]
fn configured_schedules_delay_and_off() {
    let env = legacy_env(serde_json::json!({
        "schedules": { "volumes": "off", "chromadb": "*/30 8-18 * * mon-fri" },
        "schedule_randomized_delay": "5min",
    }));
    let files = print(&env, &[]);
    assert!(!files.contains_key("/etc/systemd/system/opc-store-volumes.timer"));
    let t = &files["/etc/systemd/system/opc-store-chromadb.timer"];
    assert_eq!(values(t, "OnCalendar"), ["Mon..Fri *-*-* 08..18:00,30:00"]);
    assert_eq!(values(t, "RandomizedDelaySec"), ["300s"]);
    // The option wins over the configuration.
    let files = print(&env, &["--randomized-delay", "10min"]);
    let t = &files["/etc/systemd/system/opc-store-full.timer"];
    assert_eq!(values(t, "RandomizedDelaySec"), ["600s"]);
    let files = print(&env, &["--cron", "--randomized-delay", "90s"]);
    let tab = &files["/etc/cron.d/opc-store"];
    assert!(
        tab.contains("\n0 2 * * * backup sleep \"$(shuf -i 0-90 -n 1)\" && /usr/bin/opc-store"),
        "{tab}"
    );
    // Both day fields restricted: cron fires on either, so two OnCalendar lines.
    env.config_value(serde_json::json!({
        "repository": env.repo,
        "components": { "chromadb": { "paths": ["/x"] } },
        "schedules": { "full": "0 4 1,15 * sun" },
    }));
    let files = print(&env, &[]);
    let t = &files["/etc/systemd/system/opc-store-full.timer"];
    assert_eq!(
        values(t, "OnCalendar"),
        ["Sun *-*-* 04:00:00", "*-*-01,15 04:00:00"]
    );
}

#[test]
fn the_configured_run_files_are_writable_by_the_service_and_rotated() {
    let env = legacy_env(serde_json::json!({
        "operations": {
            "log_file": "/srv/logs/opc/backup.log",
            "state_file": "/srv/state/opc.json",
            "metrics_file": "/var/lib/node_exporter/textfile_collector/opc_store.prom",
        },
    }));
    let files = print(&env, &[]);
    let svc = &files["/etc/systemd/system/opc-store-full.service"];
    let rw = values(svc, "ReadWritePaths").join(" ");
    for dir in [
        "-/srv/logs/opc",
        "-/srv/state",
        "-/var/lib/node_exporter/textfile_collector",
    ] {
        assert!(rw.split(' ').any(|w| w == dir), "{dir} not in {rw}");
    }
    assert!(
        values(svc, "StateDirectory").is_empty(),
        "no /var/lib/opc-store when the state lives elsewhere"
    );
    assert_eq!(values(svc, "EnvironmentFile"), ["-/etc/opc-store/env"]);
    let rotate = &files["/etc/logrotate.d/opc-store"];
    assert!(rotate.contains("/srv/logs/opc/backup.log {"), "{rotate}");
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every regular file under `dir`, relative.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

#[test]
fn install_and_remove_under_a_root() {
    let env = legacy_env(serde_json::json!({}));
    let root = env.path("root");
    let r = root.to_str().unwrap();
    let printed = print(&env, &[]);
    let out = env
        .cmd()
        .args(["schedule", "install", "--bin", BIN, "--root", r])
        .assert()
        .code(0)
        .stdout(contains("systemctl daemon-reload"))
        .stdout(contains(
            "systemctl enable --now opc-store-full.timer opc-store-application.timer opc-store-chromadb.timer opc-store-volumes.timer",
        ))
        .get_output()
        .stdout
        .clone();
    assert!(!String::from_utf8_lossy(&out).contains("running: systemctl"));
    assert_eq!(tree(&root).len(), 9, "{:?}", tree(&root));
    for (path, content) in &printed {
        let p = root.join(path.trim_start_matches('/'));
        assert_eq!(&std::fs::read_to_string(&p).unwrap(), content, "{path}");
        assert_eq!(mode(&p), 0o644, "{path}");
    }
    // A file of the operator's own, also named opc-store-*, is kept.
    let own = root.join("etc/systemd/system/opc-store-extra.timer");
    std::fs::write(&own, "[Timer]\nOnCalendar=daily\n").unwrap();
    // Switching volumes off and installing again removes its units.
    env.config_value(serde_json::json!({
        "repository": env.repo,
        "components": {
            "chromadb": { "paths": ["/srv/chromadb"] },
            "application": { "paths": ["/srv/app"] },
            "volumes": { "paths": ["/var/lib/docker/volumes"] },
        },
        "schedules": { "volumes": "off" },
    }));
    env.cmd()
        .args(["schedule", "install", "--bin", BIN, "--root", r])
        .assert()
        .code(0)
        .stdout(contains("removed"));
    let left = tree(&root);
    assert!(!left.iter().any(|p| p.contains("volumes")), "{left:?}");
    assert_eq!(left.len(), 8, "{left:?}");
    // Installing cron beside the units warns: backups would run twice.
    env.cmd()
        .args(["schedule", "install", "--cron", "--bin", BIN, "--root", r])
        .assert()
        .code(1)
        .stderr(contains("would run backups twice"));
    assert_eq!(mode(&root.join("etc/cron.d/opc-store")), 0o644);
    env.cmd()
        .args(["schedule", "remove", "--systemd", "--root", r])
        .assert()
        .code(0);
    // The crontab still needs the logrotate snippet.
    assert_eq!(
        tree(&root),
        [
            "etc/cron.d/opc-store",
            "etc/logrotate.d/opc-store",
            "etc/systemd/system/opc-store-extra.timer"
        ]
    );
    env.cmd()
        .args(["schedule", "remove", "--root", r])
        .assert()
        .code(0);
    assert_eq!(tree(&root), ["etc/systemd/system/opc-store-extra.timer"]);
    env.cmd()
        .args(["schedule", "remove", "--root", r])
        .assert()
        .code(0)
        .stdout(contains("nothing to remove"));
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    if !which("systemd-analyze") {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let env = legacy_env(serde_json::json!({ "schedule_randomized_delay": "10min" }));
    let bin: PathBuf = assert_cmd::cargo::cargo_bin("opc-store");
    let root = env.path("root");
    env.cmd()
        .args(["schedule", "install", "--root", root.to_str().unwrap()])
        .arg("--bin")
        .arg(&bin)
        .arg("--password-file")
        .arg(env.path("pw"))
        .assert()
        .code(0);
    let dir = root.join("etc/systemd/system");
    let units: Vec<PathBuf> = tree(&dir).iter().map(|n| dir.join(n)).collect();
    assert_eq!(units.len(), 8);
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{err}"
    );
    // Anything it says about our units is a defect.
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("opc-store-")).collect();
    assert!(ours.is_empty(), "{err}");
}

#[test]
fn untranslatable_expressions_exit_15() {
    for (expr, want) in [
        ("0 0 L * *", "L (last day)"),
        ("0 0 * * 5#2", "n-th weekday"),
        ("0 0 2 * * *", "seconds or years"),
        ("@reboot", "@reboot"),
        ("0 0 31 2 *", "never matches"),
        ("0 25 * * *", "hour: 25 is outside 0-23"),
    ] {
        let env = legacy_env(serde_json::json!({ "schedules": { "chromadb": expr } }));
        for action in ["print", "install"] {
            let a = env
                .cmd()
                .args(["schedule", action, "--root"])
                .arg(env.path("root"))
                .assert()
                .code(15)
                .stderr(contains(want))
                .stderr(contains("schedules.chromadb"));
            let _ = a;
        }
        assert!(!env.path("root").exists(), "{expr}: nothing is written");
    }
    // Without a configuration there is nothing to name in the jobs.
    let env = Env::new();
    env.cmd()
        .env_remove("OPC_CONFIG")
        .args(["schedule", "print"])
        .assert()
        .code(15)
        .stderr(contains("--config"));
}
