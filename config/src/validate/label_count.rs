//! Whether a Loki sink can receive lines with more labels than its Loki accepts
//! (`limits.max_label_names_per_series`, counting the `service_name` Loki 3 adds when a stream
//! has none).
//!
//! Every label name in a pipeline is known from the config: a source's own labels (its
//! static labels, `filename`, the container or pod attributes it maps), each transform's
//! extracted labels, the sink's static labels. A line collects the names of the components it
//! passes through, so the check follows every path from a source to the sink and takes the
//! largest set. At run time the sink would move the surplus to structured metadata; a config
//! that makes that happen is refused so the user chooses which labels to keep.

use std::collections::BTreeSet;

use crate::error::ProblemKind;
use crate::graph::Graph;
use crate::report::Issue;
use crate::schema::{Config, FileDecoder, SinkConfig, SourceConfig, TransformConfig};

use super::Checker;

/// The label Loki adds to a stream without one.
const SERVICE_NAME: &str = "service_name";

/// Checks every Loki sink of `config`.
pub(crate) fn check(c: &mut Checker<'_, '_, '_>, config: &Config, graph: &Graph) {
    for (id, sink) in &config.sinks {
        let SinkConfig::Loki(loki) = sink else {
            continue;
        };
        let limit = loki.limits.max_label_names_per_series;
        let statics: BTreeSet<&str> = loki.labels.keys().map(String::as_str).collect();
        let mut widest: Option<BTreeSet<&str>> = None;
        for input in graph.inputs_of(id) {
            for path in paths(config, graph, input, 0) {
                let mut names = path;
                names.extend(&statics);
                if widest.as_ref().is_none_or(|w| names.len() > w.len()) {
                    widest = Some(names);
                }
            }
        }
        let Some(names) = widest else { continue };
        let count = names.len() + usize::from(!names.contains(SERVICE_NAME));
        if count <= limit {
            continue;
        }
        // The limit where the user set it, else (a default) the sink.
        let span = c
            .loc
            .value(&["sinks", id.as_str(), "limits", "max_label_names_per_series"]);
        let listed: Vec<&str> = names.into_iter().collect();
        let service = if listed.contains(&SERVICE_NAME) {
            ""
        } else {
            " and the `service_name` Loki adds"
        };
        c.error(
            Issue::new(
                ProblemKind::TooManyLabels,
                span,
                format!(
                    "sink `{id}` can receive lines with {count} labels ({}{service}), more than Loki's max_label_names_per_series ({limit})",
                    listed.join(", ")
                ),
                "too many labels",
            )
            .with_help(
                "send some fields as `structured_metadata` instead of labels, or set `limits.max_label_names_per_series` if your Loki accepts more",
            ),
        );
    }
}

/// The label-name sets of every path from a source to `id` (inclusive).
fn paths<'c>(config: &'c Config, graph: &Graph, id: &str, depth: usize) -> Vec<BTreeSet<&'c str>> {
    let own = own_labels(config, id);
    let inputs = graph.inputs_of(id);
    // The graph is acyclic; the depth bound only guards against a bug there.
    if inputs.is_empty() || depth > 64 {
        return vec![own];
    }
    inputs
        .iter()
        .flat_map(|input| paths(config, graph, input, depth + 1))
        .map(|mut set| {
            set.extend(&own);
            set
        })
        .collect()
}

/// The label names component `id` may add to a line.
fn own_labels<'c>(config: &'c Config, id: &str) -> BTreeSet<&'c str> {
    let mut names = BTreeSet::new();
    if let Some(source) = config.sources.get(id) {
        match source {
            SourceConfig::File(f) => {
                names.extend(f.labels.keys().map(String::as_str));
                if !f.filename_label.is_empty() {
                    names.insert(f.filename_label.as_str());
                }
                match f.decoder {
                    FileDecoder::None => {}
                    // Container attributes when the file is a container's log.
                    FileDecoder::Docker => {
                        names.extend(["stream", "container", "compose_service", "compose_project"])
                    }
                    FileDecoder::Cri => names.extend(["stream", "namespace", "pod", "container"]),
                }
            }
            SourceConfig::Stdin(s) => names.extend(s.labels.keys().map(String::as_str)),
            SourceConfig::Docker(d) => {
                names.extend(d.labels.keys().map(String::as_str));
                names.extend(d.static_labels.keys().map(String::as_str));
            }
            SourceConfig::KubernetesLogs(k) => {
                names.extend(["namespace", "pod", "container", "stream"]);
                names.extend(k.labels.keys().map(String::as_str));
                names.extend(k.pod_labels.keys().map(String::as_str));
                names.extend(k.pod_annotations.keys().map(String::as_str));
            }
        }
    } else if let Some(transform) = config.transforms.get(id) {
        let extract = match transform {
            TransformConfig::Json(t) | TransformConfig::Logfmt(t) | TransformConfig::Regex(t) => t,
        };
        names.extend(extract.labels.keys().map(String::as_str));
    }
    names
}
