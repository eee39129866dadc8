//! Integration tests of `logship_config`: loading, defaults, diagnostics, graph, examples.

mod common;
mod defaults;
mod diagnostics;
mod errors;
mod examples;
mod graph;
mod robustness;
