//! The safety net behind the scanners: a real parser reads the original
//! and the redacted file, and the redacted document must equal the
//! original with exactly the secret keys' values replaced. Any difference
//! (a secret the scanner missed, a value it damaged) rejects the file.

use serde::Deserialize;

use super::{env_item, ScanError, PLACEHOLDER};

fn placeholder_json() -> serde_json::Value {
    serde_json::Value::String(PLACEHOLDER.into())
}

/// The original JSON document with every secret value replaced.
fn expect_json(v: &mut serde_json::Value, is_secret: &dyn Fn(&str) -> bool) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, item) in m.iter_mut() {
                let empty = item.is_null() || item.as_str() == Some("");
                if is_secret(k) {
                    if !empty {
                        *item = placeholder_json();
                    }
                } else {
                    expect_json(item, is_secret);
                }
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                let env = item.as_str().and_then(|t| env_item(t.as_bytes()));
                match env {
                    Some((key, _)) if is_secret(&key) => {
                        *item = Value::String(format!("{key}={PLACEHOLDER}"))
                    }
                    _ => expect_json(item, is_secret),
                }
            }
        }
        _ => {}
    }
}

/// Checks a redacted JSON file against its original.
pub(super) fn json(
    orig: &[u8],
    out: &[u8],
    is_secret: &dyn Fn(&str) -> bool,
) -> Result<(), ScanError> {
    let parse = |b: &[u8]| {
        let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
        serde_json::from_slice::<serde_json::Value>(b)
    };
    let mut want =
        parse(orig).map_err(|e| ScanError::Unverified(format!("not valid JSON: {e}")))?;
    expect_json(&mut want, is_secret);
    let got =
        parse(out).map_err(|e| ScanError::Unverified(format!("redaction broke the JSON: {e}")))?;
    if got != want {
        return Err(ScanError::Unverified(
            "the JSON parser and the redaction scanner disagree".into(),
        ));
    }
    Ok(())
}

/// The original YAML document with every secret value replaced.
fn expect_yaml(v: &mut serde_yaml_ng::Value, is_secret: &dyn Fn(&str) -> bool) {
    use serde_yaml_ng::Value;
    match v {
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let empty = item.is_null() || item.as_str() == Some("");
                if k.as_str().is_some_and(is_secret) {
                    if !empty {
                        *item = Value::String(PLACEHOLDER.into());
                    }
                } else {
                    expect_yaml(item, is_secret);
                }
            }
        }
        Value::Sequence(items) => {
            for item in items.iter_mut() {
                let env = item.as_str().and_then(|t| env_item(t.as_bytes()));
                match env {
                    Some((key, _)) if is_secret(&key) => {
                        *item = Value::String(format!("{key}={PLACEHOLDER}"))
                    }
                    _ => expect_yaml(item, is_secret),
                }
            }
        }
        Value::Tagged(t) => expect_yaml(&mut t.value, is_secret),
        _ => {}
    }
}

fn yaml_docs(b: &[u8]) -> Result<Vec<serde_yaml_ng::Value>, serde_yaml_ng::Error> {
    serde_yaml_ng::Deserializer::from_slice(b)
        .map(serde_yaml_ng::Value::deserialize)
        .collect()
}

/// Checks a redacted YAML file (all its documents) against its original.
pub(super) fn yaml(
    orig: &[u8],
    out: &[u8],
    is_secret: &dyn Fn(&str) -> bool,
) -> Result<(), ScanError> {
    let mut want =
        yaml_docs(orig).map_err(|e| ScanError::Unverified(format!("not valid YAML: {e}")))?;
    want.iter_mut().for_each(|d| expect_yaml(d, is_secret));
    let got = yaml_docs(out)
        .map_err(|e| ScanError::Unverified(format!("redaction broke the YAML: {e}")))?;
    if got != want {
        return Err(ScanError::Unverified(
            "the YAML parser and the redaction scanner disagree".into(),
        ));
    }
    Ok(())
}
