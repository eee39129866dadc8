//! The config schema: plain serde structs, one per component type.
//!
//! Every struct denies unknown keys, so a typo is an error that names its line and column
//! instead of a silently ignored option. Defaults live in `default_*` functions next to the
//! field they serve, so the reference in the README can be checked against one place.
//!
//! The `type`-tagged enums ([`SourceConfig`], [`TransformConfig`], [`SinkConfig`]) derive
//! `Deserialize` and work with plain `toml::from_str`, but serde's internal tagging loses
//! positions inside the table. [`crate::load_file`] and [`crate::load_str`] therefore decode
//! each component by its `type` directly into the variant's struct, so an unknown key is
//! reported at its own line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

mod loki_limits;

pub use loki_limits::LokiLimitsConfig;

/// A whole pipeline file: where state lives, the agent's own telemetry, and the component graph.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for checkpoints. Created if missing.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The agent's own `/metrics`, `/health` and `/ready` endpoint, and its log output.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Components that read log lines, by id.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Components that extract labels and metadata or drop lines, by id.
    #[serde(default)]
    pub transforms: BTreeMap<String, TransformConfig>,
    /// Components that deliver lines, by id.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkConfig>,
    /// `[[tests]]`: unit tests of the transforms, run by `logship test` and ignored by
    /// `logship run`.
    #[serde(default)]
    pub tests: Vec<ConfigTest>,
}

/// One `[[tests]]` block: lines given to transforms, and what must come out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigTest {
    /// Printed with the result.
    pub name: String,
    /// The lines to give, each to one transform.
    pub inputs: Vec<TestInput>,
    /// What given transforms must emit.
    #[serde(default)]
    pub outputs: Vec<TestOutput>,
    /// Transforms that must emit nothing (they dropped every line).
    #[serde(default)]
    pub no_outputs_from: Vec<String>,
}

/// `[[tests.inputs]]`: one line and the transform that receives it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestInput {
    /// The id of the transform that receives the line.
    pub insert_at: String,
    /// The line, as a source would read it.
    pub value: String,
    /// Labels the line arrives with, as a source's would be.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `[[tests.outputs]]`: conditions on every line a transform emits (it must emit one).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestOutput {
    /// The id of the transform whose output is checked.
    pub extract_from: String,
    /// Labels that must be present with these values (others may be present too).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Structured metadata that must be present with these values.
    #[serde(default)]
    pub structured_metadata: BTreeMap<String, String>,
    /// The line's time, RFC 3339 (`2026-11-30T10:00:00Z`).
    #[serde(default)]
    pub timestamp: Option<String>,
    /// The line itself.
    #[serde(default)]
    pub line: Option<String>,
}

/// What an empty file decodes to.
impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            telemetry: TelemetryConfig::default(),
            sources: BTreeMap::new(),
            transforms: BTreeMap::new(),
            sinks: BTreeMap::new(),
            tests: Vec::new(),
        }
    }
}

impl Config {
    /// Whether `other` runs the same pipeline: equal apart from `[[tests]]`.
    pub fn same_pipeline(&self, other: &Config) -> bool {
        self.data_dir == other.data_dir
            && self.telemetry == other.telemetry
            && self.sources == other.sources
            && self.transforms == other.transforms
            && self.sinks == other.sinks
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/logship")
}

/// `[telemetry]`: where the agent serves its own metrics and health.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Listen address for `/metrics`, `/health` and `/ready`. Loopback by default.
    #[serde(default = "default_telemetry_address")]
    pub address: SocketAddr,
    /// Set to false to serve nothing (for example in a sidecar that has no port to spare).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            address: default_telemetry_address(),
            enabled: true,
        }
    }
}

fn default_telemetry_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9598))
}

fn default_true() -> bool {
    true
}

// ---------------------------------------------------------------------------------------------
// Sources

/// One `[sources.<id>]` table, chosen by its `type` key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// Tail files matched by globs.
    File(FileSourceConfig),
    /// Read lines from standard input (sidecars that pipe).
    Stdin(StdinSourceConfig),
    /// Follow container output through the Docker API.
    Docker(DockerSourceConfig),
    /// Tail every pod's logs under `/var/log/pods` on a Kubernetes node, with pod metadata.
    KubernetesLogs(KubernetesLogsSourceConfig),
}

