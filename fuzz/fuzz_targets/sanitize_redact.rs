//! The redaction scanners read untrusted file contents (.env, YAML, JSON):
//! any bytes must give a result or an error, never a panic or a hang; a
//! file with nothing to redact comes back byte for byte; and a redacted
//! .env file still scans (its placeholders are valid values).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use opc_store::source::sanitize::{redact, Format, SanitizeRules, Sanitizer};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    // Compiled once: glob compilation would dominate every run.
    static RULES: OnceLock<Sanitizer> = OnceLock::new();
    let rules = RULES
        .get_or_init(|| Sanitizer::new(&SanitizeRules::default()).expect("default rules compile"));
    let secret = |k: &str| rules.is_secret_key(k);
    let format = match sel % 3 {
        0 => Format::Env,
        1 => Format::Yaml,
        _ => Format::Json,
    };
    if let Ok(r) = redact(format, body, &secret) {
        if r.keys.is_empty() {
            assert_eq!(r.data, body, "nothing redacted, yet the content changed");
        }
        if format == Format::Env {
            let again = redact(format, &r.data, &secret).expect("redacted .env rescans");
            assert_eq!(again.data, r.data, "redaction is idempotent");
        }
    }
});
