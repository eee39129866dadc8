//! Naming rules: Loki label names and the look of high-cardinality fields.

/// Why `name` is not a valid Loki label name, or `None` when it is.
pub(crate) fn label_name_problem(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Some("it is empty"),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            return Some("it must start with a letter or `_`");
        }
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some("only letters, digits and `_` are allowed");
    }
    if name.starts_with("__") {
        return Some("names starting with `__` are reserved by Loki");
    }
    None
}

/// Whether a field (or container attribute) named like this probably takes a new value for
/// every request or entity: `id`, `*_id`, `*Id`, `*-id`, `*.id`, `uuid`.
pub(crate) fn looks_high_cardinality(field: &str) -> bool {
    let lower = field.to_ascii_lowercase();
    if lower == "id" || lower == "uuid" || lower.ends_with("uuid") {
        return true;
    }
    if ["_id", "-id", ".id"].iter().any(|s| lower.ends_with(s)) {
        return true;
    }
    // camelCase: `traceId`, `requestID`.
    let bytes = field.as_bytes();
    bytes.len() > 2
        && (field.ends_with("Id") || field.ends_with("ID"))
        && bytes[bytes.len() - 3].is_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_follow_loki_rules() {
        for ok in ["service", "_x", "a1", "level_2", "_"] {
            assert_eq!(label_name_problem(ok), None, "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é", "__name__", "__x"] {
            assert!(label_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn id_like_fields_are_high_cardinality() {
        for yes in [
            "trace_id",
            "span_id",
            "request_id",
            "id",
            "ID",
            "traceId",
            "requestID",
            "user-id",
            "req.id",
            "uuid",
        ] {
            assert!(looks_high_cardinality(yes), "{yes}");
        }
        for no in ["service", "level", "idle", "valid", "paid", "container"] {
            assert!(!looks_high_cardinality(no), "{no}");
        }
    }
}
