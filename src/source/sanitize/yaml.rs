//! Block YAML: a line scanner that tracks the key path by indentation.
//! It understands block mappings and sequences, plain, quoted and block
//! (`|`, `>`) scalars, anchors, tags, comments and several documents, and
//! hands flow collections to the flow scanner. A secret key's whole value
//! (scalar or nested collection) becomes one span. Syntax it does not know
//! (`?` complex keys, tab indentation) is an error.

use super::flow::{key_text, Flow, Kind};
use super::{env_item_span, syntax, Found, ScanError, Span};

/// One open level: a key (its column and name) or a sequence item (`[]`).
struct Level {
    indent: usize,
    name: String,
    seq: bool,
}

fn line_end(s: &[u8], from: usize) -> usize {
    s[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(s.len(), |p| from + p)
}

fn is_blank_or_comment(s: &[u8], from: usize, to: usize) -> bool {
    let mut i = from;
    while i < to && matches!(s[i], b' ' | b'\t' | b'\r') {
        i += 1;
    }
    i == to || (s[i] == b'#' && (i == from || matches!(s[i - 1], b' ' | b'\t')))
}

fn indent_of(s: &[u8], from: usize, to: usize) -> usize {
    s[from..to].iter().take_while(|&&b| b == b' ').count()
}

fn path_of(stack: &[Level], key: &str) -> String {
    let mut p = String::new();
    for l in stack {
        if l.seq {
            p.push_str("[]");
        } else {
            if !p.is_empty() {
                p.push('.');
            }
            p.push_str(&l.name);
        }
    }
    if !key.is_empty() {
        if !p.is_empty() {
            p.push('.');
        }
        p.push_str(key);
    }
    p
}

/// Finds the values of secret keys.
pub(super) fn scan(s: &[u8], is_secret: &dyn Fn(&str) -> bool) -> Result<Found, ScanError> {
    let mut found = Found::default();
    let mut stack: Vec<Level> = Vec::new();
    let mut pos = 0;
    while pos < s.len() {
        let eol = line_end(s, pos);
        if is_blank_or_comment(s, pos, eol) {
            pos = eol + 1;
            continue;
        }
        let line = &s[pos..eol];
        if line.starts_with(b"%") {
            pos = eol + 1;
            continue;
        }
        if line.starts_with(b"---") || line.starts_with(b"...") {
            if line.len() > 3 && !is_blank_or_comment(s, pos + 3, eol) {
                return Err(syntax(s, pos, "content on a document marker line"));
            }
            stack.clear();
            pos = eol + 1;
            continue;
        }
        let mut cur = pos + indent_of(s, pos, eol);
        if s[cur] == b'\t' {
            return Err(syntax(s, pos, "tab in indentation"));
        }
        let mut dashed = false;
        let mut dash_col = 0;
        // Each `- ` opens a sequence item; the content after it is indented
        // to its column.
        while cur < eol
            && s[cur] == b'-'
            && matches!(s.get(cur + 1), None | Some(b' ' | b'\n' | b'\r'))
        {
            let col = cur - pos;
            stack.retain(|l| l.indent < col || (l.indent == col && !l.seq));
            stack.push(Level {
                indent: col,
                name: String::new(),
                seq: true,
            });
            dashed = true;
            dash_col = col;
            cur += 1;
            while cur < eol && s[cur] == b' ' {
                cur += 1;
            }
        }
        if cur >= eol || is_blank_or_comment(s, cur, eol) {
            pos = eol + 1;
            continue;
        }
        if s[cur] == b'\t' {
            return Err(syntax(s, cur, "tab in indentation"));
        }
        let col = cur - pos;
        if !dashed {
            stack.retain(|l| l.indent < col);
        }
        if s[cur] == b'?' && matches!(s.get(cur + 1), None | Some(b' ' | b'\n')) {
            return Err(syntax(s, cur, "complex mapping keys (?) are not supported"));
        }
        let parent = if dashed { dash_col } else { col };
        match key_at(s, cur, eol) {
            Some((key, after_colon)) => {
                let full = path_of(&stack, &key);
                let secret = is_secret(&key);
                stack.push(Level {
                    indent: col,
                    name: key,
                    seq: false,
                });
                let (next, span) =
                    value(s, after_colon, col, secret, &full, is_secret, &mut found)?;
                if let Some(span) = span {
                    found.add(span, full);
                }
                pos = next;
            }
            None => {
                // A scalar or flow collection on its own (sequence item or
                // whole document): walk it, only its nested keys matter.
                let full = path_of(&stack, "");
                let flow = matches!(s[cur], b'{' | b'[');
                // Asking for the span as if secret gives the scalar's extent,
                // to look for `KEY=value` items.
                let (next, span) = value(
                    s,
                    cur,
                    parent,
                    dashed && !flow,
                    &full,
                    is_secret,
                    &mut found,
                )?;
                if let Some(span) = span {
                    env_item_span(s, span, &full, is_secret, &mut found);
                }
                pos = next;
            }
        }
    }
    Ok(found)
}

/// `key:` at `at` (plain or quoted key followed by `:` and a space or the
/// line end): the key text and the position after the colon.
fn key_at(s: &[u8], at: usize, eol: usize) -> Option<(String, usize)> {
    let colon_ok = |i: usize| {
        s.get(i) == Some(&b':') && (i + 1 >= eol || matches!(s[i + 1], b' ' | b'\t' | b'\r'))
    };
    match s[at] {
        q @ (b'"' | b'\'') => {
            let mut j = at + 1;
            while j < eol {
                match s[j] {
                    b'\\' if q == b'"' => j += 2,
                    b'\'' if q == b'\'' && s.get(j + 1) == Some(&b'\'') => j += 2,
                    b if b == q => break,
                    _ => j += 1,
                }
            }
            if j >= eol {
                return None;
            }
            let mut k = j + 1;
            while k < eol && s[k] == b' ' {
                k += 1;
            }
            colon_ok(k).then(|| (key_text(&s[at..=j], q), k + 1))
        }
        b'[' | b'{' | b'|' | b'>' | b'*' | b'&' | b'!' | b'#' | b'@' | b'`' => None,
        _ => {
            let mut j = at;
            while j < eol {
                if s[j] == b'#' && j > at && matches!(s[j - 1], b' ' | b'\t') {
                    return None;
                }
                if colon_ok(j) {
                    let key = String::from_utf8_lossy(&s[at..j]).trim_end().to_string();
                    return Some((key, j + 1));
                }
                j += 1;
            }
            None
        }
    }
}

/// Where the lines belonging to a value end: following lines that are
/// blank, comments, or indented deeper than `parent` (or, when `dashes`,
/// sequence items at `parent`'s column). Returns the end of the last
/// content line (or `from` when there is none) and the next line's start.
fn extent(
    s: &[u8],
    from_line: usize,
    fallback_end: usize,
    parent: usize,
    dashes: bool,
) -> (usize, usize) {
    let mut end = fallback_end;
    let mut next = from_line;
    let mut pos = from_line;
    while pos < s.len() {
        let eol = line_end(s, pos);
        if is_blank_or_comment(s, pos, eol) {
            pos = eol + 1;
            continue;
        }
        let ind = indent_of(s, pos, eol);
        let dash = dashes
            && ind == parent
            && s[pos + ind] == b'-'
            && matches!(s.get(pos + ind + 1), None | Some(b' ' | b'\n' | b'\r'));
        if ind <= parent && !dash {
            break;
        }
        end = eol;
        while end > pos && matches!(s[end - 1], b' ' | b'\t' | b'\r') {
            end -= 1;
        }
        pos = eol + 1;
        next = pos;
    }
    (end, next.max(from_line))
}

/// The value starting at `at` (after a key's colon, or a bare item) of a
/// key at column `parent`. Returns where scanning resumes and, when
/// `secret`, the value's span (None for null and empty values).
#[allow(clippy::too_many_arguments)]
fn value(
    s: &[u8],
    at: usize,
    parent: usize,
    secret: bool,
    path: &str,
    is_secret: &dyn Fn(&str) -> bool,
    found: &mut Found,
) -> Result<(usize, Option<Span>), ScanError> {
    let eol = line_end(s, at);
    let next_line = (eol + 1).min(s.len());
    let mut v = at;
    while v < eol && matches!(s[v], b' ' | b'\t') {
        v += 1;
    }
    let start = v;
    // Anchors and tags come before the value proper.
    while v < eol && matches!(s[v], b'&' | b'!') {
        while v < eol && !matches!(s[v], b' ' | b'\t' | b'\r') {
            v += 1;
        }
        while v < eol && matches!(s[v], b' ' | b'\t') {
            v += 1;
        }
    }
    let span = |end: usize, quote: u8| Span { start, end, quote };
    if v >= eol || is_blank_or_comment(s, v, eol) {
        // Nested block (or null). Only a secret's block is skipped here;
        // otherwise the main loop walks into it.
        if !secret {
            return Ok((next_line, None));
        }
        let (end, next) = extent(s, next_line, at, parent, true);
        let content = end > at && !is_blank_or_comment(s, at, end);
        return Ok((
            next,
            content.then_some(Span {
                start: at,
                end,
                quote: b' ',
            }),
        ));
    }
    match s[v] {
        b'|' | b'>' => {
            let (end, next) = extent(s, next_line, eol, parent, false);
            let has_content = end > eol;
            Ok((next, (secret && has_content).then(|| span(end, 0))))
        }
        b'{' | b'[' => {
            let mut f = Flow {
                s,
                pos: v,
                yaml: true,
                is_secret,
                found,
            };
            let (fs, _) = f.value(path, 1, secret)?;
            let feol = line_end(s, fs.end);
            if !is_blank_or_comment(s, fs.end, feol) {
                return Err(syntax(s, fs.end, "text after a flow collection"));
            }
            Ok(((feol + 1).min(s.len()), secret.then(|| span(fs.end, 0))))
        }
        q @ (b'"' | b'\'') => {
            let mut f = Flow {
                s,
                pos: v,
                yaml: true,
                is_secret,
                found,
            };
            let (fs, kind) = f.value(path, 1, true)?;
            let feol = line_end(s, fs.end);
            if !is_blank_or_comment(s, fs.end, feol) {
                return Err(syntax(s, fs.end, "text after a quoted value"));
            }
            let quote = if start == v { q } else { 0 };
            let keep = secret && kind == Kind::Value;
            Ok(((feol + 1).min(s.len()), keep.then(|| span(fs.end, quote))))
        }
        _ => {
            // Plain scalar, possibly continued on deeper-indented lines.
            let mut end = v;
            let mut j = v;
            while j < eol {
                if s[j] == b'#' && matches!(s[j - 1], b' ' | b'\t') {
                    break;
                }
                if !matches!(s[j], b' ' | b'\t' | b'\r') {
                    end = j + 1;
                }
                j += 1;
            }
            let (end, next) = extent(s, next_line, end, parent, false);
            let text = &s[v..end];
            let null = matches!(text, b"~" | b"null" | b"Null" | b"NULL");
            Ok((next, (secret && !null).then(|| span(end, 0))))
        }
    }
}
