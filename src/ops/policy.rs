//! Which snapshots a retention policy keeps, and why.
//!
//! Snapshots are grouped by type (`full` or a component). In each group a
//! snapshot is kept when any rule keeps it:
//! - it is the newest of its type (retention never empties a type);
//! - it is younger than its retention days (recorded on the snapshot at
//!   capture, else configured per type) — the legacy `find -mtime` rule;
//! - restic-style rules: the last N; the newest of each of the last N
//!   hours/days/weeks/months/years that have snapshots; all within a
//!   duration of the newest; all carrying a tag.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, Timelike};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::snapshot::Snapshot;

/// Restic-style keep rules; all optional and combined by union.
#[derive(Clone, Debug, Default)]
pub struct KeepRules {
    /// Keep the newest N.
    pub last: Option<usize>,
    /// Newest of each of the last N hours.
    pub hourly: Option<usize>,
    /// Newest of each of the last N days.
    pub daily: Option<usize>,
    /// Newest of each of the last N ISO weeks.
    pub weekly: Option<usize>,
    /// Newest of each of the last N months.
    pub monthly: Option<usize>,
    /// Newest of each of the last N years.
    pub yearly: Option<usize>,
    /// Everything within this duration of the group's newest snapshot.
    pub within: Option<Duration>,
    /// Everything with one of these tags.
    pub tags: Vec<String>,
}

/// A policy: keep rules plus retention days per type.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Restic-style rules.
    pub rules: KeepRules,
    /// Retention days per type, for snapshots that recorded none.
    pub retention_days: BTreeMap<String, u32>,
    /// Retention days per type that replace what snapshots recorded: the
    /// legacy `scheduled-backup.sh TYPE DAYS` deleted every backup of the
    /// type older than DAYS, whatever it was taken with.
    pub override_days: BTreeMap<String, u32>,
}

/// The verdict on one snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    /// Snapshot id (hex).
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Snapshot time.
    pub time: String,
    /// Kept or not.
    pub keep: bool,
    /// Why it is kept (empty when it goes).
    pub reasons: Vec<String>,
    /// When its retention days run out (RFC 3339), if it has any.
    pub expires: Option<String>,
    /// Retention days applied.
    pub retention_days: Option<u32>,
}

/// Applies `policy` at time `now` to `snaps`; decisions are returned in
/// the order of `snaps`.
pub fn apply(
    snaps: &[(Id, Snapshot)],
    policy: &Policy,
    now: DateTime<FixedOffset>,
) -> Vec<Decision> {
    let mut out: Vec<Decision> = snaps
        .iter()
        .map(|(id, s)| {
            let days = policy
                .override_days
                .get(&s.kind)
                .copied()
                .or(s.retention_days)
                .or_else(|| policy.retention_days.get(&s.kind).copied());
            let expires = days.map(|d| s.datetime() + Duration::days(d.into()));
            let mut reasons = Vec::new();
            if let Some(e) = expires {
                if now < e {
                    reasons.push(format!(
                        "within its {}-day retention (until {})",
                        days.unwrap_or(0),
                        e.format("%Y-%m-%d %H:%M")
                    ));
                }
            }
            if policy.rules.tags.iter().any(|t| s.tags.contains(t)) {
                reasons.push("has a kept tag".into());
            }
            Decision {
                id: id.to_hex(),
                kind: s.kind.clone(),
                time: s.time.clone(),
                keep: false,
                reasons,
                expires: expires.map(|e| e.to_rfc3339()),
                retention_days: days,
            }
        })
        .collect();
    // Groups by type, each newest first.
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (_, s)) in snaps.iter().enumerate() {
        groups.entry(s.kind.as_str()).or_default().push(i);
    }
    let r = &policy.rules;
    for idx in groups.values_mut() {
        idx.sort_by_key(|&i| std::cmp::Reverse((snaps[i].1.datetime(), snaps[i].0)));
        out[idx[0]].reasons.insert(0, "newest of its type".into());
        if let Some(n) = r.last {
            for (k, &i) in idx.iter().take(n).enumerate() {
                out[i].reasons.push(format!("last {n} (#{})", k + 1));
            }
        }
        if let Some(w) = r.within {
            let newest = snaps[idx[0]].1.datetime();
            for &i in idx.iter() {
                if newest - snaps[i].1.datetime() <= w {
                    out[i].reasons.push("within the --keep-within span".into());
                }
            }
        }
        type Bucket = fn(&DateTime<FixedOffset>) -> (i32, u32, u32, u32);
        let buckets: [(&str, Option<usize>, Bucket); 5] = [
            ("hourly", r.hourly, |t| (t.year(), t.ordinal(), t.hour(), 0)),
            ("daily", r.daily, |t| (t.year(), t.ordinal(), 0, 0)),
            ("weekly", r.weekly, |t| {
                let w = t.iso_week();
                (w.year(), w.week(), 0, 0)
            }),
            ("monthly", r.monthly, |t| (t.year(), t.month(), 0, 0)),
            ("yearly", r.yearly, |t| (t.year(), 0, 0, 0)),
        ];
        for (name, n, bucket) in buckets {
            let Some(n) = n else { continue };
            let mut last = None;
            let mut kept = 0;
            for &i in idx.iter() {
                if kept == n {
                    break;
                }
                let b = bucket(&snaps[i].1.datetime());
                if last != Some(b) {
                    last = Some(b);
                    kept += 1;
                    out[i].reasons.push(format!("{name} #{kept} of {n}"));
                }
            }
        }
    }
    for d in &mut out {
        d.keep = !d.reasons.is_empty();
    }
    out
}

