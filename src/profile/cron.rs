//! Five-field cron expressions (`minute hour day-of-month month day-of-week`),
//! as in `backup-config.yml`'s `schedules:`: parsing, the next run after a
//! given time, and translation to systemd `OnCalendar=` values.
//!
//! Accepted: `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n`, `a-b/n`
//! and `a/n`, month and weekday names (`jan`, `sun`), weekday 7 for Sunday,
//! and the macros `@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`,
//! `@yearly`, `@annually`. Refused with a message saying why: `@reboot`,
//! six- or seven-field forms (seconds, years) and the non-standard `L`, `W`,
//! `#` and `?`.
//!
//! Day matching follows Vixie cron: when both day-of-month and day-of-week
//! are restricted (neither starts with `*`), a day matches if either does;
//! otherwise both must.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone};

use crate::error::{Error, Result};

/// How far ahead a run is looked for: 28 years, one full cycle of
/// weekdays against leap years, so any satisfiable expression is found.
const SEARCH_DAYS: i64 = 366 * 28 + 7;

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronExpr {
    text: String,
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    doms: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, 0 = Sunday.
    dows: u8,
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
/// systemd's weekday names, indexed by cron weekday (0 = Sunday).
const SYSTEMD_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

fn err(text: &str, why: impl std::fmt::Display) -> Error {
    Error::Config(format!("cron expression {text:?}: {why}"))
}

/// One field's allowed values and names.
struct Field {
    name: &'static str,
    lo: u32,
    hi: u32,
    names: &'static [&'static str],
    /// Value of the first name (`jan` = 1, `sun` = 0).
    names_from: u32,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        lo: 0,
        hi: 59,
        names: &[],
        names_from: 0,
    },
    Field {
        name: "hour",
        lo: 0,
        hi: 23,
        names: &[],
        names_from: 0,
    },
    Field {
        name: "day of month",
        lo: 1,
        hi: 31,
        names: &[],
        names_from: 0,
    },
    Field {
        name: "month",
        lo: 1,
        hi: 12,
        names: &MONTHS,
        names_from: 1,
    },
    Field {
        name: "day of week",
        lo: 0,
        hi: 7,
        names: &DAYS,
        names_from: 0,
    },
];

