//! `opc-store schedule print|install|remove`: systemd timers or a crontab
//! for unattended `run`s, plus the logrotate snippet.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use opc_store::profile::schedule::{self, GeneratedFile, Options, Rotation, Scheduler};
use opc_store::profile::{self, Config};

use crate::cli::args::{Global, ScheduleAction, ScheduleArgs, ScheduleOpts};
use crate::cli::{exit, print_json};

/// Runs `schedule ACTION`.
pub fn run(g: &Global, a: &ScheduleArgs) -> Result<u8> {
    match &a.action {
        ScheduleAction::Print(o) => print(g, o),
        ScheduleAction::Install(o) => install(g, o),
        ScheduleAction::Remove(o) => remove(g, o),
    }
}

fn scheduler(o: &ScheduleOpts) -> Scheduler {
    if o.cron {
        Scheduler::Cron
    } else {
        Scheduler::Systemd
    }
}

/// The configuration (required: the jobs name it) and its absolute path.
fn config(g: &Global) -> Result<(Config, PathBuf)> {
    let Some(path) = g.config.clone().or_else(profile::default_config_path) else {
        return Err(opc_store::Error::Config(
            "schedule needs a configuration for the jobs to use: pass --config FILE or set OPC_CONFIG"
                .into(),
        )
        .into());
    };
    let abs = std::fs::canonicalize(&path)
        .map_err(|e| opc_store::Error::Config(format!("configuration {}: {e}", path.display())))?;
    let cfg =
        Config::load(&abs).with_context(|| format!("loading configuration {}", abs.display()))?;
    Ok((cfg, abs))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

fn generate(g: &Global, o: &ScheduleOpts) -> Result<(Config, Options, Vec<GeneratedFile>)> {
    let (cfg, cfg_path) = config(g)?;
    let bin = match &o.bin {
        Some(b) => absolute(b)?,
        None => std::env::current_exe().context("finding this executable; pass --bin PATH")?,
    };
    let mut opts = Options::new(&cfg, bin, cfg_path);
    if let Some(r) = &g.repo {
        let r = absolute(r)?;
        if r != cfg.repository {
            opts.repository = r;
            opts.pass_repo = true;
        }
    }
    if let Some(p) = &g.password_file {
        opts.password_file = Some(absolute(p)?);
    }
    opts.user = o.user.clone();
    opts.group = o.group.clone().unwrap_or_else(|| o.user.clone());
    if let Some(d) = o.randomized_delay {
        opts.randomized_delay = Some(d);
    }
    opts.rotation = if o.logrotate == "daily" {
        Rotation::Daily
    } else {
        Rotation::Weekly
    };
    opts.rotate_keep = o.logrotate_keep;
    let files = schedule::generate(&cfg, scheduler(o), &opts)?;
    Ok((cfg, opts, files))
}

fn print(g: &Global, o: &ScheduleOpts) -> Result<u8> {
    let (_, _, files) = generate(g, o)?;
    if g.json {
        let v: Vec<_> = files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "path": f.path,
                    "mode": format!("{:04o}", f.mode),
                    "content": f.content,
                })
            })
            .collect();
        print_json(&v)?;
        return Ok(exit::OK);
    }
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("# file: {}", f.path.display());
        print!("{}", f.content);
    }
    Ok(exit::OK)
}

