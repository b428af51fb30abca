//! Hook commands around snapshots and restores, and Docker volumes named
//! instead of paths. Hooks append to a journal file, so their order and
//! environment are what the tests compare.

use std::path::{Path, PathBuf};

use predicates::prelude::*;
use serde_json::{json, Value};

use crate::support::{parse_json, write, Env};

struct Hooked {
    env: Env,
    journal: PathBuf,
    app: PathBuf,
    chroma: PathBuf,
}

/// `echo <label> ... >> journal`, with the hook's environment. (`$VAR`,
/// not `${VAR}`: the configuration expands `${...}` when it is loaded.)
fn note(journal: &Path, label: &str) -> String {
    format!(
        "echo \"{label} $OPC_HOOK $OPC_COMPONENT $OPC_SNAPSHOT_TYPE $OPC_ERROR\" >> {}",
        journal.display()
    )
}

fn hooked(chroma_hooks: Value, run_hooks: Value) -> Hooked {
    let env = Env::with_repo();
    let app = env.path("data/app");
    let chroma = env.path("data/chroma");
    write(&app.join("a.json"), b"{}");
    write(&chroma.join("seg.bin"), &[5u8; 5000]);
    let journal = env.path("journal.txt");
    let h = Hooked {
        env,
        journal,
        app,
        chroma,
    };
    h.configure(chroma_hooks, run_hooks);
    h
}

impl Hooked {
    fn configure(&self, chroma_hooks: Value, run_hooks: Value) {
        let j = &self.journal;
        self.env.config_value(json!({
            "repository": self.env.repo,
            "components": {
                "application": {
                    "paths": [self.app],
                    "hooks": { "before": note(j, "app"), "after": note(j, "app") },
                },
                "chromadb": { "paths": [self.chroma], "hooks": chroma_hooks },
            },
            "hooks": run_hooks,
        }));
    }

    fn journal(&self) -> Vec<String> {
        let lines: Vec<String> = std::fs::read_to_string(&self.journal)
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect();
        let _ = std::fs::remove_file(&self.journal);
        lines
    }