impl Field {
    fn value(&self, text: &str, s: &str) -> Result<u32> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            return Ok(self.names_from + i as u32);
        }
        let upper = s.to_ascii_uppercase();
        for (c, what) in [
            ('L', "L (last day)"),
            ('W', "W (nearest weekday)"),
            ('#', "# (n-th weekday of the month)"),
            ('?', "? (no specific value)"),
        ] {
            if upper.contains(c) {
                return Err(err(
                    text,
                    format!(
                        "{}: the non-standard {what} cannot be translated to systemd or cron.d; \
                         use standard five-field cron (numbers, names, *, a-b, a,b, */n)",
                        self.name
                    ),
                ));
            }
        }
        let v: u32 = s.parse().map_err(|_| {
            err(
                text,
                format!(
                    "{}: {s:?} is not a number{}",
                    self.name,
                    if self.names.is_empty() {
                        String::new()
                    } else {
                        format!(" or a name ({}, ...)", self.names[..3].join(", "))
                    }
                ),
            )
        })?;
        if v < self.lo || v > self.hi {
            return Err(err(
                text,
                format!("{}: {v} is outside {}-{}", self.name, self.lo, self.hi),
            ));
        }
        Ok(v)
    }

    /// The set of values of one field, as a bit mask.
    fn parse(&self, text: &str, field: &str) -> Result<u64> {
        let mut bits = 0u64;
        for item in field.split(',') {
            if item.is_empty() {
                return Err(err(text, format!("{}: empty list item", self.name)));
            }
            let (base, step) = match item.split_once('/') {
                Some((b, s)) => {
                    let n: u32 = s.parse().map_err(|_| {
                        err(text, format!("{}: step {s:?} is not a number", self.name))
                    })?;
                    if n == 0 {
                        return Err(err(text, format!("{}: a step of 0", self.name)));
                    }
                    (b, n)
                }
                None => (item, 1),
            };
            let (a, b) = if base == "*" {
                (self.lo, if self.hi == 7 { 6 } else { self.hi })
            } else if let Some((x, y)) = base.split_once('-') {
                let (x, y) = (self.value(text, x)?, self.value(text, y)?);
                if x > y {
                    return Err(err(
                        text,
                        format!(
                            "{}: range {base} goes downward; write it as two ranges",
                            self.name
                        ),
                    ));
                }
                (x, y)
            } else {
                let x = self.value(text, base)?;
                // `a/n` means from a to the end, stepping n.
                (x, if step > 1 { self.hi } else { x })
            };
            let mut v = a;
            while v <= b {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok(bits)
    }
}

impl CronExpr {
    /// Parses an expression; errors are [`Error::Config`] naming the
    /// expression and what is wrong or not translatable.
    pub fn parse(text: &str) -> Result<CronExpr> {
        let t = text.trim();
        let expanded =
            match t.to_ascii_lowercase().as_str() {
                "@yearly" | "@annually" => "0 0 1 1 *",
                "@monthly" => "0 0 1 * *",
                "@weekly" => "0 0 * * 0",
                "@daily" | "@midnight" => "0 0 * * *",
                "@hourly" => "0 * * * *",
                "@reboot" => {
                    return Err(err(
                        text,
                        "@reboot runs at boot, not on a calendar: a timer cannot express it; \
                     give a five-field schedule",
                    ))
                }
                m if m.starts_with('@') => return Err(err(
                    text,
                    "unknown macro; use @hourly, @daily, @weekly, @monthly, @yearly or five fields",
                )),
                _ => t,
            };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            let hint = if fields.len() == 6 || fields.len() == 7 {
                " (seconds or years are not supported)"
            } else {
                ""
            };
            return Err(err(
                text,
                format!(
                    "has {} fields{hint}; give five: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\"",
                    fields.len()
                ),
            ));
        }
        let mut sets = [0u64; 5];
        for (i, f) in FIELDS.iter().enumerate() {
            sets[i] = f.parse(text, fields[i])?;
        }
        // Weekday 7 is Sunday.
        let mut dows = sets[4];
        if dows & (1 << 7) != 0 {
            dows = (dows & !(1 << 7)) | 1;
        }
        let e = CronExpr {
            text: t.to_string(),
            minutes: sets[0],
            hours: sets[1] as u32,
            doms: sets[2] as u32,
            months: sets[3] as u16,
            dows: dows as u8,
            dom_star: fields[2].starts_with('*'),
            dow_star: fields[4].starts_with('*'),
        };
        let from = chrono::Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        if e.next_after_in(&from).is_none() {
            return Err(err(
                text,
                "never matches a date (e.g. 30 or 31 February); fix the day or the month",
            ));
        }
        Ok(e)
    }

    /// The expression as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.doms & (1 << d.day()) != 0;
        let dow = self.dows & (1 << d.weekday().num_days_from_sunday()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first time strictly after `after` at which the expression fires,
    /// in `after`'s time zone; `None` if there is none within 28 years.
    ///
    /// Daylight saving time: a wall-clock time skipped when clocks go
    /// forward does not fire that day; one that happens twice when clocks go
    /// back fires once, at its first occurrence.
    pub fn next_after_in<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = after.timezone();
        // Start a day early: near a DST change the local date of `after`
        // and of the next run may differ from naive expectations.
        let start = after.naive_local().date().pred_opt()?;
        for i in 0..SEARCH_DAYS {
            let day = start.checked_add_signed(Duration::days(i))?;
            if !self.day_matches(day) {
                continue;
            }
            for h in (0..24).filter(|h| self.hours & (1 << h) != 0) {
                for m in (0..60).filter(|m| self.minutes & (1u64 << m) != 0) {
                    let ndt: NaiveDateTime = day.and_hms_opt(h, m, 0)?;
                    let t = match tz.from_local_datetime(&ndt) {
                        LocalResult::Single(t) => t,
                        LocalResult::Ambiguous(first, _) => first,
                        LocalResult::None => continue,
                    };
                    if t > *after {
                        return Some(t);
                    }
                }
            }
        }
        None
    }

    /// The systemd `OnCalendar=` values equivalent to this expression: one,
    /// or two when both day fields are restricted (cron then fires on either,
    /// systemd requires both within one value; several values are or-ed).
    pub fn on_calendar(&self) -> Vec<String> {
        let time = format!(
            "{}:{}:00",
            render(self.hours as u64, 0, 23),
            render(self.minutes, 0, 59)
        );
        let month = render(self.months as u64, 1, 12);
        let dom = render(self.doms as u64, 1, 31);
        let dow = render_weekdays(self.dows);
        if !self.dom_star && !self.dow_star {
            return vec![
                format!("{dow} *-{month}-* {time}"),
                format!("*-{month}-{dom} {time}"),
            ];
        }
        if dow == "*" {
            vec![format!("*-{month}-{dom} {time}")]
        } else {
            vec![format!("{dow} *-{month}-{dom} {time}")]
        }
    }
}

