//! `${VAR}` and `${VAR:-default}` in configuration strings. `$$` is a
//! literal `$`. Applied to parsed string values only, so a variable's value
//! can never change the YAML structure.

use crate::error::{Error, Result};

/// Expands variables in `s` using `lookup`; `at` names the key for errors.
/// A variable that is unset and has no default is an error.
pub fn interpolate(s: &str, at: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    interpolate_with(s, at, lookup, &mut |e| Err(e))
}

/// [`interpolate`], with `unset` deciding about an unset variable without a
/// default: given the error it would be, it returns it (strict) or `Ok`
/// to expand the variable to nothing (lenient, recording it elsewhere).
pub fn interpolate_with(
    s: &str,
    at: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(Error) -> Result<()>,
) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| Error::Config(format!("{at}: unterminated ${{ in {s:?}")))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(Error::Config(format!(
                    "{at}: invalid variable name {name:?}"
                )));
            }
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => unset(Error::Config(format!(
                    "{at}: environment variable {name} is not set (write ${{{name}:-default}} for a fallback)"
                )))?,
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::interpolate;

    #[test]
    fn expands_defaults_and_escapes() {
        let env = |k: &str| (k == "HOME").then(|| "/root".to_string());
        assert_eq!(interpolate("${HOME}/x", "k", &env).unwrap(), "/root/x");
        assert_eq!(interpolate("${NOPE:-d}", "k", &env).unwrap(), "d");
        assert_eq!(interpolate("$$5 $x", "k", &env).unwrap(), "$5 $x");
        let e = interpolate("${NOPE}", "a.b", &env).unwrap_err().to_string();
        assert!(e.contains("a.b") && e.contains("NOPE"), "{e}");
    }
}
