//! Several config files (`--config a.toml --config b.toml`, as in Vector) become one document.
//!
//! Each file is parsed on its own, its spans are moved into one offset space (file `i`'s text
//! starts at its `base`, see [`crate::report::Files`]), and the tables are merged: components
//! of `[sources]`, `[transforms]` and `[sinks]` are pooled, an id defined twice is an error at
//! its second definition, and any other top-level key (`data_dir`, `[telemetry]`) may be set
//! by one file only. Everything after this step (decoding, validation, the graph) sees one
//! document and needs no notion of files.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::ProblemKind;
use crate::report::Issue;

/// The top-level tables whose entries (components) several files may contribute to.
const SECTIONS: [&str; 3] = ["sources", "transforms", "sinks"];

/// Moves every span of a parsed file by `by` bytes.
pub(crate) fn shift_table(table: DeTable<'_>, by: usize) -> DeTable<'_> {
    table
        .into_iter()
        .map(|(key, value)| {
            let span = moved(key.span(), by);
            (Spanned::new(span, key.into_inner()), shift(value, by))
        })
        .collect()
}

fn shift(value: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    let span = moved(value.span(), by);
    let inner = match value.into_inner() {
        DeValue::Table(table) => DeValue::Table(shift_table(table, by)),
        DeValue::Array(mut array) => {
            for item in array.iter_mut() {
                let taken = std::mem::replace(item, Spanned::new(0..0, DeValue::Boolean(false)));
                *item = shift(taken, by);
            }
            DeValue::Array(array)
        }
        scalar => scalar,
    };
    Spanned::new(span, inner)
}

fn moved(span: Range<usize>, by: usize) -> Range<usize> {
    span.start + by..span.end + by
}

/// Merges one file's (shifted) table into `into`, recording clashes in `issues`.
pub(crate) fn merge_into<'i>(into: &mut DeTable<'i>, file: DeTable<'i>, issues: &mut Vec<Issue>) {
    for (key, value) in file {
        let name = key.get_ref().to_string();
        let Some((first_key, _)) = into.get_key_value(name.as_str()) else {
            into.insert(key, value);
            continue;
        };
        let first_span = first_key.span();
        let section = into.get_mut(name.as_str()).and_then(|v| match v.get_mut() {
            DeValue::Table(table) => Some(table),
            _ => None,
        });
        match (section, value.into_inner()) {
            (Some(section), DeValue::Table(components)) if SECTIONS.contains(&name.as_str()) => {
                for (id, component) in components {
                    match section.get_key_value(id.get_ref().as_ref()) {
                        Some((first, _)) => issues.push(
                            Issue::new(
                                ProblemKind::DuplicateId,
                                id.span(),
                                format!(
                                    "`{name}.{}` is already defined in another config file",
                                    id.get_ref()
                                ),
                                "defined again here",
                            )
                            .with_secondary(first.span(), "first defined here"),
                        ),
                        None => {
                            section.insert(id, component);
                        }
                    }
                }
            }
            _ => issues.push(
                Issue::new(
                    ProblemKind::Conflict,
                    key.span(),
                    format!("`{name}` is set in more than one config file"),
                    "set again here",
                )
                .with_secondary(first_span, "first set here")
                .with_help("settings outside sources, transforms and sinks belong in one file"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, base: usize) -> DeTable<'_> {
        shift_table(DeTable::parse(text).unwrap().into_inner(), base)
    }

    #[test]
    fn spans_move_with_the_file() {
        let table = parse("[sources.a]\ntype = \"stdin\"\nx = [1, 2]\n", 100);
        let sources = table.get("sources").unwrap();
        let a = sources.get_ref().as_table().unwrap().get("a").unwrap();
        let x = a.get_ref().as_table().unwrap().get("x").unwrap();
        assert_eq!(x.span(), 131..137);
        let second = &x.get_ref().as_array().unwrap()[1];
        assert_eq!(second.span(), 135..136);
    }

    #[test]
    fn components_pool_and_clashes_are_reported_at_the_second() {
        let first = "data_dir = \"/a\"\n[sources.a]\ntype = \"stdin\"\n";
        let second =
            "data_dir = \"/b\"\n[sources.b]\ntype = \"stdin\"\n[sources.a]\ntype = \"stdin\"\n";
        let mut merged = parse(first, 0);
        let mut issues = Vec::new();
        merge_into(&mut merged, parse(second, 1000), &mut issues);
        let sources = merged.get("sources").unwrap().get_ref().as_table().unwrap();
        let ids: Vec<String> = sources
            .iter()
            .map(|(k, _)| k.get_ref().to_string())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        let kinds: Vec<(ProblemKind, usize)> =
            issues.iter().map(|i| (i.kind, i.span.start)).collect();
        assert_eq!(
            kinds,
            [
                (ProblemKind::Conflict, 1000),
                (ProblemKind::DuplicateId, 1052)
            ]
        );
    }
}
