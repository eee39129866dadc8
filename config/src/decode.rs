//! Turns the parsed document into the typed [`Config`], component by component.
//!
//! The schema's `type`-tagged enums derive `Deserialize`, but serde buffers an internally
//! tagged table before picking the variant, which loses every position inside it. So here
//! each `[sources.<id>]` (and transform, and sink) is dispatched on its `type` by hand and
//! the rest of the table is deserialized straight into the variant's struct: an unknown or
//! missing key then points at its own line. Each component is decoded independently, so one
//! load reports the mistakes of every component at once.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::ProblemKind;
use crate::report::Issue;
use crate::schema::{
    BlackholeSinkConfig, Config, ConsoleSinkConfig, DockerSourceConfig, ExtractTransformConfig,
    FileSourceConfig, KubernetesLogsSourceConfig, LokiSinkConfig, SinkConfig, SourceConfig,
    StdinSourceConfig, TransformConfig,
};
use crate::suggest::did_you_mean;

/// The `type` values of each section, for messages.
pub(crate) const SOURCE_TYPES: &[&str] = &["file", "stdin", "docker", "kubernetes_logs"];
pub(crate) const TRANSFORM_TYPES: &[&str] = &["json", "logfmt", "regex"];
pub(crate) const SINK_TYPES: &[&str] = &["loki", "console", "blackhole"];

/// A decoded document: the config with every component that decoded, and the issues of those
/// that did not.
pub(crate) struct Decoded {
    /// `data_dir` and `[telemetry]` (defaults when they failed to decode) and the components
    /// that decoded. Complete only when `issues` is empty.
    pub config: Config,
    /// Every decoding mistake found, in no particular order.
    pub issues: Vec<Issue>,
}

/// Decodes a whole document, going on past mistakes so that one run reports them all.
pub(crate) fn decode(doc: &Spanned<DeTable<'_>>) -> Decoded {
    let mut issues = Vec::new();
    let mut globals = doc.get_ref().clone();
    let sources = globals.remove("sources");
    let transforms = globals.remove("transforms");
    let sinks = globals.remove("sinks");

    // What is left is `data_dir` and `[telemetry]` (and any misspelt top-level key, which
    // `Config`'s deny_unknown_fields names together with the valid ones).
    let mut config = decode_collecting(doc.span(), globals, &mut issues, de::<Config>)
        // With defaults in their place the components are still checked.
        .unwrap_or_default();
    config.sources = section(
        sources,
        "sources",
        "source",
        SOURCE_TYPES,
        decode_source,
        &mut issues,
    );
    config.transforms = section(
        transforms,
        "transforms",
        "transform",
        TRANSFORM_TYPES,
        decode_transform,
        &mut issues,
    );
    config.sinks = section(sinks, "sinks", "sink", SINK_TYPES, decode_sink, &mut issues);
    Decoded { config, issues }
}

/// Most mistakes one table is searched for, a bound on re-decoding.
const MAX_ISSUES_PER_TABLE: usize = 32;

