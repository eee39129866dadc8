use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn run(text: &str, pairs: &[(&str, &str)]) -> Result<Interpolated, Vec<Issue>> {
    interpolate(text, &env_of(pairs))
}

fn ok(text: &str, pairs: &[(&str, &str)]) -> String {
    run(text, pairs).unwrap().text
}

fn errs(text: &str, pairs: &[(&str, &str)]) -> Vec<Issue> {
    run(text, pairs).unwrap_err()
}

#[test]
fn replaces_set_variables() {
    assert_eq!(ok("a = \"${X}\"", &[("X", "1")]), "a = \"1\"");
    assert_eq!(ok("a = ${N}", &[("N", "42")]), "a = 42");
}

#[test]
fn defaults_apply_when_unset_or_empty() {
    assert_eq!(ok("a = \"${X:-dev}\"", &[]), "a = \"dev\"");
    assert_eq!(ok("a = \"${X:-dev}\"", &[("X", "")]), "a = \"dev\"");
    assert_eq!(ok("a = \"${X:-dev}\"", &[("X", "prod")]), "a = \"prod\"");
    assert_eq!(ok("a = \"${X:-}\"", &[]), "a = \"\"");
    // Without a default an empty value is kept as it is.
    assert_eq!(ok("a = \"${X}\"", &[("X", "")]), "a = \"\"");
    assert_eq!(
        ok("e = \"${LOKI_URL:-http://127.0.0.1:3100}\"", &[]),
        "e = \"http://127.0.0.1:3100\""
    );
}

#[test]
fn missing_variable_is_an_error_at_its_place() {
    let text = "a = 1\nb = \"x${NOPE}y\"\n";
    let issues = errs(text, &[]);
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].kind, ProblemKind::MissingEnvVar);
    assert_eq!(&text[issues[0].span.clone()], "${NOPE}");
    assert!(issues[0].message.contains("`NOPE`"));
}

#[test]
fn every_missing_variable_is_reported() {
    let issues = errs("a = \"${A}\"\nb = \"${B}\"\n", &[]);
    let names: Vec<&str> = issues.iter().map(|i| i.message.as_str()).collect();
    assert_eq!(issues.len(), 2, "{names:?}");
}

#[test]
fn double_dollar_is_a_literal_dollar() {
    assert_eq!(ok("a = \"$$HOME\"", &[("HOME", "/root")]), "a = \"$HOME\"");
    assert_eq!(ok("a = \"$${X}\"", &[]), "a = \"${X}\"");
    assert_eq!(ok("a = 'x$$'", &[]), "a = 'x$'");
    // A lone `$` is left alone.
    assert_eq!(ok("a = \"5$ or $x\"", &[]), "a = \"5$ or $x\"");
}

#[test]
fn nested_defaults_and_braces() {
    assert_eq!(ok("a = \"${A:-${B:-c}}\"", &[]), "a = \"c\"");
    assert_eq!(ok("a = \"${A:-${B:-c}}\"", &[("B", "b")]), "a = \"b\"");
    assert_eq!(ok("a = \"${A:-${B:-c}}\"", &[("A", "a")]), "a = \"a\"");
    // Plain braces in a default are balanced, not mistaken for the end.
    assert_eq!(ok("a = '${A:-{x}}'", &[]), "a = '{x}'");
    assert_eq!(ok("a = \"${A:-$${B}}\"", &[]), "a = \"${B}\"");
    // A missing variable inside a default is reported where it is written.
    let text = "a = \"${A:-${B}}\"";
    let issues = errs(text, &[]);
    assert_eq!(issues.len(), 1);
    assert_eq!(&text[issues[0].span.clone()], "${B}");
}

#[test]
fn adjacent_variables() {
    assert_eq!(
        ok("a = \"${A}${B}\"", &[("A", "1"), ("B", "2")]),
        "a = \"12\""
    );
    assert_eq!(ok("a = ${A}${B}", &[("A", "1"), ("B", "2")]), "a = 12");
    assert_eq!(
        ok("a = \"${A}$$${B}\"", &[("A", "1"), ("B", "2")]),
        "a = \"1$2\""
    );
}

#[test]
fn comments_are_not_interpolated() {
    let text = "# use ${LOKI_URL} here\na = 1 # or ${X}\n";
    assert_eq!(ok(text, &[]), text);
    // A `#` inside a string is not a comment.
    assert_eq!(ok("a = \"#${X}\"", &[("X", "1")]), "a = \"#1\"");
}

#[test]
fn malformed_expressions_are_errors() {
    for (text, expected) in [
        ("a = \"${}\"", "${}"),
        ("a = \"${1X}\"", "${1X}"),
        ("a = \"${X\"", "\""),
        ("a = ${X", "${"),
        ("a = \"${X:-abc\"", "${"),
        ("a = \"${X-d}\"", "-"),
    ] {
        let issues = errs(text, &[("X", "v")]);
        assert_eq!(issues.len(), 1, "{text}");
        assert_eq!(issues[0].kind, ProblemKind::BadInterpolation, "{text}");
        assert_eq!(&text[issues[0].span.clone()], expected, "{text}");
    }
}

