//! Legacy archive names: `opc_backup_<type>_<YYYYMMDD_HHMMSS>.tar.gz`,
//! the time being the wall-clock time of the host that took the backup.

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, TimeZone};

const PREFIX: &str = "opc_backup_";
const TIME_FORMAT: &str = "%Y%m%d_%H%M%S";

/// The backup name (file name without `.tar.gz`) for `kind` at `time`,
/// using the wall-clock time in the snapshot's own offset.
pub fn backup_name(kind: &str, time: &DateTime<FixedOffset>) -> String {
    format!("{PREFIX}{kind}_{}", time.format(TIME_FORMAT))
}

/// Type and time parsed from a backup name or archive file name; the time
/// is read as this host's local time, as the legacy scripts wrote it.
pub fn parse_backup_name(name: &str) -> Option<(String, DateTime<FixedOffset>)> {
    let stem = strip_archive_suffix(name);
    let rest = stem.strip_prefix(PREFIX)?;
    // The type may itself contain `_`: the time is the last 15 characters.
    if rest.len() < 17 || !rest.is_char_boundary(rest.len() - 15) {
        return None;
    }
    let (kind, time) = rest.split_at(rest.len() - 15);
    let kind = kind.strip_suffix('_')?;
    if kind.is_empty() {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(time, TIME_FORMAT).ok()?;
    let local = Local.from_local_datetime(&naive).earliest()?;
    Some((kind.to_string(), local.fixed_offset()))
}

/// `name` without a `.tar.gz` or `.tgz` suffix.
pub fn strip_archive_suffix(name: &str) -> &str {
    name.strip_suffix(".tar.gz")
        .or_else(|| name.strip_suffix(".tgz"))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let t = DateTime::parse_from_rfc3339("2024-12-01T02:00:00+01:00").unwrap();
        let n = backup_name("full", &t);
        assert_eq!(n, "opc_backup_full_20241201_020000");
        let (kind, parsed) = parse_backup_name(&format!("{n}.tar.gz")).unwrap();
        assert_eq!(kind, "full");
        assert_eq!(parsed.naive_local(), t.naive_local());
        let (kind, _) = parse_backup_name("opc_backup_my_part_20240101_000000.tgz").unwrap();
        assert_eq!(kind, "my_part");
    }

    #[test]
    fn bad_names_are_refused() {
        for n in [
            "opc_backup_full.tar.gz",
            "backup_full_20241201_020000.tar.gz",
            "opc_backup__20241201_020000.tar.gz",
            "opc_backup_full_20241301_020000.tar.gz",
            "opc_backup_fullé20241201_02000",
        ] {
            assert!(parse_backup_name(n).is_none(), "{n}");
        }
    }
}
