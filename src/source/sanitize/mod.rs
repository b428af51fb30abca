//! Sanitization: keeping secrets out of snapshots. A file is either left
//! alone, excluded (private keys, credential files), or redacted: in `.env`,
//! YAML and JSON files the values of secret keys (`*password*`, `*token*`,
//! ...) are replaced by [`PLACEHOLDER`] and every other byte is kept.
//!
//! Redaction never re-serializes a file. Small scanners find the byte span
//! of each secret value and only those spans are replaced. For YAML and
//! JSON a real parser then checks the result: the output must parse to the
//! original document with exactly the secret values replaced. When the
//! scanners cannot be sure (odd syntax, unparsable file, too large), the
//! caller excludes the file and warns: a missing file is recoverable, a
//! leaked secret is not.

mod env;
mod flow;
mod rules;
mod verify;
mod yaml;

pub use rules::{
    EnvFiles, SanitizeRules, Sanitizer, DEFAULT_EXCLUDE, DEFAULT_KEEP_KEYS, DEFAULT_REDACT_KEYS,
};

/// What replaces a secret value.
pub const PLACEHOLDER: &str = "<redacted by opc-store>";

/// Files recognised for redaction but larger than this are excluded with a
/// warning: redaction holds the whole file in memory.
pub const MAX_SCAN_BYTES: u64 = 16 * 1024 * 1024;

/// Deepest nesting the scanners follow; deeper files are excluded rather
/// than risking the stack.
const MAX_DEPTH: usize = 64;

/// The syntax of a file recognised for redaction (by its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `KEY=value` lines (`.env`, `.env.*`, `*.env`).
    Env,
    /// `*.yml`, `*.yaml`.
    Yaml,
    /// `*.json`.
    Json,
}

/// What to do with one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// Store it as it is.
    Keep,
    /// Leave it out; the string says which rule matched.
    Exclude(String),
    /// Replace the values of secret keys.
    Redact(Format),
}

/// The result of redacting one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redacted {
    /// The new content (equal to the input when `keys` is empty).
    pub data: Vec<u8>,
    /// Dotted paths of the keys whose values were replaced (`a.b.password`,
    /// `items[].apiKey`), in file order, without duplicates. Never values.
    pub keys: Vec<String>,
}

/// Why a file could not be redacted safely. The caller excludes it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScanError {
    /// The scanner met syntax it does not handle.
    #[error("line {line}: {what}; the file was left out rather than risk storing a secret (add it to sanitize.keep to store it unredacted)")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What was unexpected.
        what: String,
    },
    /// The parser rejected the file, or disagreed with the scanner.
    #[error("{0}; the file was left out rather than risk storing a secret (add it to sanitize.keep to store it unredacted)")]
    Unverified(String),
}

/// A byte range of the input holding one secret value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    start: usize,
    end: usize,
    /// The quote the value used (`"`, `'`), 0 when unquoted, a space
    /// when the span starts right after a YAML key's colon (the
    /// replacement then needs a separating space), or `=` for the value
    /// part of a `KEY=value` list item (replaced bare).
    quote: u8,
}

/// What a scanner found: spans to replace and the key paths they belong to.
#[derive(Default, Debug)]
pub(crate) struct Found {
    spans: Vec<Span>,
    keys: Vec<String>,
}

impl Found {
    fn add(&mut self, span: Span, key: String) {
        self.spans.push(span);
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }
}

/// `KEY=value` in a list item (`environment: [- OPENAI_API_KEY=...]` in
/// docker compose files): the key and where a non-empty value starts.
pub(crate) fn env_item(text: &[u8]) -> Option<(String, usize)> {
    let key_len = text
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        .count();
    (key_len > 0 && text.get(key_len) == Some(&b'=') && text.len() > key_len + 1).then(|| {
        (
            String::from_utf8_lossy(&text[..key_len]).into_owned(),
            key_len + 1,
        )
    })
}

/// Records the value of a `KEY=value` list item spanning `span` (a plain
/// or quoted scalar) when KEY is secret; `path` is the list's path.
fn env_item_span(
    s: &[u8],
    span: Span,
    path: &str,
    is_secret: &dyn Fn(&str) -> bool,
    found: &mut Found,
) {
    let q = usize::from(span.quote == b'"' || span.quote == b'\'');
    if span.end < span.start + 2 * q
        || matches!(
            s.get(span.start),
            Some(b'{' | b'[' | b'|' | b'>' | b'&' | b'!' | b'*')
        )
    {
        return;
    }
    let (inner_start, inner_end) = (span.start + q, span.end - q);
    if let Some((key, off)) = env_item(&s[inner_start..inner_end]) {
        if is_secret(&key) {
            let at = Span {
                start: inner_start + off,
                end: inner_end,
                quote: b'=',
            };
            found.add(at, format!("{path}.{key}"));
        }
    }
}

/// 1-based line number of byte offset `at`.
fn line_of(s: &[u8], at: usize) -> usize {
    1 + s[..at.min(s.len())].iter().filter(|&&b| b == b'\n').count()
}

fn syntax(s: &[u8], at: usize, what: impl Into<String>) -> ScanError {
    ScanError::Syntax {
        line: line_of(s, at),
        what: what.into(),
    }
}

/// Replaces every span; unquoted values become a double-quoted placeholder
/// (valid in `.env`, shell, YAML and JSON alike).
fn apply(s: &[u8], spans: &[Span]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut at = 0;
    for sp in spans {
        out.extend_from_slice(&s[at..sp.start]);
        at = sp.end;
        if sp.quote == b'=' {
            out.extend_from_slice(PLACEHOLDER.as_bytes());
            continue;
        }
        let q = if sp.quote == b'\'' { b'\'' } else { b'"' };
        if sp.quote == b' ' {
            out.push(b' ');
        }
        out.push(q);
        out.extend_from_slice(PLACEHOLDER.as_bytes());
        out.push(q);
    }
    out.extend_from_slice(&s[at..]);
    out
}

/// Redacts `data` of syntax `format`, with `is_secret` deciding which key
/// names hold secrets.
pub fn redact(
    format: Format,
    data: &[u8],
    is_secret: &dyn Fn(&str) -> bool,
) -> Result<Redacted, ScanError> {
    let found = match format {
        Format::Env => env::scan(data, is_secret)?,
        Format::Json => flow::scan_json(data, is_secret)?,
        Format::Yaml => yaml::scan(data, is_secret)?,
    };
    let mut spans = found.spans;
    spans.sort_by_key(|s| s.start);
    if spans.windows(2).any(|w| w[0].end > w[1].start) {
        return Err(ScanError::Unverified("overlapping secret values".into()));
    }
    let out = apply(data, &spans);
    match format {
        Format::Env => {}
        Format::Json => verify::json(data, &out, is_secret)?,
        Format::Yaml => verify::yaml(data, &out, is_secret)?,
    }
    Ok(Redacted {
        data: out,
        keys: found.keys,
    })
}

#[cfg(test)]
mod tests;