/// Whether systemctl should be run: the real root, systemd running, and
/// the binary present.
fn live_systemd(o: &ScheduleOpts) -> bool {
    let real_root = std::fs::canonicalize(&o.root)
        .map(|r| r == Path::new("/"))
        .unwrap_or(false);
    real_root
        && !o.no_systemctl
        && Path::new("/run/systemd/system").is_dir()
        && which("systemctl").is_some()
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Runs `systemctl ARGS`; a failure is an error saying what to do.
fn systemctl(args: &[&str], quiet: bool) -> Result<()> {
    if !quiet {
        println!("running: systemctl {}", args.join(" "));
    }
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .context("running systemctl")?;
    if !out.status.success() {
        bail!(
            "`systemctl {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn is_unit(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e == "service" || e == "timer")
}

fn install(g: &Global, o: &ScheduleOpts) -> Result<u8> {
    let (_, opts, files) = generate(g, o)?;
    let root = &o.root;
    let live = live_systemd(o);
    let sched = scheduler(o);
    let mut code = exit::OK;
    if opts.password_file.is_none()
        && crate::cli::is_encrypted(g, &opts.repository).unwrap_or(false)
    {
        eprintln!(
            "warning: {} is encrypted and no --password-file was given: scheduled runs will not be able to open it",
            opts.repository.display()
        );
        code = exit::WARNINGS;
    }
    // Earlier generated files of this scheduler that the new set does not
    // contain (a type switched off) go; the other scheduler's are reported.
    let wanted: Vec<PathBuf> = files
        .iter()
        .map(|f| schedule::under(root, &f.path))
        .collect();
    let mut stale = Vec::new();
    for p in schedule::installed(root)? {
        if wanted.contains(&p) {
            continue;
        }
        let ours = match sched {
            Scheduler::Systemd => is_unit(&p),
            Scheduler::Cron => p.ends_with(schedule::CRON_FILE),
        };
        if ours {
            stale.push(p);
        } else if !p.ends_with(schedule::LOGROTATE_FILE) {
            eprintln!(
                "warning: {} from an earlier install is still there and would run backups twice; \
                 remove it with `opc-store schedule remove --{}`",
                p.display(),
                if is_unit(&p) { "systemd" } else { "cron" }
            );
            code = exit::WARNINGS;
        }
    }
    let stale_timers = schedule::timer_units(&stale);
    if live && !stale_timers.is_empty() {
        let mut args = vec!["disable", "--now"];
        args.extend(stale_timers.iter().map(String::as_str));
        systemctl(&args, g.quiet)?;
    }
    schedule::remove_files(&stale)?;
    for p in &stale {
        if !g.quiet {
            println!("removed {}", p.display());
        }
    }
    let written = schedule::write_files(root, &files).with_context(|| {
        format!(
            "installing under {} (writing to /etc needs root)",
            root.display()
        )
    })?;
    if !g.quiet {
        for p in &written {
            println!("wrote {}", p.display());
        }
    }
    let log = schedule::under(root, &opts.log_file);
    let log_hint = format!(
        "install -o {u} -g {gr} -m 0640 /dev/null {l}",
        u = opts.user,
        gr = opts.group,
        l = opts.log_file.display()
    );
    let timers = schedule::timer_units(&written);
    match sched {
        Scheduler::Systemd if live => {
            systemctl(&["daemon-reload"], g.quiet)?;
            let mut args = vec!["enable", "--now"];
            args.extend(timers.iter().map(String::as_str));
            systemctl(&args, g.quiet).context(
                "the units are installed but the timers are not enabled; fix the cause and run the command again",
            )?;
            if !g.quiet {
                println!("check with: systemctl list-timers 'opc-store-*'");
            }
        }
        Scheduler::Systemd => {
            if !g.quiet {
                println!("then run (as root):");
                println!("  systemctl daemon-reload");
                println!("  systemctl enable --now {}", timers.join(" "));
            }
        }
        Scheduler::Cron => {
            if !g.quiet {
                println!(
                    "cron reads {} by itself; no restart is needed",
                    schedule::CRON_FILE
                );
            }
        }
    }
    if !log.exists() && !g.quiet {
        println!("create the log file writable by the job: {log_hint}");
    }
    Ok(code)
}

fn remove(g: &Global, o: &ScheduleOpts) -> Result<u8> {
    let root = &o.root;
    let all = schedule::installed(root)?;
    let is_lr = |p: &PathBuf| p.ends_with(schedule::LOGROTATE_FILE);
    let picked = |p: &PathBuf| {
        if o.systemd {
            is_unit(p)
        } else if o.cron {
            p.ends_with(schedule::CRON_FILE)
        } else {
            true
        }
    };
    // The logrotate snippet goes with the last scheduler removed.
    let others_left = all.iter().any(|p| !picked(p) && !is_lr(p));
    let doomed: Vec<PathBuf> = all
        .iter()
        .filter(|p| if is_lr(p) { !others_left } else { picked(p) })
        .cloned()
        .collect();
    if doomed.is_empty() {
        if !g.quiet {
            println!("nothing to remove under {}", root.display());
        }
        return Ok(exit::OK);
    }
    let timers = schedule::timer_units(&doomed);
    let live = live_systemd(o);
    let mut failed = None;
    if live && !timers.is_empty() {
        let mut args = vec!["disable", "--now"];
        args.extend(timers.iter().map(String::as_str));
        if let Err(e) = systemctl(&args, g.quiet) {
            eprintln!("warning: {e:#}; removing the unit files anyway");
            failed = Some(e);
        }
    }
    schedule::remove_files(&doomed)?;
    if !g.quiet {
        for p in &doomed {
            println!("removed {}", p.display());
        }
    }
    if !timers.is_empty() {
        if live {
            systemctl(&["daemon-reload"], g.quiet)?;
        } else if !g.quiet {
            println!(
                "then run (as root): systemctl disable --now {}; systemctl daemon-reload",
                timers.join(" ")
            );
        }
    }
    Ok(if failed.is_some() {
        exit::WARNINGS
    } else {
        exit::OK
    })
}