#[test]
fn values_cannot_break_out_of_basic_strings() {
    let out = ok("a = \"${X}\"\nb = 1", &[("X", "x\" \nb = \"pwned\\")]);
    let parsed: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(parsed["a"].as_str(), Some("x\" \nb = \"pwned\\"));
    assert_eq!(parsed["b"].as_integer(), Some(1));
}

#[test]
fn values_that_cannot_stand_in_literal_strings_are_errors() {
    let text = "a = '${X}'";
    let issues = errs(text, &[("X", "it's")]);
    assert_eq!(issues[0].kind, ProblemKind::BadInterpolation);
    assert_eq!(&text[issues[0].span.clone()], "${X}");
    // The value is never quoted: it may be a secret.
    assert!(!issues[0].message.contains("it's"));
    assert!(errs("a = '''${X}'''", &[("X", "'")]).len() == 1);
    assert!(errs("a = '''${X}'''", &[("X", "\nx")]).len() == 1);
    assert_eq!(ok("a = '''x${X}'''", &[("X", "\ny")]), "a = '''x\ny'''");
}

#[test]
fn an_escape_hides_the_dollar_that_follows() {
    // `\$` is not interpolated (TOML then rejects the escape), so a value can never finish
    // an escape sequence.
    assert_eq!(ok("a = \"\\${X}\"", &[("X", "n")]), "a = \"\\${X}\"");
}

#[test]
fn offsets_map_back_to_the_original() {
    let text = "a = \"${LONG_NAME}\"\nb = ${N}\nc = \"${E}\"\nd = 1";
    let got = run(text, &[("LONG_NAME", "v"), ("N", "123456"), ("E", "")]).unwrap();
    assert_eq!(got.text, "a = \"v\"\nb = 123456\nc = \"\"\nd = 1");
    let map = &got.map;
    let out = &got.text;
    let find = |s: &str| {
        let at = out.find(s).unwrap();
        at..at + s.len()
    };
    let orig = |s: &str| {
        let at = text.find(s).unwrap();
        at..at + s.len()
    };
    // Untouched text before and after substitutions.
    assert_eq!(map.to_original(find("a = ")), orig("a = "));
    assert_eq!(map.to_original(find("d = 1")), orig("d = 1"));
    // A value maps to the whole expression that produced it.
    assert_eq!(map.to_original(find("\"v\"")), orig("\"${LONG_NAME}\""));
    assert_eq!(map.to_original(find("123456")), orig("${N}"));
    // Part of a value maps to the expression too.
    let digits = find("123456");
    assert_eq!(
        map.to_original(digits.start + 2..digits.start + 3),
        orig("${N}")
    );
    // An empty value: the string's quotes map around the expression.
    assert_eq!(map.to_original(find("c = \"\"")), orig("c = \"${E}\""));
    // A zero-width span where an empty value stood points at its expression.
    let empty_at = find("c = \"\"").start + 5;
    let e = orig("${E}");
    assert_eq!(map.to_original(empty_at..empty_at), e.start..e.end);
}

#[test]
fn offsets_after_double_dollar_shift_by_one() {
    let text = "a = \"$$\"\nb = x";
    let got = run(text, &[]).unwrap();
    let at = got.text.find('x').unwrap();
    assert_eq!(
        got.map.to_original(at..at + 1),
        text.find('x').unwrap()..text.len()
    );
}

proptest! {
    #[test]
    fn text_without_dollar_is_unchanged(text in "[^$]*") {
        let got = interpolate(&text, &|_| None).unwrap();
        prop_assert_eq!(&got.text, &text);
        prop_assert_eq!(got.map.to_original(0..text.len()), 0..text.len());
    }

    #[test]
    fn random_text_never_panics(text in "(\\PC|[${}:\\-\"'#\\\\\n])*") {
        let env = |name: &str| name.len().is_multiple_of(2).then(|| format!("v\"'{name}\n"));
        if let Ok(got) = interpolate(&text, &env) {
            // Every span maps inside the original.
            for end in 0..=got.text.len() {
                let span = got.map.to_original(0..end);
                prop_assert!(span.end <= text.len());
            }
        }
    }

    #[test]
    fn any_value_is_the_exact_content_of_a_basic_string(value in "\\PC*|[\"\\\\\n\t\r\u{0}\u{7f}]*") {
        let env = |_: &str| Some(value.clone());
        for template in ["a = \"${V}\"", "a = \"\"\"${V}\"\"\"", "a = \"x${V}y\""] {
            let got = interpolate(template, &env).unwrap();
            let parsed: toml::Table = toml::from_str(&got.text).unwrap();
            let expected = if template.contains("x${V}y") { format!("x{value}y") } else { value.clone() };
            prop_assert_eq!(parsed["a"].as_str(), Some(expected.as_str()));
        }
    }

    #[test]
    fn a_value_in_a_literal_string_is_exact_or_refused(value in "\\PC*|['\n\t]*") {
        let env = |_: &str| Some(value.clone());
        for template in ["a = '${V}'", "a = '''${V}'''"] {
            if let Ok(got) = interpolate(template, &env) {
                let parsed: toml::Table = toml::from_str(&got.text).unwrap();
                prop_assert_eq!(parsed["a"].as_str(), Some(value.as_str()));
            }
        }
    }
}
