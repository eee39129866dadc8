//! Checks for `[transforms.<id>]` (field extraction). Their `inputs` are checked with the
//! graph.

use logship_parsers::timestamp_format::{TimestampFormatError, TimestampParser};

use crate::error::ProblemKind;
use crate::report::Issue;
use crate::schema::{ExtractTransformConfig, TransformConfig};

use super::names::looks_high_cardinality;
use super::{Checker, extend};

/// Checks one transform.
pub(crate) fn check(c: &mut Checker<'_, '_, '_>, id: &str, transform: &TransformConfig) {
    let base = ["transforms", id];
    let (type_name, t) = match transform {
        TransformConfig::Json(t) => ("json", t),
        TransformConfig::Logfmt(t) => ("logfmt", t),
        TransformConfig::Regex(t) => ("regex", t),
    };
    let captures = pattern(c, &base, type_name, t);

    c.label_names(&extend(&base, "labels"), &t.labels, "label");
    c.label_names(
        &extend(&base, "structured_metadata"),
        &t.structured_metadata,
        "structured-metadata",
    );
    for (map_name, map) in [
        ("labels", &t.labels),
        ("structured_metadata", &t.structured_metadata),
    ] {
        for (name, field) in map {
            let path = [base[0], base[1], map_name, name.as_str()];
            field_name(c, &path, field, captures.as_deref());
            if map_name == "labels" && looks_high_cardinality(field) {
                let span = c.loc.key(&path);
                c.warn(
                    span,
                    format!(
                        "label `{name}` takes the field `{field}`, which looks high-cardinality (a new value per request); use structured_metadata instead"
                    ),
                );
            }
        }
    }
    if let Some(field) = &t.timestamp {
        field_name(c, &extend(&base, "timestamp"), field, captures.as_deref());
    }
    timestamp_format(c, &base, t);
    for field in t.drop.keys() {
        let path = [base[0], base[1], "drop", field.as_str()];
        if field.is_empty() {
            let span = c.loc.key(&path);
            c.error(Issue::new(
                ProblemKind::InvalidValue,
                span,
                "a field name in `drop` must not be empty",
                "empty",
            ));
        } else if let Some(names) = captures.as_deref()
            && !names.iter().any(|n| n == field)
        {
            let span = c.loc.key(&path);
            c.error(not_captured(span, field));
        }
    }
}

/// Checks `timestamp_format` and `timezone` with the parser the agent builds from them, and
/// that they have a `timestamp` field to apply to.
fn timestamp_format(c: &mut Checker<'_, '_, '_>, base: &[&str], t: &ExtractTransformConfig) {
    for (option, set) in [
        ("timestamp_format", t.timestamp_format.is_some()),
        ("timezone", t.timezone.is_some()),
    ] {
        if set && t.timestamp.is_none() {
            c.error_at_value(
                ProblemKind::Conflict,
                &extend(base, option),
                format!("`{option}` needs `timestamp`, the field it applies to"),
                "without `timestamp`",
            );
        }
    }
    if let Err(e) = TimestampParser::new(t.timestamp_format.as_deref(), t.timezone.as_deref()) {
        let option = match e {
            TimestampFormatError::Format { .. } => "timestamp_format",
            TimestampFormatError::TimeZone(_) => "timezone",
        };
        c.error_at_value(
            ProblemKind::InvalidValue,
            &extend(base, option),
            e.to_string(),
            "cannot be used",
        );
    }
}

/// Checks `pattern` against the type; for `regex`, returns the names of its captures.
fn pattern(
    c: &mut Checker<'_, '_, '_>,
    base: &[&str],
    type_name: &str,
    t: &ExtractTransformConfig,
) -> Option<Vec<String>> {
    let path = extend(base, "pattern");
    match (&t.pattern, type_name) {
        (None, "regex") => {
            let span = c.loc.value(base);
            c.error(
                Issue::new(
                    ProblemKind::MissingField,
                    span,
                    "missing field `pattern`: a `regex` transform needs one",
                    "this transform has no `pattern`",
                )
                .with_help(r"for example `pattern = '^(?P<level>\w+) '`"),
            );
            None
        }
        (Some(pattern), "regex") => {
            let re = c.regex(&path, pattern)?;
            let names: Vec<String> = re.capture_names().flatten().map(str::to_owned).collect();
            if names.is_empty() {
                c.error_at_value(
                    ProblemKind::InvalidRegex,
                    &path,
                    "`pattern` has no named captures, so it extracts no fields",
                    "no `(?P<name>...)`",
                );
            }
            Some(names)
        }
        (Some(_), _) => {
            let span = c.loc.key(&path);
            c.error(
                Issue::new(
                    ProblemKind::Conflict,
                    span,
                    format!("`pattern` is only for `type = \"regex\"`, not `{type_name}`"),
                    "not used by this type",
                )
                .with_help("remove it, or use `type = \"regex\"`"),
            );
            None
        }
        (None, _) => None,
    }
}

/// A field a label, metadata or timestamp is taken from: non-empty, and for `regex` a
/// capture of the pattern.
fn field_name(
    c: &mut Checker<'_, '_, '_>,
    path: &[&str],
    field: &str,
    captures: Option<&[String]>,
) {
    if field.is_empty() {
        c.error_at_value(
            ProblemKind::InvalidValue,
            path,
            "the field name must not be empty",
            "empty",
        );
    } else if let Some(names) = captures
        && !names.iter().any(|n| n == field)
    {
        let span = c.loc.value(path);
        c.error(not_captured(span, field));
    }
}

fn not_captured(span: std::ops::Range<usize>, field: &str) -> Issue {
    Issue::new(
        ProblemKind::InvalidValue,
        span,
        format!("field `{field}` is not a named capture of `pattern`, so it is never set"),
        "not captured",
    )
    .with_help(format!("add `(?P<{field}>...)` to the pattern"))
}
