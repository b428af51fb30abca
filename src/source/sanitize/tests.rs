use proptest::prelude::*;

use super::*;

fn secret(k: &str) -> bool {
    Sanitizer::new(&SanitizeRules::default())
        .unwrap()
        .is_secret_key(k)
}

fn run(format: Format, text: &str) -> (String, Vec<String>) {
    let r = redact(format, text.as_bytes(), &secret).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (String::from_utf8(r.data).unwrap(), r.keys)
}

const P: &str = "\"<redacted by opc-store>\"";

#[test]
fn env_values_are_replaced_and_other_lines_kept() {
    let text = "# comment\nnot an assignment\nOPENAI_API_KEY=sk-live-abc\nDB_PASSWORD=\"p w\" # note\nexport SLACK_TOKEN='t'\nHOST=db\nEMPTY_TOKEN=\n\r\nmax_tokens=5\nMULTI_SECRET=\"a\nb\"\nTAIL=1";
    let (out, keys) = run(Format::Env, text);
    assert_eq!(
        out,
        format!("# comment\nnot an assignment\nOPENAI_API_KEY={P}\nDB_PASSWORD={P} # note\nexport SLACK_TOKEN='<redacted by opc-store>'\nHOST=db\nEMPTY_TOKEN=\n\r\nmax_tokens=5\nMULTI_SECRET={P}\nTAIL=1")
    );
    assert_eq!(
        keys,
        [
            "OPENAI_API_KEY",
            "DB_PASSWORD",
            "SLACK_TOKEN",
            "MULTI_SECRET"
        ]
    );
}

