//! The component graph and the warnings about its shape.

use logship_config::{ComponentId, ComponentKind};

use crate::common::{MINIMAL, load};

const DIAMOND: &str = r#"
[sources.b_src]
type = "stdin"
[sources.a_src]
type = "file"
include = ["/x/*.log"]
[transforms.z_first]
type = "json"
inputs = ["a_src", "b_src"]
[transforms.y_left]
type = "json"
inputs = ["z_first"]
[transforms.x_right]
type = "logfmt"
inputs = ["z_first"]
[transforms.w_join]
type = "json"
inputs = ["y_left", "x_right"]
[sinks.out]
type = "console"
inputs = ["w_join", "a_src"]
[sinks.all]
type = "blackhole"
inputs = ["z_first"]
"#;

fn id(kind: ComponentKind, id: &str) -> ComponentId {
    ComponentId {
        kind,
        id: id.to_owned(),
    }
}

#[test]
fn topological_order_puts_each_component_after_its_inputs() {
    let graph = load(DIAMOND).unwrap().graph;
    use ComponentKind::*;
    assert_eq!(
        graph.topological_order(),
        [
            id(Source, "a_src"),
            id(Source, "b_src"),
            id(Transform, "z_first"),
            id(Transform, "x_right"),
            id(Transform, "y_left"),
            id(Transform, "w_join"),
            id(Sink, "all"),
            id(Sink, "out"),
        ]
    );
    assert_eq!(graph.len(), 8);
    assert_eq!(graph.topological_order()[0].to_string(), "sources.a_src");
}

#[test]
fn outputs_and_inputs_are_both_ways_of_each_edge() {
    let graph = load(DIAMOND).unwrap().graph;
    assert_eq!(graph.outputs_of("a_src"), ["out", "z_first"]);
    assert_eq!(graph.outputs_of("z_first"), ["all", "x_right", "y_left"]);
    assert_eq!(graph.outputs_of("w_join"), ["out"]);
    assert!(graph.outputs_of("out").is_empty());
    assert_eq!(graph.inputs_of("w_join"), ["y_left", "x_right"]);
    assert_eq!(graph.inputs_of("out"), ["w_join", "a_src"]);
    assert!(graph.inputs_of("a_src").is_empty());
    assert!(graph.inputs_of("nonexistent").is_empty());
    assert_eq!(graph.kind_of("x_right"), Some(ComponentKind::Transform));
    assert_eq!(graph.kind_of("nope"), None);
}

#[test]
fn unread_sources_and_transforms_are_warned_about() {
    let text = format!(
        "{MINIMAL}[sources.lonely]\ntype = \"stdin\"\n[transforms.dead_end]\ntype = \"json\"\ninputs = [\"app\"]\n"
    );
    let loaded = load(&text).unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "test.toml:6:10: source `lonely` is not read by any sink (directly or through transforms); its lines go nowhere",
            "test.toml:8:13: transform `dead_end` is not read by any sink (directly or through transforms); its lines go nowhere",
        ]
    );
}

#[test]
fn id_like_label_fields_are_warned_about() {
    let text = "[sources.app]\ntype = \"stdin\"\n\
                [transforms.t]\ntype = \"json\"\ninputs = [\"app\"]\n\
                labels = { service = \"service\", trace = \"trace_id\", user = \"userId\" }\n\
                structured_metadata = { trace_id = \"trace_id\" }\n\
                [sinks.out]\ntype = \"console\"\ninputs = [\"t\"]\n";
    let warnings = load(text).unwrap().warnings;
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("test.toml:6:33: label `trace` takes the field `trace_id`"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("use structured_metadata"));
    assert!(
        warnings[1].starts_with("test.toml:6:53: label `user` takes the field `userId`"),
        "{warnings:?}"
    );
}

#[test]
fn docker_container_id_label_is_warned_about() {
    let text = "[sources.d]\ntype = \"docker\"\nlabels = { cid = \"container_id\" }\n\
                [sinks.out]\ntype = \"console\"\ninputs = [\"d\"]\n";
    let warnings = load(text).unwrap().warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("test.toml:3:12: label `cid`"),
        "{warnings:?}"
    );
}

#[test]
fn insecure_tls_is_warned_about() {
    let text = format!(
        "{MINIMAL}[sinks.loki]\ntype = \"loki\"\ninputs = [\"app\"]\nendpoint = \"https://x\"\ntls = {{ insecure_skip_verify = true }}\n"
    );
    let warnings = load(&text).unwrap().warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("verification is disabled"));
}