/// Where to start in a file first seen at start-up, when there is no checkpoint for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// From the first byte.
    #[default]
    Beginning,
    /// From the current end: only lines written from now on. Files that appear later are
    /// always read from the beginning, so nothing written after start-up is missed.
    End,
}

/// How the raw lines of a file are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileDecoder {
    /// Each line is a log line.
    #[default]
    None,
    /// Docker's json-file driver: `{"log":"...","stream":"stdout","time":"..."}`; 16 KiB
    /// partial lines are merged.
    Docker,
    /// CRI (`/var/log/pods`): `<time> <stream> <P|F> <line>`; namespace, pod and container
    /// come from the path.
    Cri,
}

/// `[sources.<id>.multiline]`: join continuation lines (stack traces) onto the line that
/// starts a record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A regex that matches the first line of a record; lines that do not match are appended
    /// to the record before them.
    pub start_pattern: String,
    /// Flush a record that has seen no new line for this long.
    #[serde(default = "default_multiline_timeout_ms")]
    pub timeout_ms: u64,
    /// Flush a record once it holds this many lines.
    #[serde(default = "default_multiline_max_lines")]
    pub max_lines: usize,
}

fn default_multiline_timeout_ms() -> u64 {
    1000
}

fn default_multiline_max_lines() -> usize {
    500
}

/// `type = "file"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Globs of files to tail. Rotated names may match too; they are recognised, not re-read.
    pub include: Vec<String>,
    /// Globs of files never to tail, applied after `include`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in files that exist at start-up and have no checkpoint.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Lines longer than this are truncated to it (and counted); the file keeps being tailed.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Optional multiline joining.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
    /// How lines are framed on disk.
    #[serde(default)]
    pub decoder: FileDecoder,
    /// Name of the label that carries the file's path; `""` for none.
    #[serde(default = "default_filename_label")]
    pub filename_label: String,
    /// Static labels added to every line of this source.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How often the globs are walked again as a safety net. Changes are noticed at once by
    /// inotify; the walk finds what inotify cannot report (network file systems) or lost.
    #[serde(default = "default_glob_interval_ms")]
    pub glob_interval_ms: u64,
    /// Most files open at once. Beyond it the quietest files that are read to their end are
    /// closed, and reopened from their checkpoint when they change.
    #[serde(default = "default_open_files_limit")]
    pub open_files_limit: usize,
    /// Files not written for longer than this, when first found, are read only from their
    /// end: their old lines are skipped, new ones are read. Unset: every file is read whole.
    #[serde(default)]
    pub ignore_older_secs: Option<u64>,
}

/// Loki's default `max_line_size` is 256 KB; a longer line would be rejected there anyway.
fn default_max_line_bytes() -> usize {
    256 * 1024
}

fn default_filename_label() -> String {
    "filename".to_owned()
}

fn default_glob_interval_ms() -> u64 {
    30_000
}

fn default_open_files_limit() -> usize {
    1024
}

/// `type = "stdin"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceConfig {
    /// Lines longer than this are truncated to it (and counted).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Optional multiline joining.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
    /// Static labels added to every line of this source.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `type = "docker"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSourceConfig {
    /// `unix:///var/run/docker.sock` by default; `DOCKER_HOST` is honoured when unset.
    #[serde(default)]
    pub docker_host: Option<String>,
    /// Container name prefixes to follow; empty follows all.
    #[serde(default)]
    pub include_containers: Vec<String>,
    /// Container name prefixes never to follow; wins over `include_containers`.
    #[serde(default)]
    pub exclude_containers: Vec<String>,
    /// Container label filters: `key` (present) or `key=value`. All must match.
    #[serde(default)]
    pub include_labels: Vec<String>,
    /// Image name prefixes to follow; empty follows all.
    #[serde(default)]
    pub include_images: Vec<String>,
    /// Loki label name → container attribute. Attributes: `container`, `container_id`,
    /// `image`, `stream`, `compose_service`, `compose_project`, `label.<key>`.
    #[serde(default = "default_docker_labels")]
    pub labels: BTreeMap<String, String>,
    /// Structured-metadata name → container attribute (same attributes as `labels`).
    #[serde(default)]
    pub structured_metadata: BTreeMap<String, String>,
    /// Static labels added to every line of this source.
    #[serde(default)]
    pub static_labels: BTreeMap<String, String>,
    /// Optional multiline joining (per container and stream).
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
    /// Lines longer than this are truncated to it (and counted).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
}

