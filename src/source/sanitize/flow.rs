//! Flow syntax: whole JSON files, and YAML flow collections (`{a: 1}`,
//! `[x, y]`) inside block YAML. One scanner serves both; the YAML flavour
//! also accepts single quotes, plain scalars and comments. It is lenient
//! (the parser in `verify` is the judge of validity) but never misses a
//! key it walks past.

use super::{env_item_span, syntax, Found, ScanError, Span, MAX_DEPTH};

/// A flow scanner over `s`.
pub(super) struct Flow<'a> {
    pub s: &'a [u8],
    pub pos: usize,
    pub yaml: bool,
    pub is_secret: &'a dyn Fn(&str) -> bool,
    pub found: &'a mut Found,
}

/// Scans a JSON document.
pub(super) fn scan_json(s: &[u8], is_secret: &dyn Fn(&str) -> bool) -> Result<Found, ScanError> {
    let mut found = Found::default();
    let mut f = Flow {
        s,
        pos: 0,
        yaml: false,
        is_secret,
        found: &mut found,
    };
    // A UTF-8 byte order mark is tolerated by some writers.
    if s.starts_with(b"\xEF\xBB\xBF") {
        f.pos = 3;
    }
    f.value("", 0, false)?;
    f.skip_ws();
    if f.pos != s.len() {
        return Err(syntax(s, f.pos, "text after the JSON value"));
    }
    Ok(found)
}

/// What kind of value a span held: null and empty values are not secrets.
#[derive(PartialEq)]
pub(super) enum Kind {
    Empty,
    Value,
}

impl Flow<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Skips whitespace, newlines and (YAML) comments.
    pub fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'#' if self.yaml
                    && (self.pos == 0 || matches!(self.s[self.pos - 1], b' ' | b'\t' | b'\n')) =>
                {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn err(&self, what: &str) -> ScanError {
        syntax(self.s, self.pos, what)
    }

    /// Scans one value at `path`; when `quiet` (inside a secret value
    /// already recorded whole) nothing is recorded. Returns its span.
    pub fn value(
        &mut self,
        path: &str,
        depth: usize,
        quiet: bool,
    ) -> Result<(Span, Kind), ScanError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.skip_ws();
        let start = self.pos;
        let (quote, kind) = match self.peek() {
            None => return Err(self.err("a value was expected")),
            Some(b'{') => {
                self.collection(b'}', path, depth, quiet)?;
                (0, Kind::Value)
            }
            Some(b'[') => {
                self.collection(b']', path, depth, quiet)?;
                (0, Kind::Value)
            }
            Some(q @ (b'"' | b'\'')) if q == b'"' || self.yaml => {
                self.quoted(q)?;
                let empty = self.pos - start == 2;
                (q, if empty { Kind::Empty } else { Kind::Value })
            }
            Some(_) => {
                self.plain();
                if self.pos == start {
                    return Err(self.err("a value was expected"));
                }
                let text = &self.s[start..self.pos];
                let null = matches!(text, b"null" | b"Null" | b"NULL" | b"~");
                (0, if null { Kind::Empty } else { Kind::Value })
            }
        };
        let span = Span {
            start,
            end: self.pos,
            quote,
        };
        Ok((span, kind))
    }

    fn quoted(&mut self, q: u8) -> Result<(), ScanError> {
        let open = self.pos;
        self.pos += 1;
        loop {
            match self.peek() {
                None => {
                    self.pos = open;
                    return Err(self.err("quoted text is never closed"));
                }
                Some(b'\\') if q == b'"' => self.pos += 2,
                // YAML single quotes escape a quote by doubling it.
                Some(b'\'') if q == b'\'' && self.s.get(self.pos + 1) == Some(&b'\'') => {
                    self.pos += 2
                }
                Some(b) if b == q => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// A plain scalar (JSON: number, true, false, null); it ends at a flow
    /// indicator, at `: `, at ` #` and at the line end.
    fn plain(&mut self) {
        let start = self.pos;
        let mut end = self.pos;
        while let Some(b) = self.peek() {
            let next = self.s.get(self.pos + 1).copied();
            let stop = match b {
                b',' | b'[' | b']' | b'{' | b'}' | b'\n' | b'\r' => true,
                b':' => matches!(
                    next,
                    None | Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | b']' | b'}')
                ),
                b'#' => self.pos > start && matches!(self.s[self.pos - 1], b' ' | b'\t'),
                b' ' | b'\t' if !self.yaml => true,
                _ => false,
            };
            if stop {
                break;
            }
            self.pos += 1;
            if b != b' ' && b != b'\t' {
                end = self.pos;
            }
        }
        self.pos = end;
    }

    fn collection(
        &mut self,
        close: u8,
        path: &str,
        depth: usize,
        quiet: bool,
    ) -> Result<(), ScanError> {
        self.pos += 1;
        let item_path = format!("{path}[]");
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(());
            }
            if close == b']' {
                let (span, kind) = self.value(&item_path, depth + 1, quiet)?;
                if !quiet && kind == Kind::Value {
                    env_item_span(self.s, span, &item_path, self.is_secret, self.found);
                }
            } else {
                self.pair(path, depth, quiet)?;
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b) if b == close => {}
                _ => return Err(self.err("expected , or the end of the collection")),
            }
        }
    }

    /// `key: value` in a mapping.
    fn pair(&mut self, path: &str, depth: usize, quiet: bool) -> Result<(), ScanError> {
        let (kspan, _) = self.value(path, depth + 1, true)?;
        if (kspan.quote == 0 && !self.yaml) || matches!(self.s[kspan.start], b'{' | b'[') {
            return Err(self.err("a mapping key must be text"));
        }
        let key = key_text(&self.s[kspan.start..kspan.end], kspan.quote);
        self.skip_ws();
        if self.peek() != Some(b':') {
            if self.yaml && matches!(self.peek(), Some(b',' | b'}')) {
                return Ok(()); // `{a, b}`: keys with null values
            }
            return Err(self.err("expected : after a mapping key"));
        }
        self.pos += 1;
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let secret = !quiet && (self.is_secret)(&key);
        let (span, kind) = self.value(&full, depth + 1, quiet || secret)?;
        if secret && kind == Kind::Value {
            self.found.add(span, full);
        }
        Ok(())
    }
}

/// A key's text without quotes; escapes are kept as written, which is
/// enough to match key names (a key spelled with escapes is rare, and
/// the verifier catches a secret missed that way).
pub(super) fn key_text(raw: &[u8], quote: u8) -> String {
    let inner = if quote != 0 && raw.len() >= 2 {
        &raw[1..raw.len() - 1]
    } else {
        raw
    };
    String::from_utf8_lossy(inner).into_owned()
}
