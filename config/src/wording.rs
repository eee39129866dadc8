//! Says serde's type errors in the words of a config file: "expected a whole number, found
//! the string "10s"" rather than "invalid type: string "10s", expected u64". The people who
//! read these messages write TOML, not Rust.

/// Rewrites a serde `invalid type` / `invalid value` message; any other message is returned
/// as it is. The second value is a hint, when one helps.
pub(crate) fn plain(message: &str) -> (String, Option<String>) {
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    let Some((found, expected)) = rest.and_then(|r| r.rsplit_once(", expected ")) else {
        return (message.to_owned(), None);
    };
    let expected = expected_words(expected);
    let found = found_words(found);
    let hint = (expected == "a list" && found.starts_with("the string "))
        .then(|| "a list is written in brackets, e.g. `[\"one\", \"two\"]`".to_owned());
    (format!("expected {expected}, found {found}"), hint)
}

/// The Rust type serde names, as a config author would say it.
fn expected_words(expected: &str) -> String {
    let words = match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" | "a borrowed string" | "path string" | "a character" => "a string in quotes",
        "a sequence" => "a list",
        "a map" => "a table",
        other if other.starts_with("struct ") => "a table",
        other => other,
    };
    words.to_owned()
}

/// serde's description of the value found (its `Unexpected`), as a config author would say it.
fn found_words(found: &str) -> String {
    let value = || found.split('`').nth(1).unwrap_or_default();
    if let Some(text) = found.strip_prefix("string ") {
        format!("the string {text}")
    } else if found.starts_with("integer ") || found.starts_with("floating point ") {
        format!("the number {}", value())
    } else if found.starts_with("boolean ") {
        value().to_owned()
    } else {
        match found {
            "sequence" => "a list".to_owned(),
            "map" => "a table".to_owned(),
            other => other.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn rust_types_become_config_words() {
        assert_eq!(
            plain(r#"invalid type: string "10s", expected u64"#).0,
            r#"expected a whole number (0 or more), found the string "10s""#
        );
        assert_eq!(
            plain("invalid value: integer `-1`, expected u64").0,
            "expected a whole number (0 or more), found the number -1"
        );
        assert_eq!(
            plain("invalid type: integer `5`, expected a boolean").0,
            "expected true or false, found the number 5"
        );
        assert_eq!(
            plain("invalid type: boolean `true`, expected a string").0,
            "expected a string in quotes, found true"
        );
        assert_eq!(
            plain("invalid type: sequence, expected a map").0,
            "expected a table, found a list"
        );
    }

    #[test]
    fn a_string_where_a_list_belongs_gets_a_hint() {
        let (message, hint) =
            plain(r#"invalid type: string "/var/log/*.log", expected a sequence"#);
        assert_eq!(
            message,
            r#"expected a list, found the string "/var/log/*.log""#
        );
        assert!(hint.is_some_and(|h| h.contains("brackets")));
    }

    #[test]
    fn other_messages_are_kept() {
        let message = "unknown field `incude`, expected one of `include`, `exclude`";
        assert_eq!(plain(message), (message.to_owned(), None));
    }
}