/// `type = "kubernetes_logs"`: the file source over the kubelet's `/var/log/pods` tree, with
/// each pod's labels and annotations from the Kubernetes API. The API enriches; it never gates:
/// without it every line still ships with `namespace`, `pod`, `container` and `stream`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesLogsSourceConfig {
    /// This node's name: only its pods are watched (`fieldSelector=spec.nodeName=...`). In a
    /// DaemonSet, `"${NODE_NAME}"` with `NODE_NAME` set from `spec.nodeName`. Required when
    /// `metadata` is on.
    #[serde(default)]
    pub node_name: Option<String>,
    /// The kubelet's pod log directory: `<namespace>_<pod>_<uid>/<container>/<restart>.log`.
    #[serde(default = "default_pods_dir")]
    pub pods_dir: String,
    /// Watch the API for pod labels and annotations. `false`: path labels only, no API calls.
    #[serde(default = "default_true")]
    pub metadata: bool,
    /// A kubeconfig file to reach the API with (outside a cluster). Unset: the in-cluster
    /// service account (`KUBERNETES_SERVICE_HOST`, the mounted token and CA).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Loki label name → pod label key, e.g. `{ app = "app.kubernetes.io/name" }`.
    #[serde(default)]
    pub pod_labels: BTreeMap<String, String>,
    /// Loki label name → pod annotation key.
    #[serde(default)]
    pub pod_annotations: BTreeMap<String, String>,
    /// Structured-metadata name → pod label key.
    #[serde(default)]
    pub pod_labels_as_metadata: BTreeMap<String, String>,
    /// Structured-metadata name → pod annotation key.
    #[serde(default)]
    pub pod_annotations_as_metadata: BTreeMap<String, String>,
    /// Namespaces to read; empty reads all. Decided from the path, API or not.
    #[serde(default)]
    pub include_namespaces: Vec<String>,
    /// Namespaces never to read; wins over `include_namespaces`.
    #[serde(default)]
    pub exclude_namespaces: Vec<String>,
    /// A pod with this annotation set to `"true"` is not read.
    #[serde(default = "default_exclude_annotation")]
    pub exclude_annotation: String,
    /// How long a new pod's files wait for the pod to appear in the watch before they are read
    /// with path labels only (they get the pod's labels once it appears).
    #[serde(default = "default_metadata_wait_secs")]
    pub metadata_wait_secs: u64,
    /// Where to start in files that exist at start-up and have no checkpoint. The default
    /// reads everything already on the node.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Files not written for longer than this, when first found, are read only from their end.
    #[serde(default)]
    pub ignore_older_secs: Option<u64>,
    /// Lines longer than this are truncated to it (and counted).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Optional multiline joining (after CRI partial lines are joined).
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
    /// Static labels added to every line of this source.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How often the pod directory is walked again as a safety net.
    #[serde(default = "default_glob_interval_ms")]
    pub glob_interval_ms: u64,
    /// Most files open at once (see the file source).
    #[serde(default = "default_open_files_limit")]
    pub open_files_limit: usize,
}

fn default_pods_dir() -> String {
    "/var/log/pods".to_owned()
}

fn default_exclude_annotation() -> String {
    "logship.io/exclude".to_owned()
}

fn default_metadata_wait_secs() -> u64 {
    5
}

