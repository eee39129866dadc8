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

use serde::Deserialize;
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

/// Decodes a whole document, or returns every issue found.
pub(crate) fn decode(doc: &Spanned<DeTable<'_>>) -> Result<Config, Vec<Issue>> {
    let mut issues = Vec::new();
    let mut globals = doc.get_ref().clone();
    let sources = globals.remove("sources");
    let transforms = globals.remove("transforms");
    let sinks = globals.remove("sinks");

    // What is left is `data_dir` and `[telemetry]` (and any misspelt top-level key, which
    // `Config`'s deny_unknown_fields names together with the valid ones).
    let config = Config::deserialize(ValueDeserializer::from(Spanned::new(
        doc.span(),
        DeValue::Table(globals),
    )));
    let sources = section(
        sources,
        "sources",
        "source",
        SOURCE_TYPES,
        decode_source,
        &mut issues,
    );
    let transforms = section(
        transforms,
        "transforms",
        "transform",
        TRANSFORM_TYPES,
        decode_transform,
        &mut issues,
    );
    let sinks = section(sinks, "sinks", "sink", SINK_TYPES, decode_sink, &mut issues);

    match config {
        Ok(mut config) if issues.is_empty() => {
            config.sources = sources;
            config.transforms = transforms;
            config.sinks = sinks;
            Ok(config)
        }
        Ok(_) => Err(issues),
        Err(e) => {
            issues.push(from_toml(&e, 0..0));
            Err(issues)
        }
    }
}

type DecodeFn<T> = fn(&str, Spanned<DeValue<'_>>) -> Option<Result<T, toml::de::Error>>;

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
        let rest = Spanned::new(component_span.clone(), DeValue::Table(fields));
        match decode_one(type_name, rest) {
            Some(Ok(decoded)) => {
                out.insert(id.into_inner().into_owned(), decoded);
            }
            Some(Err(e)) => issues.push(from_toml(&e, component_span)),
            None => {
                let mut issue = Issue::new(
                    ProblemKind::UnknownComponentType,
                    type_span,
                    format!("unknown {singular} type `{type_name}`, expected one of {one_of}"),
                    "unknown type",
                );
                issue.help = did_you_mean(type_name, types.iter().copied());
                issues.push(issue);
            }
        }
    }
    out
}

fn de<T: DeserializeOwned>(value: Spanned<DeValue<'_>>) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(value))
}

fn decode_source(
    type_name: &str,
    value: Spanned<DeValue<'_>>,
) -> Option<Result<SourceConfig, toml::de::Error>> {
    Some(match type_name {
        "file" => de::<FileSourceConfig>(value).map(SourceConfig::File),
        "stdin" => de::<StdinSourceConfig>(value).map(SourceConfig::Stdin),
        "docker" => de::<DockerSourceConfig>(value).map(SourceConfig::Docker),
        "kubernetes_logs" => {
            de::<KubernetesLogsSourceConfig>(value).map(SourceConfig::KubernetesLogs)
        }
        _ => return None,
    })
}

fn decode_transform(
    type_name: &str,
    value: Spanned<DeValue<'_>>,
) -> Option<Result<TransformConfig, toml::de::Error>> {
    Some(match type_name {
        "json" => de::<ExtractTransformConfig>(value).map(TransformConfig::Json),
        "logfmt" => de::<ExtractTransformConfig>(value).map(TransformConfig::Logfmt),
        "regex" => de::<ExtractTransformConfig>(value).map(TransformConfig::Regex),
        _ => return None,
    })
}

fn decode_sink(
    type_name: &str,
    value: Spanned<DeValue<'_>>,
) -> Option<Result<SinkConfig, toml::de::Error>> {
    Some(match type_name {
        "loki" => de::<LokiSinkConfig>(value).map(|c| SinkConfig::Loki(Box::new(c))),
        "console" => de::<ConsoleSinkConfig>(value).map(SinkConfig::Console),
        "blackhole" => de::<BlackholeSinkConfig>(value).map(SinkConfig::Blackhole),
        _ => return None,
    })
}

/// Classifies a serde error from toml and adds a "did you mean" where serde listed the
/// valid words.
pub(crate) fn from_toml(e: &toml::de::Error, fallback: Range<usize>) -> Issue {
    let message = e.message().trim().to_owned();
    let span = e.span().unwrap_or(fallback);
    let (kind, label) = if message.starts_with("unknown field") {
        (ProblemKind::UnknownField, "unknown field")
    } else if message.starts_with("missing field") {
        (ProblemKind::MissingField, "in this table")
    } else {
        (ProblemKind::InvalidType, "invalid value")
    };
    let mut issue = Issue::new(kind, span, message, label);
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