#[test]
fn env_oddities_are_refused() {
    for bad in ["DB_PASSWORD: x\n", "A=\"never closed\n", "A=\"x\" y\n"] {
        assert!(
            redact(Format::Env, bad.as_bytes(), &secret).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn json_nested_values() {
    let text = "{\n  \"env\": [\"A=1\", \"X_TOKEN=t\"],\n  \"x\": [ {\"apiKey\": \"k1\", \"n\": 1} ],\n  \"db\": {\"password\": 42, \"token\": null, \"host\": \"h\"},\n  \"secrets\": {\"a\": [1, 2]}\n}\n";
    let (out, keys) = run(Format::Json, text);
    assert_eq!(
        out,
        format!("{{\n  \"env\": [\"A=1\", \"X_TOKEN=<redacted by opc-store>\"],\n  \"x\": [ {{\"apiKey\": {P}, \"n\": 1}} ],\n  \"db\": {{\"password\": {P}, \"token\": null, \"host\": \"h\"}},\n  \"secrets\": {P}\n}}\n")
    );
    assert_eq!(
        keys,
        ["env[].X_TOKEN", "x[].apiKey", "db.password", "secrets"]
    );
}

#[test]
fn invalid_json_is_refused() {
    for bad in ["{\"password\": 'x'}", "{\"a\": 1", "[1,]x", "{password: 1}"] {
        assert!(
            redact(Format::Json, bad.as_bytes(), &secret).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn yaml_block_flow_quoted_and_block_scalars() {
    let text = "\
# top
a:
  b:
    db_password: x   # trailing comment
    keep: y
list:
  - name: one
    api_key: 'k'
  - {token: \"t\", other: 1}
flow: {b: {db_password: x}}
cert_secret: |
  line1
  line2
next: &anchor plain
auth:
  password:
    nested: 1
    deep: [1, 2]
after: 2
empty_password:
null_token: ~
max_tokens: 100
---
password: \"multi
  line\"
";
    let (out, keys) = run(Format::Yaml, text);
    let want = format!(
        "\
# top
a:
  b:
    db_password: {P}   # trailing comment
    keep: y
list:
  - name: one
    api_key: '<redacted by opc-store>'
  - {{token: \"<redacted by opc-store>\", other: 1}}
flow: {{b: {{db_password: {P}}}}}
cert_secret: {P}
next: &anchor plain
auth:
  password: {P}
after: 2
empty_password:
null_token: ~
max_tokens: 100
---
password: {P}
"
    );
    assert_eq!(out, want);
    assert_eq!(
        keys,
        [
            "a.b.db_password",
            "list[].api_key",
            "list[].token",
            "flow.b.db_password",
            "cert_secret",
            "auth.password",
            "password"
        ]
    );
}

#[test]
fn yaml_sequence_at_key_indent_and_top_level_list() {
    let (out, keys) = run(
        Format::Yaml,
        "tokens:\n- a\n- b\nother: 1\n---\n- password: x\n  user: u\n- - secret: s\n",
    );
    assert_eq!(
        out,
        format!("tokens: {P}\nother: 1\n---\n- password: {P}\n  user: u\n- - secret: {P}\n")
    );
    assert_eq!(keys, ["tokens", "[].password", "[][].secret"]);
}

#[test]
fn yaml_the_parser_catches_what_the_scanner_cannot() {
    // An alias copies the secret under another key: redacting it would
    // change that key too, so the file is refused.
    let t = "password: &p s3cret\ncopy: *p\n";
    assert!(matches!(
        redact(Format::Yaml, t.as_bytes(), &secret),
        Err(ScanError::Unverified(_))
    ));
    for bad in [
        "? complex\n: x\n",
        "a:\n\tb: 1\n",
        "a: [1, 2\n",
        "{{ helm }}: x\n",
    ] {
        assert!(
            redact(Format::Yaml, bad.as_bytes(), &secret).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn classification_by_name() {
    let s = Sanitizer::new(&SanitizeRules::default()).unwrap();
    assert_eq!(s.classify(b".env", b".env"), Class::Redact(Format::Env));
    assert_eq!(
        s.classify(b"a/.env.local", b".env.local"),
        Class::Redact(Format::Env)
    );
    assert_eq!(
        s.classify(b"x.YAML", b"x.YAML"),
        Class::Redact(Format::Yaml)
    );
    assert_eq!(
        s.classify(b"p.json", b"p.json"),
        Class::Redact(Format::Json)
    );
    assert!(matches!(
        s.classify(b"k/server.pem", b"server.pem"),
        Class::Exclude(_)
    ));
    assert!(matches!(
        s.classify(b"id_ed25519", b"id_ed25519"),
        Class::Exclude(_)
    ));
    assert!(matches!(
        s.classify(b"credentials.json", b"credentials.json"),
        Class::Exclude(_)
    ));
    assert_eq!(
        s.classify(b"id_ed25519.pub", b"id_ed25519.pub"),
        Class::Keep
    );
    assert_eq!(s.classify(b"data.bin", b"data.bin"), Class::Keep);
    let kept = Sanitizer::new(&SanitizeRules {
        keep: vec!["*.pem".into(), "conf/*.yml".into()],
        env_files: EnvFiles::Exclude,
        ..SanitizeRules::default()
    })
    .unwrap();
    assert_eq!(kept.classify(b"server.pem", b"server.pem"), Class::Keep);
    assert_eq!(kept.classify(b"conf/a.yml", b"a.yml"), Class::Keep);
    assert!(matches!(kept.classify(b".env", b".env"), Class::Exclude(_)));
    assert_ne!(kept.fingerprint(), s.fingerprint());
}

#[test]
fn yaml_multiline_plain_quoted_colons_and_crlf() {
    let (out, keys) = run(
        Format::Yaml,
        "password: first\n  second\nmsg: \"a: b\"\n\"api_key\": 'x'\nlist: [a, {token: t}]\r\ndb:\r\n  secret: s\r\n  host: h\r\n",
    );
    assert_eq!(
        out,
        format!("password: {P}\nmsg: \"a: b\"\n\"api_key\": '<redacted by opc-store>'\nlist: [a, {{token: {P}}}]\r\ndb:\r\n  secret: {P}\r\n  host: h\r\n")
    );
    assert_eq!(keys, ["password", "api_key", "list[].token", "db.secret"]);
}

/// A random secret that never occurs by chance in the generated text.
const MARK: &str = "Zq9SECRETVALUE";

fn env_line() -> impl Strategy<Value = (String, bool)> {
    let key = prop_oneof![
        Just(("DB_PASSWORD", true)),
        Just(("api_token", true)),
        Just(("HOST", false)),
        Just(("PORT", false))
    ];
    let val = "[a-z0-9 =#'\"]{0,8}";
    (key, val, 0..4u8, any::<bool>()).prop_map(|((k, s), v, style, export)| {
        let v = v.replace(['"', '\'', '#'], "");
        let value = if s {
            format!("{MARK}{v}")
        } else {
            v.trim().to_string()
        };
        let value = match style {
            0 => value.trim().to_string(),
            1 => format!("\"{value}\""),
            2 => format!("'{value}'"),
            _ => format!("\"{value}\" # c"),
        };
        let ex = if export { "export " } else { "" };
        (format!("{ex}{k}={value}"), s)
    })
}

proptest! {
    #[test]
    fn env_never_leaks_and_keeps_other_lines(lines in prop::collection::vec(env_line(), 0..12)) {
        let text: String = lines.iter().map(|(l, _)| format!("{l}\n# note\n")).collect();
        let r = redact(Format::Env, text.as_bytes(), &secret).unwrap();
        let out = String::from_utf8(r.data).unwrap();
        prop_assert!(!out.contains(MARK));
        for ((orig, s), new) in lines.iter().zip(out.lines().step_by(2)) {
            if !s { prop_assert_eq!(orig, new); }
        }
    }

    #[test]
    fn json_never_leaks(v in json_value(3)) {
        let text = serde_json::to_string_pretty(&v).unwrap();
        let r = redact(Format::Json, text.as_bytes(), &secret).unwrap();
        prop_assert!(!String::from_utf8(r.data).unwrap().contains(MARK));
    }

    #[test]
    fn yaml_never_leaks(v in json_value(3)) {
        let text = serde_yaml_ng::to_string(&v).unwrap();
        match redact(Format::Yaml, text.as_bytes(), &secret) {
            Ok(r) => prop_assert!(!String::from_utf8(r.data).unwrap().contains(MARK), "{}", text),
            // Refusing is safe; but the writer's own output should pass.
            Err(e) => prop_assert!(false, "{e}\n{text}"),
        }
    }

    #[test]
    fn yaml_like_input_never_panics(text in "([a-z_]{1,6}|password|: |- |[{}\\[\\],'\"#|>&*!~]| {1,4}|\n|\t){0,60}") {
        // Results have passed the parser check; only panics matter here.
        let _ = redact(Format::Yaml, text.as_bytes(), &secret);
        let _ = redact(Format::Json, text.as_bytes(), &secret);
        let _ = redact(Format::Env, text.as_bytes(), &secret);
    }

    #[test]
    fn arbitrary_input_never_panics(data in prop::collection::vec(any::<u8>(), 0..300)) {
        for f in [Format::Env, Format::Json, Format::Yaml] {
            let _ = redact(f, &data, &secret);
        }
    }
}

/// JSON values whose secret keys hold the marker, and where the marker
/// never appears elsewhere.
fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        "[a-z :#-]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(depth, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(
                prop_oneof![inner.clone(), Just(json!(format!("DB_PASSWORD={MARK}")))],
                0..4
            )
            .prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![Just("password"), Just("apiKey"), Just("name"), Just("n")],
                    inner
                ),
                0..4
            )
            .prop_map(|kv| {
                let mut m = serde_json::Map::new();
                for (k, v) in kv {
                    let v = if secret(k) {
                        json!(format!("{MARK}"))
                    } else {
                        v
                    };
                    m.insert(k.to_string(), v);
                }
                Value::Object(m)
            }),
        ]
    })
}

#[test]
fn compose_environment_lists() {
    let (out, keys) = run(
        Format::Yaml,
        "services:\n  app:\n    environment:\n      - OPENAI_API_KEY=sk-live-x\n      - \"DB_PASSWORD=p w\"\n      - HOST=db\n      - EMPTY_TOKEN=\n    other: [A=1, SLACK_TOKEN=t]\n",
    );
    assert_eq!(
        out,
        "services:\n  app:\n    environment:\n      - OPENAI_API_KEY=<redacted by opc-store>\n      - \"DB_PASSWORD=<redacted by opc-store>\"\n      - HOST=db\n      - EMPTY_TOKEN=\n    other: [A=1, SLACK_TOKEN=<redacted by opc-store>]\n"
    );
    assert_eq!(
        keys,
        [
            "services.app.environment[].OPENAI_API_KEY",
            "services.app.environment[].DB_PASSWORD",
            "services.app.other[].SLACK_TOKEN"
        ]
    );
}
