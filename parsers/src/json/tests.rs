//! Unit and property tests for JSON field extraction, checked against `serde_json`.

use std::borrow::Cow;

use bytes::BytesMut;

use super::*;
use proptest::prelude::*;
use serde_json::Value;

fn extract<'a>(paths: &[&str], line: &'a str) -> Result<Vec<Option<JsonValue<'a>>>, JsonError> {
    let fields = FieldSet::new(paths);
    let mut out = vec![None; paths.len()];
    fields.extract(line.as_bytes(), &mut out)?;
    Ok(out)
}

fn text(v: Option<JsonValue<'_>>) -> Option<String> {
    v.map(|v| v.as_text().into_owned())
}

fn kind(line: &str) -> JsonErrorKind {
    match validate_object(line.as_bytes()) {
        Err(e) => e.kind,
        Ok(()) => panic!("{line:?} was accepted"),
    }
}

const SAMPLE: &str = r#"{"time":"2026-11-22T20:20:07.123456789Z","level":"info","service":"order-api","msg":"order created","order_id":"ord_000123","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","http.status":202,"latency_ms":12.5}"#;

#[test]
fn extracts_wanted_fields_from_sample() {
    let out = extract(
        &["service", "level", "trace_id", "span_id", "time", "missing"],
        SAMPLE,
    )
    .unwrap();
    assert_eq!(text(out[0]).as_deref(), Some("order-api"));
    assert_eq!(text(out[1]).as_deref(), Some("info"));
    assert_eq!(
        text(out[2]).as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(text(out[3]).as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(
        text(out[4]).as_deref(),
        Some("2026-11-22T20:20:07.123456789Z")
    );
    assert_eq!(out[5], None);
}

#[test]
fn every_value_kind() {
    let line = r#" { "s":"x", "n":-1.5e+3, "t":true, "f":false, "z":null, "o":{"a":[1,{}]}, "a":[ 1 , "2" ] } "#;
    let out = extract(&["s", "n", "t", "f", "z", "o", "a"], line).unwrap();
    assert!(matches!(out[0], Some(JsonValue::Str(s)) if s.raw() == b"x"));
    assert_eq!(out[1], Some(JsonValue::Number(b"-1.5e+3")));
    assert_eq!(out[2], Some(JsonValue::Bool(true)));
    assert_eq!(out[3], Some(JsonValue::Bool(false)));
    assert_eq!(out[4], Some(JsonValue::Null));
    assert_eq!(out[5], Some(JsonValue::Object(br#"{"a":[1,{}]}"#)));
    assert_eq!(out[6], Some(JsonValue::Array(br#"[ 1 , "2" ]"#)));
    let texts: Vec<_> = out.iter().map(|v| text(*v).unwrap()).collect();
    assert_eq!(
        texts,
        [
            "x",
            "-1.5e+3",
            "true",
            "false",
            "null",
            r#"{"a":[1,{}]}"#,
            r#"[ 1 , "2" ]"#
        ]
    );
}

#[test]
fn empty_object_and_no_fields() {
    assert_eq!(extract(&["a"], "{}").unwrap(), vec![None]);
    assert_eq!(extract(&["a"], " \t{ }\r\n").unwrap(), vec![None]);
    assert!(FieldSet::new(&[]).is_empty());
    let mut out = [];
    FieldSet::new(&[])
        .extract(SAMPLE.as_bytes(), &mut out)
        .unwrap();
}

#[test]
fn nested_and_dotted_paths() {
    let line = r#"{"span":{"trace_id":"t1","inner":{"id":7}},"http.status":200,"a.b":{"c":"literal-then-nested"}}"#;
    let out = extract(
        &[
            "span.trace_id",
            "span.inner.id",
            "http.status",
            "a.b.c",
            "span",
            "span.nope",
        ],
        line,
    )
    .unwrap();
    assert_eq!(text(out[0]).as_deref(), Some("t1"));
    assert_eq!(text(out[1]).as_deref(), Some("7"));
    assert_eq!(text(out[2]).as_deref(), Some("200"));
    assert_eq!(text(out[3]).as_deref(), Some("literal-then-nested"));
    assert_eq!(
        text(out[4]).as_deref(),
        Some(r#"{"trace_id":"t1","inner":{"id":7}}"#)
    );
    assert_eq!(out[5], None);

    // The nested spelling of a dotted path.
    let out = extract(&["http.status"], r#"{"http":{"status":404}}"#).unwrap();
    assert_eq!(out[0], Some(JsonValue::Number(b"404")));
    // A nested path whose parent is not an object is absent.
    let out = extract(&["http.status"], r#"{"http":"GET"}"#).unwrap();
    assert_eq!(out[0], None);
}

#[test]
fn duplicate_keys_last_wins() {
    let out = extract(&["a"], r#"{"a":1,"b":2,"a":"second"}"#).unwrap();
    assert_eq!(text(out[0]).as_deref(), Some("second"));
    // Per field: a later object without the nested key does not erase it.
    let out = extract(&["a.b"], r#"{"a":{"b":1},"a":{"c":2}}"#).unwrap();
    assert_eq!(out[0], Some(JsonValue::Number(b"1")));
}

#[test]
fn same_path_twice_fills_both_slots() {
    let out = extract(&["level", "level"], r#"{"level":"debug"}"#).unwrap();
    assert_eq!(text(out[0]).as_deref(), Some("debug"));
    assert_eq!(text(out[1]).as_deref(), Some("debug"));
}

#[test]
fn short_output_slice_is_not_overrun() {
    let fields = FieldSet::new(&["a", "b"]);
    let mut out = [None];
    fields.extract(br#"{"a":1,"b":2}"#, &mut out).unwrap();
    assert_eq!(out[0], Some(JsonValue::Number(b"1")));
}

#[test]
fn escapes_decode() {
    let line = r#"{"m":"line\n\"q\"\\ \/ \b\f\r\t \u00e9 \ud83d\ude00 end","plain":"caf\u00e9"}"#;
    let out = extract(&["m", "plain"], line).unwrap();
    let JsonValue::Str(m) = out[0].unwrap() else {
        panic!("not a string")
    };
    assert!(m.has_escapes());
    assert_eq!(
        m.decode(),
        "line\n\"q\"\\ / \u{8}\u{c}\r\t \u{e9} \u{1F600} end"
    );
    let mut buf = BytesMut::new();
    m.decode_into(&mut buf);
    assert_eq!(&buf[..], m.decode().as_bytes());
    assert_eq!(text(out[1]).as_deref(), Some("café"));
}

#[test]
fn unescaped_strings_borrow() {
    let line = r#"{"msg":"héllo wörld ✓"}"#;
    let out = extract(&["msg"], line).unwrap();
    let s = out[0].unwrap().as_str().unwrap();
    assert!(!s.has_escapes());
    assert!(matches!(s.decode(), Cow::Borrowed("héllo wörld ✓")));
    assert_eq!(&line.as_bytes()[s.range()], s.raw());
    assert_eq!(out[0].unwrap().range_in(line.as_bytes()), Some(s.range()));
    assert_eq!(out[0].unwrap().range_in(b"other"), None);
}

#[test]
fn escaped_keys_match_decoded_paths() {
    let out = extract(&["trace_id", "é"], r#"{"trace\u005fid":"x","\u00e9":1}"#).unwrap();
    assert_eq!(text(out[0]).as_deref(), Some("x"));
    assert_eq!(text(out[1]).as_deref(), Some("1"));
    let s = JsonStr {
        raw: br"a\nb",
        offset: 0,
        has_escapes: true,
    };
    assert!(s.eq_decoded(b"a\nb"));
    assert!(!s.eq_decoded(b"a\nbc"));
    assert!(!s.eq_decoded(b"a\n"));
    assert!(!s.eq_decoded(b"a"));
}

#[test]
fn long_strings_cross_word_boundaries() {
    for len in 0..40 {
        let body = "x".repeat(len);
        for tail in ["", "\\n", "é", "\\u0041"] {
            let line = format!(r#"{{"k":"{body}{tail}{body}","z":1}}"#);
            let out = extract(&["k", "z"], &line).unwrap();
            let expected: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(text(out[0]).as_deref(), expected["k"].as_str(), "{line}");
            assert_eq!(out[1], Some(JsonValue::Number(b"1")));
        }
    }
}

#[test]
fn rejects_non_objects() {
    for line in ["", "   ", "[]", "\"s\"", "1", "null", "plain text"] {
        let err = validate_object(line.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err.kind,
                JsonErrorKind::NotAnObject | JsonErrorKind::UnexpectedEnd
            ),
            "{line:?}: {err}"
        );
    }
}

#[test]
fn rejects_malformed_with_kind_and_offset() {
    assert_eq!(kind(r#"{"a":1"#), JsonErrorKind::UnexpectedEnd);
    assert_eq!(kind(r#"{"a" 1}"#), JsonErrorKind::ExpectedColon);
    assert_eq!(kind(r#"{a:1}"#), JsonErrorKind::ExpectedKey);
    assert_eq!(kind(r#"{"a":1,}"#), JsonErrorKind::ExpectedKey);
    assert_eq!(
        kind(r#"{"a":1 "b":2}"#),
        JsonErrorKind::ExpectedCommaOrObjectEnd
    );
    assert_eq!(
        kind(r#"{"a":[1 2]}"#),
        JsonErrorKind::ExpectedCommaOrArrayEnd
    );
    assert_eq!(kind(r#"{"a":[1,]}"#), JsonErrorKind::UnexpectedByte);
    assert_eq!(kind(r#"{"a":tru}"#), JsonErrorKind::InvalidLiteral);
    assert_eq!(kind(r#"{"a":nul}"#), JsonErrorKind::InvalidLiteral);
    assert_eq!(kind(r#"{"a":-}"#), JsonErrorKind::InvalidNumber);
    assert_eq!(kind(r#"{"a":1.}"#), JsonErrorKind::InvalidNumber);
    assert_eq!(kind(r#"{"a":1e}"#), JsonErrorKind::InvalidNumber);
    assert_eq!(kind(r#"{"a":.5}"#), JsonErrorKind::UnexpectedByte);
    assert_eq!(kind(r#"{"a":01}"#), JsonErrorKind::ExpectedCommaOrObjectEnd);
    assert_eq!(kind(r#"{"a":"x\q"}"#), JsonErrorKind::InvalidEscape);
    assert_eq!(kind(r#"{"a":"\u12g4"}"#), JsonErrorKind::InvalidEscape);
    assert_eq!(kind(r#"{"a":"\ud800"}"#), JsonErrorKind::LoneSurrogate);
    assert_eq!(
        kind(r#"{"a":"\ud800\u0041"}"#),
        JsonErrorKind::LoneSurrogate
    );
    assert_eq!(kind(r#"{"a":"\udc00"}"#), JsonErrorKind::LoneSurrogate);
    assert_eq!(
        kind("{\"a\":\"tab\there\"}"),
        JsonErrorKind::ControlCharacter
    );
    assert_eq!(kind(r#"{"a":1} x"#), JsonErrorKind::TrailingCharacters);
    assert_eq!(kind(r#"{"a":1}}"#), JsonErrorKind::TrailingCharacters);
    assert_eq!(kind(r#"{"a":"unterminated}"#), JsonErrorKind::UnexpectedEnd);

    let err = validate_object(br#"{"key":"x\q"}"#).unwrap_err();
    assert_eq!(err.offset, 9);
    assert_eq!(err.to_string(), "invalid JSON at byte 9: invalid escape");
}

#[test]
fn invalid_utf8_in_a_string_keeps_the_line_and_is_replaced_in_values() {
    let mut line = br#"{"level":"warn","msg":"ok "#.to_vec();
    line.extend_from_slice(&[0xff, b'"', b',']);
    line.extend_from_slice(br#""service":"a"#);
    line.extend_from_slice(&[0xc3, 0x28]);
    line.extend_from_slice(br#"b"}"#);
    assert!(validate_object(&line).is_ok());
    let fields = FieldSet::new(&["level", "msg", "service"]);
    let mut out = vec![None; 3];
    fields.extract(&line, &mut out).unwrap();
    assert_eq!(text(out[0]).as_deref(), Some("warn"));
    assert_eq!(text(out[1]).as_deref(), Some("ok \u{fffd}"));
    assert_eq!(text(out[2]).as_deref(), Some("a\u{fffd}(b"));
    // Bad bytes outside a string are still not JSON.
    let mut outside = br#"{"a":1"#.to_vec();
    outside.push(0xff);
    outside.push(b'}');
    assert!(validate_object(&outside).is_err());
}

#[test]
fn field_ranges_match_extract() {
    let paths = ["service", "http.status", "t", "z", "o", "a", "missing"];
    let fields = FieldSet::new(&paths);
    let mut ranges = FieldRanges::new();
    let lines = [
        SAMPLE.to_owned(),
        r#"{"t":true,"z":null,"o":{"x":"\n"},"a":[false],"service":"caf\u00e9"}"#.to_owned(),
    ];
    for line in &lines {
        let mut out = vec![None; paths.len()];
        fields.extract(line.as_bytes(), &mut out).unwrap();
        fields.extract_ranges(line.as_bytes(), &mut ranges).unwrap();
        assert_eq!(ranges.len(), paths.len());
        for (i, want) in out.iter().enumerate() {
            assert_eq!(ranges.get(i, line.as_bytes()), *want, "slot {i} of {line}");
        }
    }
    assert_eq!(ranges.get(99, lines[1].as_bytes()), None);
    // A line too short to be the one extracted from gives nothing rather than panicking.
    assert_eq!(ranges.get(0, b"{}"), None);
    assert!(fields.extract_ranges(b"{oops", &mut ranges).is_err());
    assert!((0..paths.len()).all(|i| ranges.get(i, b"{oops").is_none()));
}

#[test]
fn error_clears_output() {
    let fields = FieldSet::new(&["a"]);
    let mut out = [None];
    assert!(fields.extract(br#"{"a":1,"b":}"#, &mut out).is_err());
    assert_eq!(out[0], None);
}

#[test]
fn nesting_limit_matches_serde_json() {
    for depth in [126usize, 127, 128, 129] {
        let line = format!(
            "{}{}1{}{}",
            r#"{"a":"#,
            "[".repeat(depth - 1),
            "]".repeat(depth - 1),
            "}"
        );
        let ours = validate_object(line.as_bytes()).is_ok();
        let theirs = serde_json::from_str::<Value>(&line).is_ok();
        assert_eq!(ours, theirs, "depth {depth}");
    }
}

#[test]
fn many_dots_do_not_explode() {
    let path = "a.".repeat(40) + "z";
    let fields = FieldSet::new(&[path.as_str()]);
    assert!(fields.nodes.len() < 200, "{} nodes", fields.nodes.len());
    let nested = format!("{}1{}", r#"{"a":"#.repeat(40) + r#"{"z":"#, "}".repeat(41));
    let mut out = [None];
    fields.extract(nested.as_bytes(), &mut out).unwrap();
    assert_eq!(out[0], Some(JsonValue::Number(b"1")));
}

// ---- property tests against serde_json ----

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z\"\\\\/\n\t\u{1}é😀 ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_\"é\\\\]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Converts an extracted value for comparison with `serde_json`'s parse of the same line
/// (numbers are parsed by `serde_json` too, so float rounding is the same on both sides).
fn to_serde(v: JsonValue<'_>) -> Value {
    match v {
        JsonValue::Str(s) => Value::String(s.decode().into_owned()),
        JsonValue::Number(raw) | JsonValue::Object(raw) | JsonValue::Array(raw) => {
            serde_json::from_slice(raw).unwrap()
        }
        JsonValue::Bool(b) => Value::Bool(b),
        JsonValue::Null => Value::Null,
    }
}

fn check_against_serde(line: &[u8]) -> Result<(), TestCaseError> {
    let ours = validate_object(line);
    let theirs = serde_json::from_slice::<Value>(line);
    match (&ours, &theirs) {
        (Ok(()), Ok(v)) => prop_assert!(v.is_object()),
        (Err(_), Ok(v)) => prop_assert!(!v.is_object(), "rejected valid object: {ours:?}"),
        (Ok(()), Err(e)) => {
            // The two deliberate differences: numbers are not range-checked, and invalid
            // UTF-8 inside a string is accepted (decoding replaces it).
            let lenient_utf8 =
                std::str::from_utf8(line).is_err() && e.to_string().contains("unicode");
            prop_assert!(
                e.to_string().contains("number out of range") || lenient_utf8,
                "accepted what serde_json rejects: {e}"
            )
        }
        (Err(_), Err(_)) => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn top_level_keys_match_serde(
        map in prop::collection::btree_map("[a-z_é\"\\\\ ]{0,8}", arb_json(), 0..8),
        pretty in any::<bool>(),
    ) {
        let obj = Value::Object(map.clone().into_iter().collect());
        let line = if pretty {
            serde_json::to_string_pretty(&obj).unwrap()
        } else {
            serde_json::to_string(&obj).unwrap()
        };
        let parsed: Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        let fields = FieldSet::new(&keys);
        let mut out = vec![None; keys.len()];
        fields.extract(line.as_bytes(), &mut out).unwrap();
        for (key, got) in keys.iter().zip(&out) {
            let got = got.map(to_serde);
            prop_assert_eq!(got.as_ref(), Some(&parsed[*key]), "key {:?} in {}", key, line);
        }
        let mut missing = [None];
        FieldSet::new(&["no such key"]).extract(line.as_bytes(), &mut missing).unwrap();
        prop_assert_eq!(missing[0], None);
    }

    #[test]
    fn every_decode_path_agrees(
        text in prop_oneof![
            any::<String>(),
            // Backslash, quote and control characters force escapes in the serialised text.
            "[a\"\\\\\n\té😀\u{1}\u{7f}]{0,300}",
        ],
    ) {
        let line = serde_json::json!({ "k": text.clone() }).to_string();
        let mut out = [None];
        FieldSet::new(&["k"]).extract(line.as_bytes(), &mut out).unwrap();
        let s = out[0].unwrap().as_str().unwrap();
        prop_assert_eq!(s.decode(), text.as_str());
        prop_assert_eq!(&s.decode_bytes()[..], text.as_bytes());
        let mut buf = BytesMut::from(&b"prefix"[..]);
        s.decode_into(&mut buf);
        prop_assert_eq!(&buf[6..], text.as_bytes());
        prop_assert!(s.eq_decoded(text.as_bytes()));
        let longer = format!("{text}x");
        prop_assert!(!s.eq_decoded(longer.as_bytes()));
        // The same text as a key.
        let keyed = serde_json::json!({ text.clone(): 1 }).to_string();
        let mut out = [None];
        FieldSet::new(&[text.as_str()]).extract(keyed.as_bytes(), &mut out).unwrap();
        prop_assert_eq!(out[0], Some(JsonValue::Number(b"1")));
    }

    #[test]
    fn nested_paths_match_serde(
        outer in "[a-z]{1,4}",
        inner in "[a-z]{1,4}",
        value in arb_json(),
        noise in arb_json(),
    ) {
        let line = serde_json::json!({ "noise": noise, outer.clone(): { inner.clone(): value } })
            .to_string();
        let parsed: Value = serde_json::from_str(&line).unwrap();
        let path = format!("{outer}.{inner}");
        let mut out = [None];
        FieldSet::new(&[path.as_str()]).extract(line.as_bytes(), &mut out).unwrap();
        let got = out[0].map(to_serde);
        prop_assert_eq!(got.as_ref(), Some(&parsed[&outer][&inner]));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_agree(line in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut out = [None; 2];
        let _ = FieldSet::new(&["a", "b.c"]).extract(&line, &mut out);
        check_against_serde(&line)?;
    }

    #[test]
    fn json_alphabet_agrees_with_serde(line in r#"\{[{}\[\]":, a-f0-9.eE+\-\\u/ntrl\t\n]{0,40}\}?"#) {
        check_against_serde(line.as_bytes())?;
    }

    #[test]
    fn mutated_valid_json_agrees_with_serde(
        map in prop::collection::btree_map("[a-z]{0,4}", arb_json(), 1..5),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"{}[]\":,\\ 0-.eEtfnu\x01\xc3\xff".to_vec()),
        mode in 0..3u8,
    ) {
        let mut line = serde_json::to_vec(&Value::Object(map.into_iter().collect())).unwrap();
        let i = at.index(line.len());
        match mode {
            0 => line[i] = byte,
            1 => line.insert(i, byte),
            _ => line.truncate(i),
        }
        let mut out = [None; 1];
        let _ = FieldSet::new(&["a"]).extract(&line, &mut out);
        check_against_serde(&line)?;
    }
}
