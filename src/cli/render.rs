//! Text rendering helpers shared by commands.

use opc_store::snapshot::{Node, NodeKind};

/// `drwxr-xr-x`-style mode string.
pub fn mode_string(n: &Node) -> String {
    let t = match n.kind {
        NodeKind::Dir => 'd',
        NodeKind::Symlink => 'l',
        NodeKind::Fifo => 'p',
        NodeKind::Chardev => 'c',
        NodeKind::Blockdev => 'b',
        NodeKind::Socket => 's',
        NodeKind::File => '-',
    };
    let mut s = String::from(t);
    for shift in [6, 3, 0] {
        let bits = (n.mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// Local time of a nanosecond timestamp.
pub fn time_ns(ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .map(|t| {
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    })
    .unwrap_or_else(|| "?".into())
}

/// A path's bytes for display: lossless when UTF-8, escaped otherwise, and
/// control characters (newlines in names) escaped so one entry is one line.
pub fn path(p: &[u8]) -> String {
    let mut out = String::new();
    for chunk in p.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The snapshot time shown in lists: `2024-12-01 02:00:00`.
pub fn snapshot_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// One line on a hook that ran: `hook app.before: ok (0.2s)`.
pub fn hook_run(h: &opc_store::source::HookRun) -> String {
    let state = if h.ok { "ok" } else { "FAILED" };
    format!("hook {}: {state} ({:.1}s)", h.hook, h.seconds)
}

/// A time to the minute for tables: `2024-12-01 02:00`.
pub fn minute_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// A coarse age for tables: `45s`, `12m`, `5h03m`, `3d04h`.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_are_coarse_and_never_negative() {
        assert_eq!(super::age(-5), "0s");
        assert_eq!(super::age(59), "59s");
        assert_eq!(super::age(61), "1m");
        assert_eq!(super::age(3 * 3600 + 5 * 60), "3h05m");
        assert_eq!(super::age(2 * 86_400 + 7 * 3600), "2d07h");
    }
}
