//! Checks for `[sources.<id>]`.

use std::collections::BTreeMap;

use crate::error::ProblemKind;
use crate::globs::FileGlob;
use crate::report::Issue;
use crate::schema::{
    DockerSourceConfig, FileSourceConfig, KubernetesLogsSourceConfig, SourceConfig,
    StdinSourceConfig,
};

use super::names::looks_high_cardinality;
use super::{Checker, extend, label_name_problem};

/// Container attributes a docker source can map to labels and metadata.
const DOCKER_ATTRIBUTES: &[&str] = &[
    "container",
    "container_id",
    "image",
    "stream",
    "compose_service",
    "compose_project",
];

/// Schemes `docker_host` may use.
const DOCKER_SCHEMES: &[&str] = &["unix://", "tcp://", "http://", "https://"];

/// Checks one source.
pub(crate) fn check(c: &mut Checker<'_, '_, '_>, id: &str, source: &SourceConfig) {
    let base = ["sources", id];
    match source {
        SourceConfig::File(f) => file(c, &base, f),
        SourceConfig::Stdin(s) => stdin(c, &base, s),
        SourceConfig::Docker(d) => docker(c, &base, d),
        SourceConfig::KubernetesLogs(k) => kubernetes_logs(c, &base, k),
    }
}

fn file(c: &mut Checker<'_, '_, '_>, base: &[&str], f: &FileSourceConfig) {
    if f.include.is_empty() {
        c.error_at_value(
            ProblemKind::InvalidValue,
            &extend(base, "include"),
            "`include` needs at least one glob",
            "empty",
        );
    }
    for (key, globs) in [("include", &f.include), ("exclude", &f.exclude)] {
        for (i, glob) in globs.iter().enumerate() {
            let problem = match FileGlob::new(glob) {
                Err(e) => Some(e.0),
                Ok(_) if key == "include" && f.exclude.contains(glob) => Some(
                    "the same glob is in `exclude`, so every file it matches is excluded"
                        .to_owned(),
                ),
                Ok(_) => None,
            };
            if let Some(why) = problem {
                let span = c.loc.item(&extend(base, key), i);
                c.error(Issue::new(
                    ProblemKind::InvalidGlob,
                    span,
                    format!("invalid glob in `{key}`: {why}"),
                    "invalid glob",
                ));
            }
        }
    }
    c.positive(&extend(base, "max_line_bytes"), f.max_line_bytes as u64);
    c.positive(&extend(base, "glob_interval_ms"), f.glob_interval_ms);
    c.positive(&extend(base, "open_files_limit"), f.open_files_limit as u64);
    if !f.filename_label.is_empty()
        && let Some(why) = label_name_problem(&f.filename_label)
    {
        c.error_at_value(
            ProblemKind::InvalidLabelName,
            &extend(base, "filename_label"),
            format!("invalid label name `{}`: {why}", f.filename_label),
            "invalid name",
        );
    }
    c.static_labels(&extend(base, "labels"), &f.labels);
    c.multiline(base, f.multiline.as_ref());
}

fn stdin(c: &mut Checker<'_, '_, '_>, base: &[&str], s: &StdinSourceConfig) {
    c.positive(&extend(base, "max_line_bytes"), s.max_line_bytes as u64);
    c.static_labels(&extend(base, "labels"), &s.labels);
    c.multiline(base, s.multiline.as_ref());
}

fn docker(c: &mut Checker<'_, '_, '_>, base: &[&str], d: &DockerSourceConfig) {
    if let Some(host) = &d.docker_host
        && !DOCKER_SCHEMES.iter().any(|s| host.starts_with(s))
    {
        c.error(
            Issue::new(
                ProblemKind::InvalidUrl,
                c.loc.value(&extend(base, "docker_host")),
                "`docker_host` must be a `unix://`, `tcp://`, `http://` or `https://` address",
                "unsupported address",
            )
            .with_help("for example `unix:///var/run/docker.sock`"),
        );
    }
    for (i, filter) in d.include_labels.iter().enumerate() {
        if filter.split('=').next().is_none_or(str::is_empty) {
            let span = c.loc.item(&extend(base, "include_labels"), i);
            c.error(Issue::new(
                ProblemKind::InvalidValue,
                span,
                "a label filter is `key` or `key=value`, with a non-empty key",
                "no key",
            ));
        }
    }
    attribute_map(c, &extend(base, "labels"), &d.labels, "label");
    attribute_map(
        c,
        &extend(base, "structured_metadata"),
        &d.structured_metadata,
        "structured-metadata",
    );
    c.static_labels(&extend(base, "static_labels"), &d.static_labels);
    c.multiline(base, d.multiline.as_ref());
    c.positive(&extend(base, "max_line_bytes"), d.max_line_bytes as u64);
}