impl KubernetesLogsSourceConfig {
    /// The file-source settings this source runs with: every container log under `pods_dir`
    /// (rotated ones too), never the kubelet's compressed (`.gz`) or in-progress (`.tmp`)
    /// rotations; CRI framing; no `filename` label (namespace, pod and container name it).
    pub fn file_config(&self) -> FileSourceConfig {
        let dir = self.pods_dir.trim_end_matches('/');
        FileSourceConfig {
            include: vec![format!("{dir}/*/*/*.log*")],
            exclude: vec![format!("{dir}/*/*/*.gz"), format!("{dir}/*/*/*.tmp")],
            read_from: self.read_from,
            max_line_bytes: self.max_line_bytes,
            multiline: self.multiline.clone(),
            decoder: FileDecoder::Cri,
            filename_label: String::new(),
            labels: self.labels.clone(),
            glob_interval_ms: self.glob_interval_ms,
            open_files_limit: self.open_files_limit,
            ignore_older_secs: self.ignore_older_secs,
        }
    }
}

fn default_docker_labels() -> BTreeMap<String, String> {
    ["container", "stream", "compose_service", "compose_project"]
        .into_iter()
        .map(|k| (k.to_owned(), k.to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Transforms

/// One `[transforms.<id>]` table, chosen by its `type` key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransformConfig {
    /// Extract named fields from JSON lines.
    Json(ExtractTransformConfig),
    /// Extract `key=value` fields from logfmt lines.
    Logfmt(ExtractTransformConfig),
    /// Extract named captures of a regex (`pattern`).
    Regex(ExtractTransformConfig),
}

impl TransformConfig {
    /// The ids this transform reads from.
    pub fn inputs(&self) -> &[String] {
        match self {
            TransformConfig::Json(c) | TransformConfig::Logfmt(c) | TransformConfig::Regex(c) => {
                &c.inputs
            }
        }
    }

    fn inputs_mut(&mut self) -> &mut Vec<String> {
        match self {
            TransformConfig::Json(c) | TransformConfig::Logfmt(c) | TransformConfig::Regex(c) => {
                &mut c.inputs
            }
        }
    }

    /// Whether `other` is the same transform, whatever each reads from. (A reload keeps such
    /// a transform running and only rewires its input.)
    pub fn same_settings(&self, other: &Self) -> bool {
        same_apart_from_inputs(self, other, Self::inputs_mut)
    }
}

/// Whether `a` and `b` are equal once their `inputs` are ignored.
fn same_apart_from_inputs<T: Clone + PartialEq>(
    a: &T,
    b: &T,
    inputs: fn(&mut T) -> &mut Vec<String>,
) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    inputs(&mut a).clear();
    inputs(&mut b).clear();
    a == b
}

/// What a field-extracting transform does with the fields it finds. Shared by `json`,
/// `logfmt` and `regex`. The line itself is never changed.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractTransformConfig {
    /// Component ids whose lines this transform reads.
    pub inputs: Vec<String>,
    /// `regex` only (required there, an error elsewhere): a regex whose named captures,
    /// `(?P<level>\w+)`, are the fields.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Loki label name → field name. A missing field adds no label.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Structured-metadata name → field name.
    #[serde(default)]
    pub structured_metadata: BTreeMap<String, String>,
    /// Field that holds the line's time (RFC3339, RFC3339Nano, epoch s/ms/us/ns, or
    /// `timestamp_format`). When missing or unparsable the time the line was read is kept; an
    /// unparsable one is counted in `logship_transform_timestamp_errors_total`.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// strftime-style format of the `timestamp` field, for times that are not RFC 3339 or an
    /// epoch number: `%Y-%m-%d %H:%M:%S,%f` (log4j), `%d/%b/%Y:%H:%M:%S %z` (common log
    /// format), `%b %d %H:%M:%S` (syslog; the year is the read time's).
    #[serde(default)]
    pub timestamp_format: Option<String>,
    /// Zone of timestamps written without an offset: an IANA name (`Europe/Berlin`), `UTC`
    /// (the default), `local`, or a fixed offset (`+02:00`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Field name → values: a line whose field has one of these values is dropped (and
    /// counted), for example `drop = { level = ["debug", "trace"] }`.
    #[serde(default)]
    pub drop: BTreeMap<String, Vec<String>>,
    /// Whether `drop` values match whatever their case (`DEBUG` and `Debug` match `debug`).
    /// Off by default: values match exactly.
    #[serde(default)]
    pub drop_case_insensitive: bool,
}