impl std::fmt::Display for CronExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The next run of cron expression `expr` after `after`, in local time;
/// `None` when the expression is invalid or never fires.
pub fn next_after(expr: &str, after: DateTime<chrono::Local>) -> Option<DateTime<chrono::Local>> {
    CronExpr::parse(expr).ok()?.next_after_in(&after)
}

/// A set of numbers in systemd calendar syntax: `*`, `S/N` (from S to the
/// end in steps of N), or a list of values and `a..b` ranges, two digits each.
fn render(bits: u64, lo: u32, hi: u32) -> String {
    let vals: Vec<u32> = (lo..=hi).filter(|v| bits & (1u64 << v) != 0).collect();
    if vals.len() as u32 == hi - lo + 1 {
        return "*".into();
    }
    if vals.len() >= 3 {
        let step = vals[1] - vals[0];
        let last = *vals.last().unwrap();
        if step > 1 && vals.windows(2).all(|w| w[1] - w[0] == step) && last + step > hi {
            return format!("{:02}/{step}", vals[0]);
        }
    }
    runs(&vals)
        .iter()
        .map(|&(a, b)| match b - a {
            0 => format!("{a:02}"),
            1 => format!("{a:02},{b:02}"),
            _ => format!("{a:02}..{b:02}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Weekdays in systemd syntax, Monday first (systemd's order, so that
/// ranges such as `Mon..Fri` never wrap).
fn render_weekdays(bits: u8) -> String {
    if bits & 0x7f == 0x7f {
        return "*".into();
    }
    // Positions 0..7 = Mon..Sun.
    let order: Vec<u32> = (0..7)
        .filter(|i| bits & (1 << ((i + 1) % 7)) != 0)
        .collect();
    let name = |i: u32| SYSTEMD_DAYS[((i + 1) % 7) as usize];
    runs(&order)
        .iter()
        .map(|&(a, b)| match b - a {
            0 => name(a).to_string(),
            1 => format!("{},{}", name(a), name(b)),
            _ => format!("{}..{}", name(a), name(b)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Consecutive runs of sorted values.
fn runs(vals: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &v in vals {
        match out.last_mut() {
            Some((_, b)) if *b + 1 == v => *b = v,
            _ => out.push((v, v)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, NaiveDate, Offset, Utc};

    fn utc(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
    }

    fn next(expr: &str, after: &str) -> String {
        CronExpr::parse(expr)
            .unwrap()
            .next_after_in(&utc(after))
            .unwrap()
            .format("%Y-%m-%d %H:%M %a")
            .to_string()
    }

    #[test]
    fn legacy_schedules() {
        // 2024-12-01 is a Sunday.
        assert_eq!(
            next("0 2 * * *", "2024-12-01 01:59"),
            "2024-12-01 02:00 Sun"
        );
        assert_eq!(
            next("0 2 * * *", "2024-12-01 02:00"),
            "2024-12-02 02:00 Mon"
        );
        assert_eq!(
            next("0 */6 * * *", "2024-12-01 00:00"),
            "2024-12-01 06:00 Sun"
        );
        assert_eq!(
            next("0 */6 * * *", "2024-12-01 18:00"),
            "2024-12-02 00:00 Mon"
        );
        assert_eq!(
            next("0 3 * * *", "2024-12-31 03:30"),
            "2025-01-01 03:00 Wed"
        );
        assert_eq!(
            next("0 1 * * 0", "2024-12-01 01:00"),
            "2024-12-08 01:00 Sun"
        );
        assert_eq!(
            next("0 1 * * 7", "2024-12-02 00:00"),
            "2024-12-08 01:00 Sun"
        );
        assert_eq!(
            next("0 1 * * sun", "2024-11-30 23:59"),
            "2024-12-01 01:00 Sun"
        );
    }

    #[test]
    fn strictly_after_and_seconds_ignored() {
        let e = CronExpr::parse("30 * * * *").unwrap();
        let t = utc("2024-03-01 10:30") + Duration::seconds(1);
        assert_eq!(e.next_after_in(&t).unwrap(), utc("2024-03-01 11:30"));
        let t = utc("2024-03-01 10:29") + Duration::seconds(59);
        assert_eq!(e.next_after_in(&t).unwrap(), utc("2024-03-01 10:30"));
    }

    #[test]
    fn month_ends_and_leap_years() {
        assert_eq!(
            next("0 0 31 * *", "2024-04-01 00:00"),
            "2024-05-31 00:00 Fri"
        );
        assert_eq!(
            next("0 0 29 2 *", "2024-03-01 00:00"),
            "2028-02-29 00:00 Tue"
        );
        assert_eq!(
            next("0 0 30 * *", "2025-01-30 00:00"),
            "2025-03-30 00:00 Sun"
        );
        assert_eq!(
            next("59 23 31 12 *", "2024-12-31 23:59"),
            "2025-12-31 23:59 Wed"
        );
        assert_eq!(
            next("0 12 1 jan,jul *", "2024-01-01 12:00"),
            "2024-07-01 12:00 Mon"
        );
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // Both restricted: either (the 13th or any Friday).
        assert_eq!(
            next("0 0 13 * 5", "2024-09-01 00:00"),
            "2024-09-06 00:00 Fri"
        );
        assert_eq!(
            next("0 0 13 * 5", "2024-09-10 00:00"),
            "2024-09-13 00:00 Fri"
        );
        assert_eq!(
            next("0 0 13 * 5", "2024-10-05 00:00"),
            "2024-10-11 00:00 Fri"
        );
        assert_eq!(
            next("0 0 13 * 5", "2024-10-11 00:00"),
            "2024-10-13 00:00 Sun"
        );
        // A field starting with `*` is unrestricted for this rule: both.
        assert_eq!(
            next("0 0 */2 * 1", "2024-09-01 00:00"),
            "2024-09-09 00:00 Mon"
        );
        assert_eq!(
            next("0 0 * * mon-fri", "2024-09-06 00:00"),
            "2024-09-09 00:00 Mon"
        );
    }

    #[test]
    fn steps_ranges_and_lists() {
        assert_eq!(
            next("*/15 9-17/4 * * *", "2024-01-01 09:45"),
            "2024-01-01 13:00 Mon"
        );
        assert_eq!(
            next("5/20 * * * *", "2024-01-01 09:45"),
            "2024-01-01 10:05 Mon"
        );
        assert_eq!(
            next("0,30 22 * * *", "2024-01-01 22:00"),
            "2024-01-01 22:30 Mon"
        );
        assert_eq!(next("@weekly", "2024-01-01 00:00"), "2024-01-07 00:00 Sun");
        assert_eq!(next("@hourly", "2024-01-01 00:00"), "2024-01-01 01:00 Mon");
    }

    #[test]
    fn refusals_say_why() {
        for (e, want) in [
            ("0 2 * *", "has 4 fields"),
            ("0 0 2 * * *", "seconds or years"),
            ("0 0 L * *", "L (last day)"),
            ("0 0 15W * *", "W (nearest weekday)"),
            ("0 0 * * 5#3", "n-th weekday"),
            ("0 0 ? * 1", "? (no specific"),
            ("@reboot", "@reboot"),
            ("61 * * * *", "minute: 61 is outside 0-59"),
            ("0 0 30 2 *", "never matches"),
            ("0 5-2 * * *", "goes downward"),
            ("0 */0 * * *", "step of 0"),
            ("0 x * * *", "hour: \"x\" is not a number"),
        ] {
            let msg = CronExpr::parse(e).unwrap_err().to_string();
            assert!(msg.contains(want), "{e}: {msg}");
            assert!(msg.contains(e), "{e}: {msg}");
        }
        // Names containing l / w are fine.
        CronExpr::parse("0 0 * jul wed").unwrap();
        assert!(next_after("nonsense", chrono::Local::now()).is_none());
    }

    #[test]
    fn on_calendar_forms() {
        let oc = |e: &str| CronExpr::parse(e).unwrap().on_calendar();
        assert_eq!(oc("0 2 * * *"), ["*-*-* 02:00:00"]);
        assert_eq!(oc("0 */6 * * *"), ["*-*-* 00/6:00:00"]);
        assert_eq!(oc("0 1 * * 0"), ["Sun *-*-* 01:00:00"]);
        assert_eq!(oc("*/15 9-17 * * 1-5"), ["Mon..Fri *-*-* 09..17:00/15:00"]);
        assert_eq!(oc("0 0 * * 0,6"), ["Sat,Sun *-*-* 00:00:00"]);
        assert_eq!(oc("0 0 * * 5-7"), ["Fri..Sun *-*-* 00:00:00"]);
        assert_eq!(oc("10,40 3 1 1,7 *"), ["*-01,07-01 03:10,40:00"]);
        assert_eq!(oc("0 0 13 * 5"), ["Fri *-*-* 00:00:00", "*-*-13 00:00:00"]);
        assert_eq!(oc("0 0 */2 * 1"), ["Mon *-*-01/2 00:00:00"]);
        assert_eq!(oc("0 9-17/4 * * *"), ["*-*-* 09,13,17:00:00"]);
    }

    /// A zone one hour ahead of UTC in winter and two in summer, switching
    /// like the EU: last Sunday of March and of October at 01:00 UTC.
    #[derive(Clone, Copy, Debug)]
    struct Eu;

    impl Eu {
        fn summer(utc: NaiveDateTime) -> bool {
            let y = utc.year();
            let last_sunday = |m: u32| {
                let d = NaiveDate::from_ymd_opt(y, m, 31).unwrap();
                d - Duration::days(d.weekday().num_days_from_sunday() as i64)
            };
            let start = last_sunday(3).and_hms_opt(1, 0, 0).unwrap();
            let end = last_sunday(10).and_hms_opt(1, 0, 0).unwrap();
            utc >= start && utc < end
        }
        fn off(summer: bool) -> FixedOffset {
            FixedOffset::east_opt(if summer { 7200 } else { 3600 }).unwrap()
        }
    }

    impl TimeZone for Eu {
        type Offset = FixedOffset;
        fn from_offset(_: &FixedOffset) -> Eu {
            Eu
        }
        fn offset_from_local_date(&self, _: &NaiveDate) -> LocalResult<FixedOffset> {
            unimplemented!()
        }
        fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<FixedOffset> {
            let cands: Vec<FixedOffset> = [false, true]
                .into_iter()
                .map(Eu::off)
                .filter(|o| {
                    let utc = *local - Duration::seconds(o.local_minus_utc() as i64);
                    Eu::off(Eu::summer(utc)) == *o
                })
                .collect();
            match cands[..] {
                [] => LocalResult::None,
                [o] => LocalResult::Single(o),
                // Winter (+1) is the later instant: summer time comes first.
                [w, s] => LocalResult::Ambiguous(s, w),
                _ => unreachable!(),
            }
        }
        fn offset_from_utc_date(&self, _: &NaiveDate) -> FixedOffset {
            unimplemented!()
        }
        fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> FixedOffset {
            Eu::off(Eu::summer(*utc)).fix()
        }
    }

    fn eu(s: &str) -> DateTime<Eu> {
        let n = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        Eu.from_local_datetime(&n).earliest().unwrap()
    }

    fn eu_next(expr: &str, after: DateTime<Eu>) -> String {
        CronExpr::parse(expr)
            .unwrap()
            .next_after_in(&after)
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn daylight_saving_time() {
        // 2024-03-31: 02:00 local jumps to 03:00. 02:30 does not exist.
        assert_eq!(
            eu_next("30 2 * * *", eu("2024-03-31 01:00")),
            "2024-04-01T02:30:00+02:00"
        );
        // Daily 02:00 keeps its wall-clock time across the change.
        assert_eq!(
            eu_next("0 3 * * *", eu("2024-03-30 03:00")),
            "2024-03-31T03:00:00+02:00"
        );
        // Every 6 hours: the 00:00 before and 06:00 after are 5 hours apart.
        assert_eq!(
            eu_next("0 */6 * * *", eu("2024-03-31 00:00")),
            "2024-03-31T06:00:00+02:00"
        );
        // 2024-10-27: 03:00 summer time goes back to 02:00. 02:30 happens
        // twice and fires once, the first time.
        let first = eu_next("30 2 * * *", eu("2024-10-27 01:00"));
        assert_eq!(first, "2024-10-27T02:30:00+02:00");
        let after_first = DateTime::parse_from_rfc3339(&first)
            .unwrap()
            .with_timezone(&Eu);
        assert_eq!(
            eu_next("30 2 * * *", after_first),
            "2024-10-28T02:30:00+01:00"
        );
        // Hourly runs go on through the repeated hour (its second pass
        // is skipped) and never go backwards.
        let e = CronExpr::parse("0 * * * *").unwrap();
        let mut t = eu("2024-10-26 23:30");
        for _ in 0..30 {
            let n = e.next_after_in(&t).unwrap();
            assert!(n > t);
            assert!(n - t <= Duration::hours(2), "{t} -> {n}");
            t = n;
        }
        assert_eq!(t.to_rfc3339(), "2024-10-28T05:00:00+01:00");
    }

    #[test]
    fn local_time_wrapper() {
        let now = chrono::Local::now();
        let n = next_after("0 2 * * *", now).unwrap();
        assert!(n > now && n - now <= Duration::hours(25));
        assert_eq!(n.format("%H:%M").to_string(), "02:00");
    }
}
