//! `.env` files: `[export] KEY=value` lines, comments and blank lines.
//! Values may be unquoted (up to ` #` or the line end), or single- or
//! double-quoted (possibly over several lines). Other lines are kept, but
//! one naming a secret-looking key is an error: it could be a secret in a
//! dialect we do not parse.

use super::{syntax, Found, ScanError, Span};

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\r'
}

/// Finds the values of secret keys.
pub(super) fn scan(s: &[u8], is_secret: &dyn Fn(&str) -> bool) -> Result<Found, ScanError> {
    let mut found = Found::default();
    let mut pos = 0;
    while pos < s.len() {
        let eol = line_end(s, pos);
        let mut i = pos;
        while i < eol && is_space(s[i]) {
            i += 1;
        }
        if i == eol || s[i] == b'#' {
            pos = eol + 1;
            continue;
        }
        if s[i..eol].starts_with(b"export") && s.get(i + 6).is_some_and(|&b| is_space(b)) {
            i += 6;
            while i < eol && is_space(s[i]) {
                i += 1;
            }
        }
        let key_start = i;
        while i < eol && (s[i].is_ascii_alphanumeric() || matches!(s[i], b'_' | b'.' | b'-')) {
            i += 1;
        }
        let key = String::from_utf8_lossy(&s[key_start..i]).into_owned();
        while i < eol && is_space(s[i]) {
            i += 1;
        }
        if key.is_empty() || i == eol || s[i] != b'=' {
            // Not an assignment: kept, unless it names a secret-looking key
            // (`PASSWORD: x` in another dialect), which we cannot place.
            let mentions = s[pos..eol]
                .split(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
                .any(|w| !w.is_empty() && is_secret(&String::from_utf8_lossy(w)));
            if mentions {
                return Err(syntax(
                    s,
                    pos,
                    "a line that is not KEY=value names a secret key",
                ));
            }
            pos = eol + 1;
            continue;
        }
        i += 1;
        while i < eol && is_space(s[i]) && s[i] != b'\r' {
            i += 1;
        }
        let (span, next) = value(s, i, eol)?;
        if span.end > span.start + usize::from(span.quote != 0) * 2 && is_secret(&key) {
            found.add(span, key);
        }
        pos = next;
    }
    Ok(found)
}

fn line_end(s: &[u8], from: usize) -> usize {
    s[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(s.len(), |p| from + p)
}

/// The value starting at `i` (on a line ending at `eol`) and where the
/// next line starts.
fn value(s: &[u8], i: usize, eol: usize) -> Result<(Span, usize), ScanError> {
    match s.get(i) {
        Some(&q @ (b'"' | b'\'')) => {
            let mut j = i + 1;
            loop {
                match s.get(j) {
                    None => return Err(syntax(s, i, "quoted value is never closed")),
                    Some(b'\\') if q == b'"' => j += 2,
                    Some(&b) if b == q => break,
                    Some(_) => j += 1,
                }
            }
            let end = j + 1;
            let eol = line_end(s, end.min(s.len()));
            let mut k = end;
            while k < eol && is_space(s[k]) {
                k += 1;
            }
            if k < eol && s[k] != b'#' {
                return Err(syntax(s, end, "text after a quoted value"));
            }
            Ok((
                Span {
                    start: i,
                    end,
                    quote: q,
                },
                eol + 1,
            ))
        }
        _ => {
            // Unquoted: a comment starts at whitespace + '#'.
            let mut end = i;
            let mut j = i;
            while j < eol {
                if s[j] == b'#' && j > i && is_space(s[j - 1]) {
                    break;
                }
                if !is_space(s[j]) {
                    end = j + 1;
                }
                j += 1;
            }
            Ok((
                Span {
                    start: i,
                    end,
                    quote: 0,
                },
                eol + 1,
            ))
        }
    }
}