// ---------------------------------------------------------------------------------------------
// Sinks

/// One `[sinks.<id>]` table, chosen by its `type` key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// Push to Grafana Loki.
    Loki(Box<LokiSinkConfig>),
    /// Print lines to standard output, for trying things out.
    Console(ConsoleSinkConfig),
    /// Acknowledge and discard, for benchmarks.
    Blackhole(BlackholeSinkConfig),
}

impl SinkConfig {
    /// The ids this sink reads from.
    pub fn inputs(&self) -> &[String] {
        match self {
            SinkConfig::Loki(c) => &c.inputs,
            SinkConfig::Console(c) => &c.inputs,
            SinkConfig::Blackhole(c) => &c.inputs,
        }
    }

    fn inputs_mut(&mut self) -> &mut Vec<String> {
        match self {
            SinkConfig::Loki(c) => &mut c.inputs,
            SinkConfig::Console(c) => &mut c.inputs,
            SinkConfig::Blackhole(c) => &mut c.inputs,
        }
    }

    /// Whether `other` is the same sink, whatever each reads from. (A reload keeps such a sink
    /// running, with its batches and connections, and only rewires its input.)
    pub fn same_settings(&self, other: &Self) -> bool {
        same_apart_from_inputs(self, other, Self::inputs_mut)
    }
}

/// Body encoding of a Loki push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LokiEncoding {
    /// `application/x-protobuf`, raw (block) snappy: what Promtail sends and Loki prefers.
    #[default]
    Protobuf,
    /// `application/json`, optionally gzip-compressed.
    Json,
}

/// Compression of a JSON Loki push. Protobuf pushes are always raw snappy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LokiCompression {
    /// `Content-Encoding: gzip`.
    Gzip,
    /// No compression.
    None,
    /// Raw snappy; the only choice for protobuf, and its implied default.
    Snappy,
}

/// `type = "loki"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LokiSinkConfig {
    /// Component ids whose lines this sink delivers.
    pub inputs: Vec<String>,
    /// Base URL of Loki, e.g. `http://127.0.0.1:3100`.
    pub endpoint: String,
    /// Push path appended to `endpoint`.
    #[serde(default = "default_loki_path")]
    pub path: String,
    /// Static labels added to every stream.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Sent as `X-Scope-OrgID`.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Basic or bearer authentication.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// TLS settings for `https` endpoints.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Body encoding.
    #[serde(default)]
    pub encoding: LokiEncoding,
    /// Body compression; only `gzip` or `none` with `encoding = "json"` (default `gzip`).
    #[serde(default)]
    pub compression: Option<LokiCompression>,
    /// When a batch is sent.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Concurrency, timeouts and retries of push requests.
    #[serde(default)]
    pub request: RequestConfig,
    /// Most distinct values one label may take; past it the value becomes
    /// `cardinality_overflow_value` (counted and warned about).
    #[serde(default = "default_label_cardinality_limit")]
    pub label_cardinality_limit: usize,
    /// The value a label collapses to once it has too many distinct values.
    #[serde(default = "default_cardinality_overflow_value")]
    pub cardinality_overflow_value: String,
    /// `/ready` answers 503 naming this sink once it has been unable to deliver (connection
    /// refused, timeouts, 5xx, 429, auth) for longer than this; 200 again at the next success.
    #[serde(default = "default_not_ready_after_secs")]
    pub not_ready_after_secs: u64,
    /// What the Loki behind this sink refuses, and which repairs logship makes before sending.
    #[serde(default)]
    pub limits: LokiLimitsConfig,
}

fn default_not_ready_after_secs() -> u64 {
    30
}

fn default_loki_path() -> String {
    "/loki/api/v1/push".to_owned()
}

fn default_label_cardinality_limit() -> usize {
    500
}

fn default_cardinality_overflow_value() -> String {
    "__overflow__".to_owned()
}