/// Parses a restic-style span such as `2y5m7d3h` (months are `m`).
pub fn parse_span(s: &str) -> Result<Duration> {
    let bad = || {
        Error::Invalid(format!(
            "{s:?} is not a span like 7d, 12h, 2y5m7d3h (y years, m months, w weeks, d days, h hours)"
        ))
    };
    let mut total = Duration::zero();
    let mut num = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            'y' => Duration::days(365),
            'm' => Duration::days(30),
            'w' => Duration::weeks(1),
            'd' => Duration::days(1),
            'h' => Duration::hours(1),
            _ => return Err(bad()),
        };
        total += unit * n.try_into().map_err(|_| bad())?;
    }
    if !num.is_empty() || total.is_zero() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Summary, SNAPSHOT_VERSION};

    fn snap(kind: &str, time: &str, days: Option<u32>, tags: &[&str]) -> (Id, Snapshot) {
        (
            Id::random(),
            Snapshot {
                version: SNAPSHOT_VERSION,
                time: time.into(),
                start: time.into(),
                end: time.into(),
                host: "h".into(),
                environment: "e".into(),
                kind: kind.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                retention_days: days,
                tool_version: "0".into(),
                imported_from: None,
                original: None,
                parts: vec![],
                summary: Summary::default(),
            },
        )
    }

    fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2024-12-31T12:00:00+00:00").unwrap()
    }

    #[test]
    fn override_days_replace_recorded_retention() {
        let s = vec![
            snap("full", "2024-12-20T02:00:00+00:00", Some(30), &[]),
            snap("full", "2024-12-29T02:00:00+00:00", Some(30), &[]),
            snap("bulk", "2024-12-20T02:00:00+00:00", Some(30), &[]),
            snap("bulk", "2024-12-29T02:00:00+00:00", Some(30), &[]),
        ];
        let mut p = Policy::default();
        p.override_days.insert("full".into(), 7);
        let d = apply(&s, &p, now());
        let keep: Vec<bool> = d.iter().map(|x| x.keep).collect();
        assert_eq!(keep, [false, true, true, true], "only full is overridden");
        assert_eq!(d[0].retention_days, Some(7));
    }

    #[test]
    fn retention_days_and_newest_of_type() {
        let s = vec![
            snap("full", "2024-12-20T02:00:00+00:00", Some(7), &[]),
            snap("full", "2024-12-29T02:00:00+00:00", Some(7), &[]),
            snap("bulk", "2024-10-01T02:00:00+00:00", Some(30), &[]),
            snap("vectors", "2024-12-30T02:00:00+00:00", None, &[]),
            snap("vectors", "2024-12-01T02:00:00+00:00", None, &["keep"]),
        ];
        let mut p = Policy::default();
        p.retention_days.insert("vectors".into(), 3);
        p.rules.tags = vec!["keep".into()];
        let d = apply(&s, &p, now());
        let keep: Vec<bool> = d.iter().map(|x| x.keep).collect();
        assert_eq!(keep, [false, true, true, true, true]);
        assert!(d[2].reasons[0].contains("newest"), "{:?}", d[2].reasons);
        assert_eq!(d[3].retention_days, Some(3));
        assert!(d[4].reasons.iter().any(|r| r.contains("tag")));
        assert!(d[0].reasons.is_empty());
    }

    #[test]
    fn calendar_rules_keep_newest_per_bucket() {
        let s = vec![
            snap("full", "2024-12-01T01:00:00+00:00", Some(0), &[]),
            snap("full", "2024-12-01T05:00:00+00:00", Some(0), &[]),
            snap("full", "2024-12-02T05:00:00+00:00", Some(0), &[]),
            snap("full", "2024-11-15T05:00:00+00:00", Some(0), &[]),
            snap("full", "2023-06-15T05:00:00+00:00", Some(0), &[]),
        ];
        let mut p = Policy::default();
        p.rules.daily = Some(2);
        p.rules.monthly = Some(2);
        p.rules.yearly = Some(5);
        let d = apply(&s, &p, now());
        let keep: Vec<bool> = d.iter().map(|x| x.keep).collect();
        // Daily: 12-02 and 12-01 05:00; monthly: Dec (12-02) and Nov;
        // yearly: 2024 (12-02) and 2023.
        assert_eq!(keep, [false, true, true, true, true]);
    }

    #[test]
    fn spans_parse() {
        assert_eq!(parse_span("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_span("1y2m").unwrap(), Duration::days(425));
        assert!(parse_span("7").is_err());
        assert!(parse_span("x").is_err());
        assert!(parse_span("").is_err());
    }
}