fn kubernetes_logs(c: &mut Checker<'_, '_, '_>, base: &[&str], k: &KubernetesLogsSourceConfig) {
    let files = k.file_config();
    if let Some(Err(e)) = files.include.first().map(|g| FileGlob::new(g)) {
        c.error(Issue::new(
            ProblemKind::InvalidValue,
            c.loc.value(&extend(base, "pods_dir")),
            format!("invalid `pods_dir`: {}", e.0),
            "not an absolute directory",
        ));
    }
    if k.metadata && k.node_name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        let span = if k.node_name.is_some() {
            c.loc.value(&extend(base, "node_name"))
        } else {
            c.loc.key(base)
        };
        c.error(
            Issue::new(
                ProblemKind::MissingField,
                span,
                "`node_name` is required to watch this node's pods",
                "no node name",
            )
            .with_help(
                "set `node_name = \"${NODE_NAME}\"` with NODE_NAME from the downward API (spec.nodeName), or `metadata = false` for path labels only",
            ),
        );
    }
    if !k.metadata && k.kubeconfig.is_some() {
        c.warn(
            c.loc.key(&extend(base, "kubeconfig")),
            "`kubeconfig` is unused: `metadata = false` makes no API calls",
        );
    }
    for (key, map, what) in [
        ("pod_labels", &k.pod_labels, "label"),
        ("pod_annotations", &k.pod_annotations, "label"),
        (
            "pod_labels_as_metadata",
            &k.pod_labels_as_metadata,
            "structured-metadata",
        ),
        (
            "pod_annotations_as_metadata",
            &k.pod_annotations_as_metadata,
            "structured-metadata",
        ),
    ] {
        let path = extend(base, key);
        c.label_names(&path, map, what);
        for (name, pod_key) in map {
            if pod_key.is_empty() {
                c.non_empty(&extend(&path, name), pod_key);
            } else if what == "label"
                && (looks_high_cardinality(pod_key) || pod_key.ends_with("-hash"))
            {
                let span = c.loc.key(&extend(&path, name));
                c.warn(
                    span,
                    format!("label `{name}` takes the pod's `{pod_key}`, which looks high-cardinality; map it in `{key}_as_metadata` instead"),
                );
            }
        }
    }
    for (i, ns) in k.include_namespaces.iter().enumerate() {
        if k.exclude_namespaces.contains(ns) {
            let span = c.loc.item(&extend(base, "include_namespaces"), i);
            c.warn(
                span,
                format!(
                    "namespace `{ns}` is also in `exclude_namespaces`, which wins: it is not read"
                ),
            );
        }
    }
    c.non_empty(&extend(base, "exclude_annotation"), &k.exclude_annotation);
    c.positive(&extend(base, "max_line_bytes"), k.max_line_bytes as u64);
    c.positive(&extend(base, "glob_interval_ms"), k.glob_interval_ms);
    c.positive(&extend(base, "open_files_limit"), k.open_files_limit as u64);
    c.static_labels(&extend(base, "labels"), &k.labels);
    c.multiline(base, k.multiline.as_ref());
}

/// A docker `labels` or `structured_metadata` map: valid names, known attributes, and a
/// warning for labels that take a new value per container.
fn attribute_map(
    c: &mut Checker<'_, '_, '_>,
    path: &[&str],
    map: &BTreeMap<String, String>,
    what: &str,
) {
    c.label_names(path, map, what);
    for (name, attribute) in map {
        let known = DOCKER_ATTRIBUTES.contains(&attribute.as_str())
            || attribute
                .strip_prefix("label.")
                .is_some_and(|key| !key.is_empty());
        let value_path = extend(path, name);
        if !known {
            let mut issue = Issue::new(
                ProblemKind::InvalidValue,
                c.loc.value(&value_path),
                format!(
                    "unknown container attribute `{attribute}`, expected one of {}, or `label.<key>`",
                    DOCKER_ATTRIBUTES
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "unknown attribute",
            );
            issue.help = crate::suggest::did_you_mean(attribute, DOCKER_ATTRIBUTES.iter().copied());
            c.error(issue);
        } else if what == "label" && looks_high_cardinality(attribute) {
            let span = c.loc.key(&value_path);
            c.warn(
                span,
                format!(
                    "label `{name}` takes the container attribute `{attribute}`, which looks high-cardinality; use structured_metadata instead"
                ),
            );
        }
    }
}