/// `[sinks.<id>.batch]`: a batch is sent when any bound is reached.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Uncompressed line bytes in one push.
    #[serde(default = "default_batch_max_bytes")]
    pub max_bytes: usize,
    /// Lines in one push.
    #[serde(default = "default_batch_max_events")]
    pub max_events: usize,
    /// Oldest line waits at most this long.
    #[serde(default = "default_batch_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_bytes: default_batch_max_bytes(),
            max_events: default_batch_max_events(),
            timeout_ms: default_batch_timeout_ms(),
        }
    }
}

/// 512 KiB rather than Promtail's 1 MiB: a batch in flight when the agent is killed is stored
/// by Loki and read again after the restart, so the batch size is the bound on duplicates
/// after a crash (about 2,100 lines of 250 bytes, 0.7 % of the kill -9 tests' 300,000). On W1
/// it costs no measurable CPU and keeps 4 MiB less memory.
fn default_batch_max_bytes() -> usize {
    512 * 1024
}

fn default_batch_max_events() -> usize {
    100_000
}

fn default_batch_timeout_ms() -> u64 {
    1000
}

/// `[sinks.<id>.request]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestConfig {
    /// Push requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// One request's deadline.
    #[serde(default = "default_request_timeout_ms")]
    pub timeout_ms: u64,
    /// First retry delay bound; doubles per attempt (full jitter).
    #[serde(default = "default_retry_initial_backoff_ms")]
    pub retry_initial_backoff_ms: u64,
    /// Largest retry delay bound.
    #[serde(default = "default_retry_max_backoff_ms")]
    pub retry_max_backoff_ms: u64,
}

impl Default for RequestConfig {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            timeout_ms: default_request_timeout_ms(),
            retry_initial_backoff_ms: default_retry_initial_backoff_ms(),
            retry_max_backoff_ms: default_retry_max_backoff_ms(),
        }
    }
}

fn default_concurrency() -> usize {
    4
}

fn default_request_timeout_ms() -> u64 {
    10_000
}

fn default_retry_initial_backoff_ms() -> u64 {
    500
}

fn default_retry_max_backoff_ms() -> u64 {
    60_000
}

/// `auth = { user = "...", password = "..." }` or `auth = { token = "..." }`; every secret may
/// instead come from a file (`password_file`, `token_file`), and from the environment through
/// `${VAR}`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Basic-auth user name.
    #[serde(default)]
    pub user: Option<String>,
    /// Basic-auth password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File whose contents (trimmed) are the basic-auth password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Bearer token.
    #[serde(default)]
    pub token: Option<Secret>,
    /// File whose contents (trimmed) are the bearer token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("user", &self.user)
            .field("password", &self.password)
            .field("password_file", &self.password_file)
            .field("token", &self.token)
            .field("token_file", &self.token_file)
            .finish()
    }
}

/// A string that never shows itself in `Debug` or `Display`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: call only where it is put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `[sinks.<id>.tls]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of CA certificates to trust, in addition to the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (for mutual TLS).
    #[serde(default)]
    pub crt_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Skip server certificate verification. For tests only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// How the console sink prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleFormat {
    /// `{labels} line`, one line per event.
    #[default]
    Text,
    /// One JSON object per event: timestamp, labels, structured metadata, line.
    Json,
}

/// `type = "console"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSinkConfig {
    /// Component ids whose lines this sink prints.
    pub inputs: Vec<String>,
    /// Output format.
    #[serde(default)]
    pub format: ConsoleFormat,
}

/// `type = "blackhole"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackholeSinkConfig {
    /// Component ids whose lines this sink discards.
    pub inputs: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_serde_also_rejects_unknown_keys_inside_a_component() {
        let text = "[sources.app]\ntype = \"file\"\nincude = [\"/x\"]\n";
        let err = toml::from_str::<Config>(text).unwrap_err();
        assert!(err.message().contains("unknown field `incude`"), "{err}");

        let ok = "[sources.app]\ntype = \"file\"\ninclude = [\"/x\"]\n";
        let config = toml::from_str::<Config>(ok).unwrap();
        assert!(matches!(config.sources["app"], SourceConfig::File(_)));
    }
}
