//! The test pipeline config (file source → json transform → Loki sink) as a value, so each
//! test states only what it changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::harness::free_port;

/// A TOML string literal (basic string, escaped).
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `file` source `app` → `json` transform `parse` → `loki` sink `loki`.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// `data_dir`.
    pub data_dir: PathBuf,
    /// Telemetry port on 127.0.0.1.
    pub telemetry_port: u16,
    /// File source globs.
    pub include: Vec<String>,
    /// `read_from`.
    pub read_from: String,
    /// Extra `key = value` lines for `[sources.app]`.
    pub source_extra: Vec<String>,
    /// Put the json transform between source and sink (default true).
    pub transform: bool,
    /// The body of `[transforms.parse]` (after `inputs`) instead of the json default.
    pub transform_body: Option<String>,
    /// Loki base URL.
    pub endpoint: String,
    /// Body of the sink's inline `batch = { ... }` table.
    pub batch: String,
    /// Body of the sink's inline `request = { ... }` table.
    pub request: String,
    /// Extra `key = value` lines for `[sinks.loki]`.
    pub sink_extra: Vec<String>,
}

impl PipelineConfig {
    /// The typical test pipeline rooted at `dir`: data in `<dir>/data`, logs read from
    /// `<dir>/logs/*.log*` (the directory is created), from the beginning, batches of 200 ms,
    /// fast retries.
    pub fn new(dir: &Path, loki_url: &str) -> Self {
        let logs = logs_dir(dir);
        let _ = std::fs::create_dir_all(&logs);
        Self {
            data_dir: dir.join("data"),
            telemetry_port: free_port(),
            include: vec![logs.join("*.log*").to_string_lossy().into_owned()],
            read_from: "beginning".to_owned(),
            source_extra: Vec::new(),
            transform: true,
            transform_body: None,
            endpoint: loki_url.to_owned(),
            batch: "timeout_ms = 200".to_owned(),
            request: "retry_initial_backoff_ms = 50, retry_max_backoff_ms = 1000".to_owned(),
            sink_extra: Vec::new(),
        }
    }

    /// Adds a `key = value` line to `[sinks.loki]`.
    pub fn sink(mut self, line: &str) -> Self {
        self.sink_extra.push(line.to_owned());
        self
    }

    /// Replaces the body of `[transforms.parse]` (everything after `inputs = ["app"]`).
    pub fn transform(mut self, body: &str) -> Self {
        self.transform_body = Some(body.to_owned());
        self
    }

    /// Adds a `key = value` line to `[sources.app]`.
    pub fn source(mut self, line: &str) -> Self {
        self.source_extra.push(line.to_owned());
        self
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let include: Vec<String> = self.include.iter().map(|g| toml_str(g)).collect();
        let mut t = String::new();
        let _ = writeln!(
            t,
            "data_dir = {}",
            toml_str(&self.data_dir.to_string_lossy())
        );
        let _ = writeln!(
            t,
            "\n[telemetry]\naddress = \"127.0.0.1:{}\"",
            self.telemetry_port
        );
        let _ = writeln!(t, "\n[sources.app]\ntype = \"file\"");
        let _ = writeln!(t, "include = [{}]", include.join(", "));
        let _ = writeln!(t, "read_from = {}", toml_str(&self.read_from));
        for l in &self.source_extra {
            let _ = writeln!(t, "{l}");
        }
        let sink_input = if let Some(body) = &self.transform_body {
            let _ = writeln!(t, "\n[transforms.parse]\ninputs = [\"app\"]\n{body}");
            "parse"
        } else if self.transform {
            t.push_str(
                "\n[transforms.parse]\ntype = \"json\"\ninputs = [\"app\"]\n\
                 labels = { service = \"service\", level = \"level\" }\n\
                 structured_metadata = { trace_id = \"trace_id\", span_id = \"span_id\" }\n\
                 timestamp = \"time\"\n",
            );
            "parse"
        } else {
            "app"
        };
        let _ = writeln!(
            t,
            "\n[sinks.loki]\ntype = \"loki\"\ninputs = [\"{sink_input}\"]"
        );
        let _ = writeln!(t, "endpoint = {}", toml_str(&self.endpoint));
        let _ = writeln!(t, "labels = {{ job = \"app\" }}");
        let _ = writeln!(t, "batch = {{ {} }}", self.batch);
        let _ = writeln!(t, "request = {{ {} }}", self.request);
        for l in &self.sink_extra {
            let _ = writeln!(t, "{l}");
        }
        t
    }
}

/// `<dir>/logs`: where [`PipelineConfig`] reads from.
pub fn logs_dir(dir: &Path) -> PathBuf {
    dir.join("logs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_valid_toml_with_the_contracted_shape() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = PipelineConfig::new(dir.path(), "http://127.0.0.1:3100")
            .sink("encoding = \"json\"")
            .source("max_line_bytes = 1024");
        let text = cfg.to_toml();
        let v: toml::Table = text.parse().unwrap();
        assert_eq!(v["sources"]["app"]["type"].as_str(), Some("file"));
        assert_eq!(
            v["sources"]["app"]["max_line_bytes"].as_integer(),
            Some(1024)
        );
        assert_eq!(v["transforms"]["parse"]["timestamp"].as_str(), Some("time"));
        assert_eq!(v["sinks"]["loki"]["inputs"][0].as_str(), Some("parse"));
        assert_eq!(v["sinks"]["loki"]["encoding"].as_str(), Some("json"));
        assert_eq!(
            v["sinks"]["loki"]["batch"]["timeout_ms"].as_integer(),
            Some(200)
        );
        assert_eq!(
            crate::harness::telemetry_addr(&text).unwrap().port(),
            cfg.telemetry_port
        );
        assert!(logs_dir(dir.path()).is_dir());
        let mut raw = cfg.clone();
        raw.transform = false;
        let v: toml::Table = raw.to_toml().parse().unwrap();
        assert!(v.get("transforms").is_none());
        assert_eq!(v["sinks"]["loki"]["inputs"][0].as_str(), Some("app"));
        assert_eq!(toml_str("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