    fn snapshot(&self, kind: &str) -> (i32, Value, String) {
        let out = self
            .env
            .cmd()
            .args(["snapshot", kind, "--json"])
            .output()
            .unwrap();
        let json = if out.stdout.is_empty() {
            Value::Null
        } else {
            parse_json(&out.stdout)
        };
        (
            out.status.code().unwrap(),
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn hooks_run_in_order_around_each_component_and_the_run() {
    let h = hooked(json!({}), json!({}));
    let j = h.journal.clone();
    h.configure(
        json!({ "before": note(&j, "chroma"), "after": note(&j, "chroma"),
                "on_error": note(&j, "chroma") }),
        json!({ "before": note(&j, "run"), "after": note(&j, "run"), "on_error": note(&j, "run") }),
    );
    let (code, r, err) = h.snapshot("full");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        h.journal(),
        [
            "run before  full",
            "app before application full",
            "app after application full",
            "chroma before chromadb full",
            "chroma after chromadb full",
            "run after  full",
        ]
    );
    let ran: Vec<&str> = r["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["hook"].as_str().unwrap())
        .collect();
    assert_eq!(
        ran,
        [
            "run.before",
            "application.before",
            "application.after",
            "chromadb.before",
            "chromadb.after",
            "run.after"
        ]
    );
    assert!(r["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["ok"] == true));
}

#[test]
fn a_failing_before_skips_its_component_runs_on_error_and_not_after() {
    let h = hooked(json!({}), json!({}));
    let j = h.journal.clone();
    h.configure(
        json!({
            "before": format!("{}; echo 'container opc-chromadb is busy' >&2; exit 4", note(&j, "chroma")),
            "after": note(&j, "chroma"),
            "on_error": note(&j, "chroma"),
        }),
        json!({ "after": note(&j, "run") }),
    );
    let (code, r, err) = h.snapshot("full");
    assert_eq!(
        code, 1,
        "a snapshot with a component missing is a warning: {err}"
    );
    assert!(
        err.contains("chromadb was not captured: chromadb.before hook")
            && err.contains("exited with code 4: container opc-chromadb is busy"),
        "{err}"
    );
    let journal = h.journal();
    assert_eq!(journal.len(), 5, "{journal:?}");
    assert_eq!(
        journal[..3],
        [
            "app before application full",
            "app after application full",
            "chroma before chromadb full"
        ]
    );
    assert!(
        journal[3].starts_with("chroma on_error chromadb full chromadb.before hook `")
            && journal[3].contains("exited with code 4"),
        "on_error gets the failure in OPC_ERROR: {journal:?}"
    );
    assert_eq!(
        journal[4], "run after  full",
        "no chromadb after: {journal:?}"
    );
    let parts: Vec<&str> = r["snapshot"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(parts, ["application"], "only what was captured is recorded");

    // Alone, the component has nothing left to capture: a failure.
    let (code, _, err) = h.snapshot("chromadb");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("nothing was captured"), "{err}");
}

#[test]
fn after_and_on_error_run_when_the_capture_fails() {
    let h = hooked(json!({}), json!({}));
    let j = h.journal.clone();
    h.configure(
        json!({ "before": note(&j, "chroma"), "after": note(&j, "chroma"),
                "on_error": note(&j, "chroma") }),
        json!({}),
    );
    // The before hook defers the path check: it might have mounted it.
    std::fs::remove_dir_all(&h.chroma).unwrap();
    let (code, _, err) = h.snapshot("chromadb");
    assert_eq!(code, 16, "{err}");
    assert!(err.contains("does not exist"), "{err}");
    let journal = h.journal();
    assert_eq!(journal[0], "chroma before chromadb chromadb");
    assert_eq!(journal[1], "chroma after chromadb chromadb");
    assert!(
        journal[2].starts_with("chroma on_error chromadb chromadb ")
            && journal[2].contains("does not exist"),
        "{journal:?}"
    );
}

#[test]
fn a_hook_past_its_timeout_is_killed_and_a_failing_run_before_stops_everything() {
    let h = hooked(json!({ "before": "sleep 30", "timeout": "1s" }), json!({}));
    let started = std::time::Instant::now();
    let (code, _, err) = h.snapshot("full");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("timed out after"), "{err}");
    h.journal();
    let before = h.env.json(&["snapshots"]).as_array().unwrap().len();

    let j = h.journal.clone();
    h.configure(
        json!({}),
        json!({ "before": "exit 2", "on_error": note(&j, "run"), "after": note(&j, "run") }),
    );
    let (code, _, err) = h.snapshot("full");
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("run.before hook `exit 2` exited with code 2; nothing was captured"),
        "{err}"
    );
    let journal = h.journal();
    assert_eq!(journal.len(), 1, "on_error only: {journal:?}");
    assert!(
        journal[0].starts_with("run on_error  full run.before hook"),
        "{journal:?}"
    );
    assert_eq!(
        h.env.json(&["snapshots"]).as_array().unwrap().len(),
        before,
        "no snapshot was written"
    );
}

#[test]
fn in_place_restores_run_their_hooks_and_the_health_check() {
    let h = hooked(json!({}), json!({}));
    let j = h.journal.clone();
    h.configure(
        json!({ "before_restore": note(&j, "stop"), "after_restore": note(&j, "start"),
                "health_check": format!("test -f {}/seg.bin && {}", h.chroma.display(), note(&j, "health")) }),
        json!({ "before_restore": note(&j, "all-stop"), "after_restore": note(&j, "all-start") }),
    );
    let (code, r, _) = h.snapshot("chromadb");
    assert_eq!(code, 0);
    h.journal();
    let id = r["id"].as_str().unwrap()[..8].to_string();

    // Into a folder: production is not touched, no hooks.
    let target = h.env.path("t");
    h.env.restore(&[&id, "--target", target.to_str().unwrap()]);
    assert!(h.journal().is_empty());

    std::fs::write(h.chroma.join("seg.bin"), b"damaged").unwrap();
    let out = h
        .env
        .cmd()
        .args(["restore", &id, "--in-place", "--force", "--json"])
        .assert()
        .code(0);
    let rep = parse_json(&out.get_output().stdout);
    assert_eq!(rep["hooks"].as_array().unwrap().len(), 5, "{rep}");
    assert_eq!(
        std::fs::read(h.chroma.join("seg.bin")).unwrap(),
        vec![5u8; 5000]
    );
    let journal: Vec<String> = h
        .journal()
        .into_iter()
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        journal,
        [
            "all-stop before_restore",
            "stop before_restore chromadb",
            "start after_restore chromadb",
            "all-start after_restore",
            "health health_check chromadb",
        ]
    );

    // A failing health check fails the restore, which stays in place.
    h.configure(
        json!({ "after_restore": note(&j, "start"), "health_check": "echo 'collections missing'; exit 1" }),
        json!({}),
    );
    h.env
        .cmd()
        .args(["restore", &id, "--in-place", "--force"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "was restored, but the health check failed: chromadb.health_check hook",
        ))
        .stderr(predicate::str::contains("collections missing"));
    assert_eq!(
        std::fs::read(h.chroma.join("seg.bin")).unwrap(),
        vec![5u8; 5000]
    );
    assert_eq!(h.journal().len(), 1, "after_restore ran");
    // --no-hooks skips them.
    h.env
        .cmd()
        .args(["restore", &id, "--in-place", "--force", "--no-hooks"])
        .assert()
        .code(0);
    assert!(h.journal().is_empty());
}

#[test]
fn docker_volumes_are_resolved_by_name() {
    let env = Env::with_repo();
    let vol = env.path("docker/volumes/opc_prometheus/_data");
    write(&vol.join("wal/000001"), b"prometheus samples");
    // Docker's engine does not run here: a stand-in answers `volume
    // inspect` the way docker does, including its error for an unknown name.
    let fake = env.path("fake-docker");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n[ \"$1 $2 $3 $4\" = 'volume inspect --format {{{{.Mountpoint}}}}' ] || exit 64\n\
             case \"$5\" in opc_prometheus) echo {} ;; *) echo \"Error response from daemon: get $5: no such volume\" >&2; exit 1 ;; esac\n",
            vol.display()
        ),
    )
    .unwrap();
    crate::support::tree::chmod(&fake, 0o755);
    env.config_value(json!({
        "repository": env.repo,
        "components": { "volumes": { "docker_volumes": ["opc_prometheus"] } },
    }));
    let r = env
        .cmd()
        .env("OPC_DOCKER", &fake)
        .args(["snapshot", "volumes", "--json"])
        .assert()
        .code(0);
    let r = parse_json(&r.get_output().stdout);
    assert_eq!(
        r["snapshot"]["parts"][0]["paths"][0]["path"],
        vol.to_str().unwrap()
    );
    let target = env.path("r");
    env.cmd()
        .env("OPC_DOCKER", &fake)
        .args(["restore", "latest", "--target", target.to_str().unwrap()])
        .assert()
        .code(0);
    assert_eq!(
        std::fs::read(target.join("volumes/wal/000001")).unwrap(),
        b"prometheus samples"
    );

    env.config_value(json!({
        "repository": env.repo,
        "components": { "volumes": { "docker_volumes": ["opc_grafana"] } },
    }));
    env.cmd()
        .env("OPC_DOCKER", &fake)
        .args(["snapshot", "volumes"])
        .assert()
        .code(15)
        .stderr(predicate::str::contains(
            "components.volumes.docker_volumes",
        ))
        .stderr(predicate::str::contains("no such volume"));
    env.cmd()
        .env("OPC_DOCKER", env.path("no-docker-here"))
        .args(["snapshot", "volumes"])
        .assert()
        .code(15)
        .stderr(predicate::str::contains("install Docker"));
}
