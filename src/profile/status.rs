//! `status`: per type, the last success and failure, the next scheduled
//! run, and whether the type is overdue — for people and for monitoring.

use chrono::{DateTime, Duration, FixedOffset, Local};
use serde::Serialize;

use std::collections::BTreeMap;

use super::operations::{Outcome, RunRecord, RunState, TypeState};
use super::Config;

/// The next time a cron expression fires after a time (`cron::next_after`,
/// or a stand-in in tests).
pub type NextAfter = dyn Fn(&str, DateTime<Local>) -> Option<DateTime<Local>>;

/// One type's status.
#[derive(Clone, Debug, Serialize)]
pub struct TypeStatus {
    /// Snapshot type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Cron schedule.
    pub schedule: Option<String>,
    /// Last run that took a snapshot.
    pub last_success: Option<RunRecord>,
    /// Seconds since it.
    pub success_age_secs: Option<i64>,
    /// Last failed run.
    pub last_failure: Option<RunRecord>,
    /// Whether the very last run failed.
    pub failing: bool,
    /// Next scheduled run (RFC 3339).
    pub next_run: Option<String>,
    /// When the type becomes overdue: the schedule's first run after the
    /// last success plus the grace period (RFC 3339).
    pub overdue_at: Option<String>,
    /// That time has passed (or there never was a success).
    pub overdue: bool,
}

/// Status of every scheduled type at `now`. `next_after` gives the next
/// time a cron expression fires after a time.
pub fn status(
    cfg: &Config,
    state: &RunState,
    now: DateTime<Local>,
    next_after: &NextAfter,
) -> Vec<TypeStatus> {
    let mut kinds: Vec<String> = cfg.scheduled_types();
    for k in state.types.keys() {
        if !kinds.contains(k) {
            kinds.push(k.clone());
        }
    }
    kinds
        .into_iter()
        .map(|kind| {
            let t = state.types.get(&kind).cloned().unwrap_or_default();
            let schedule = cfg.schedule(&kind);
            let due = deadline(cfg, &t, schedule.as_deref(), next_after);
            let overdue = match (&schedule, due) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(_), Some(due)) => now > due,
            };
            let success_at = t.last_success.as_ref().and_then(when);
            TypeStatus {
                success_age_secs: success_at.map(|a| (now.fixed_offset() - a).num_seconds()),
                next_run: schedule
                    .as_deref()
                    .and_then(|e| next_after(e, now))
                    .map(|d| d.to_rfc3339()),
                failing: t
                    .last_run
                    .as_ref()
                    .is_some_and(|r| r.outcome == Outcome::Failure),
                kind,
                schedule,
                overdue_at: due.map(|d| d.to_rfc3339()),
                last_success: t.last_success,
                last_failure: t.last_failure,
                overdue,
            }
        })
        .collect()
}

fn when(r: &RunRecord) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(&r.time).ok()
}

/// When a type becomes overdue: the first scheduled run after its last
/// success, plus the grace period. None without a success or a schedule.
fn deadline(
    cfg: &Config,
    t: &TypeState,
    schedule: Option<&str>,
    next_after: &NextAfter,
) -> Option<DateTime<Local>> {
    let grace = Duration::minutes(cfg.operations.overdue_grace_minutes.into());
    let at = t.last_success.as_ref().and_then(when)?;
    next_after(schedule?, at.with_timezone(&Local)).map(|d| d + grace)
}

/// Per scheduled type that has succeeded, the Unix time at which it becomes
/// overdue: what the metrics file exports so an alert needs no schedule.
pub fn overdue_at(cfg: &Config, state: &RunState, next_after: &NextAfter) -> BTreeMap<String, i64> {
    state
        .types
        .iter()
        .filter_map(|(k, t)| {
            deadline(cfg, t, cfg.schedule(k).as_deref(), next_after)
                .map(|d| (k.clone(), d.timestamp()))
        })
        .collect()
}

impl Config {
    /// The cron schedule of a type: configured, else the legacy one.
    pub fn schedule(&self, kind: &str) -> Option<String> {
        self.schedules
            .get(kind)
            .cloned()
            .or_else(|| super::defaults::schedule(kind).map(str::to_string))
            .filter(|s| !super::schedule::is_off(s))
    }

    /// Types that run on a schedule: `full` and each component that has a
    /// configured or legacy schedule.
    pub fn scheduled_types(&self) -> Vec<String> {
        std::iter::once("full".to_string())
            .chain(self.components.keys().cloned())
            .chain(self.schedules.keys().cloned())
            .fold(Vec::new(), |mut v, k| {
                if !v.contains(&k) && self.schedule(&k).is_some() {
                    v.push(k);
                }
                v
            })
    }
}