/// Decodes one table with `decode_one`, and on a mistake records it, removes the key it is in
/// and decodes again, so every misspelt key and wrong value of the table is reported in one
/// run (serde stops at the first). `None` when the table had mistakes.
fn decode_collecting<T>(
    span: Range<usize>,
    mut fields: DeTable<'_>,
    issues: &mut Vec<Issue>,
    decode_one: impl Fn(Spanned<DeValue<'_>>) -> Result<T, toml::de::Error>,
) -> Option<T> {
    let mut removed: Vec<String> = Vec::new();
    loop {
        let table = Spanned::new(span.clone(), DeValue::Table(fields.clone()));
        let error = match decode_one(table) {
            Ok(decoded) if removed.is_empty() => return Some(decoded),
            Ok(_) => return None,
            Err(error) => error,
        };
        // A required key that was removed above, or that a misspelt key already reported
        // stands for (`incude` → "did you mean `include`?"), is missing because of a mistake
        // already reported: nothing more can be learnt from this table.
        if error.message().starts_with("missing field")
            && backticked(error.message())
                .first()
                .is_some_and(|k| removed.iter().any(|r| r == k))
        {
            return None;
        }
        let issue = from_toml(&error, span.clone());
        if issue.kind == ProblemKind::UnknownField
            && let Some(meant) = issue
                .help
                .as_deref()
                .and_then(|h| backticked(h).first().copied())
        {
            removed.push(meant.to_owned());
        }
        issues.push(issue);
        let key = error.span().and_then(|at| {
            fields
                .iter()
                .find(|(k, v)| {
                    let (k, v) = (k.span(), v.span());
                    (k.start <= at.start && at.start < k.end.max(k.start + 1))
                        || (v.start <= at.start && at.start < v.end.max(v.start + 1))
                })
                .map(|(k, _)| k.get_ref().to_string())
        });
        match key {
            Some(key) if removed.len() < MAX_ISSUES_PER_TABLE => {
                fields.remove(key.as_str());
                removed.push(key);
            }
            _ => return None,
        }
    }
}

/// Decodes a component of a known `type` (the caller checked it is one of the section's).
type DecodeFn<T> = fn(&str, Spanned<DeValue<'_>>) -> Result<T, toml::de::Error>;

/// Decodes one of `[sources]`, `[transforms]`, `[sinks]`.
fn section<T>(
    value: Option<Spanned<DeValue<'_>>>,
    name: &str,
    singular: &str,
    types: &[&str],
    decode_one: DecodeFn<T>,
    issues: &mut Vec<Issue>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    let Some(value) = value else {
        return out;
    };
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        issues.push(Issue::new(
            ProblemKind::InvalidType,
            span,
            format!("`{name}` must be a table of components, written `[{name}.<id>]`"),
            "not a table",
        ));
        return out;
    };
    for (id, component) in table {
        let component_span = component.span();
        let DeValue::Table(mut fields) = component.into_inner() else {
            issues.push(Issue::new(
                ProblemKind::InvalidType,
                component_span,
                format!("`{name}.{}` must be a table", id.get_ref()),
                "not a table",
            ));
            continue;
        };
        let one_of = types
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let Some(type_value) = fields.remove("type") else {
            issues.push(
                Issue::new(
                    ProblemKind::MissingField,
                    component_span,
                    format!("missing field `type` in {singular} `{}`", id.get_ref()),
                    "this table needs `type = \"...\"`",
                )
                .with_help(format!("`type` is one of {one_of}")),
            );
            continue;
        };
        let type_span = type_value.span();
        let Some(type_name) = type_value.get_ref().as_str() else {
            issues.push(Issue::new(
                ProblemKind::InvalidType,
                type_span,
                format!("`type` must be a string, one of {one_of}"),
                "not a string",
            ));
            continue;
        };
        if !types.contains(&type_name) {
            let mut issue = Issue::new(
                ProblemKind::UnknownComponentType,
                type_span,
                format!("unknown {singular} type `{type_name}`, expected one of {one_of}"),
                "unknown type",
            );
            issue.help = did_you_mean(type_name, types.iter().copied());
            issues.push(issue);
            continue;
        }
        if let Some(decoded) = decode_collecting(component_span, fields, issues, |table| {
            decode_one(type_name, table)
        }) {
            out.insert(id.into_inner().into_owned(), decoded);
        }
    }
    out
}

/// Never reached: `section` refuses types not in its list before decoding.
fn unknown_type(type_name: &str) -> toml::de::Error {
    serde::de::Error::custom(format!("unknown type `{type_name}`"))
}

fn de<T: DeserializeOwned>(value: Spanned<DeValue<'_>>) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(value))
}

fn decode_source(
    type_name: &str,
    value: Spanned<DeValue<'_>>,
) -> Result<SourceConfig, toml::de::Error> {
    match type_name {
        "file" => de::<FileSourceConfig>(value).map(SourceConfig::File),
        "stdin" => de::<StdinSourceConfig>(value).map(SourceConfig::Stdin),
        "docker" => de::<DockerSourceConfig>(value).map(SourceConfig::Docker),
        "kubernetes_logs" => {
            de::<KubernetesLogsSourceConfig>(value).map(SourceConfig::KubernetesLogs)
        }
        other => Err(unknown_type(other)),
    }
}

fn decode_transform(
    type_name: &str,
    value: Spanned<DeValue<'_>>,
) -> Result<TransformConfig, toml::de::Error> {
    match type_name {
        "json" => de::<ExtractTransformConfig>(value).map(TransformConfig::Json),
        "logfmt" => de::<ExtractTransformConfig>(value).map(TransformConfig::Logfmt),
        "regex" => de::<ExtractTransformConfig>(value).map(TransformConfig::Regex),
        other => Err(unknown_type(other)),
    }
}

fn decode_sink(
    type_name: &str,
    value: Spanned<DeValue<'_>>,
) -> Result<SinkConfig, toml::de::Error> {
    match type_name {
        "loki" => de::<LokiSinkConfig>(value).map(|c| SinkConfig::Loki(Box::new(c))),
        "console" => de::<ConsoleSinkConfig>(value).map(SinkConfig::Console),
        "blackhole" => de::<BlackholeSinkConfig>(value).map(SinkConfig::Blackhole),
        other => Err(unknown_type(other)),
    }
}

/// Classifies a serde error from toml and adds a "did you mean" where serde listed the
/// valid words.
pub(crate) fn from_toml(e: &toml::de::Error, fallback: Range<usize>) -> Issue {
    let (message, hint) = crate::wording::plain(e.message().trim());
    let span = e.span().unwrap_or(fallback);
    let (kind, label) = if message.starts_with("unknown field") {
        (ProblemKind::UnknownField, "unknown field")
    } else if message.starts_with("missing field") {
        (ProblemKind::MissingField, "in this table")
    } else {
        (ProblemKind::InvalidType, "invalid value")
    };
    let mut issue = Issue::new(kind, span, message, label);
    issue.help = hint;
    if message_lists_choices(&issue.message) {
        let quoted = backticked(&issue.message);
        if let Some((word, choices)) = quoted.split_first() {
            issue.help = did_you_mean(word, choices.iter().copied());
        }
    }
    issue
}

fn message_lists_choices(message: &str) -> bool {
    message.starts_with("unknown field") || message.starts_with("unknown variant")
}

/// The `quoted` words of a serde message, in order.
fn backticked(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticked_words_are_extracted_in_order() {
        assert_eq!(
            backticked("unknown field `incude`, expected one of `include`, `exclude`"),
            vec!["incude", "include", "exclude"]
        );
    }
}
