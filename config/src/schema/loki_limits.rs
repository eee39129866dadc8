//! `[sinks.<id>.limits]`: what the Loki behind a sink refuses, so the sink can repair entries
//! before sending them instead of losing them to a 400.
//!
//! Names and defaults are Loki's own `limits_config` (Loki 3.x), values written as Loki writes
//! them (`"168h"`, `"256KB"`), so a user whose Loki differs copies its settings here. Each
//! `repair_*` switch can be turned off by a user who prefers Loki's refusal (the entries are
//! then sent as they are and counted as discarded when refused).

use std::time::Duration;

use serde::Deserialize;

use crate::units::{ByteSize, LokiDuration};

/// `[sinks.<id>.limits]`. See the module docs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LokiLimitsConfig {
    /// Whether Loki refuses entries older than `reject_old_samples_max_age` (true).
    #[serde(default = "yes")]
    pub reject_old_samples: bool,
    /// Oldest accepted entry, before now (`168h`).
    #[serde(default = "default_max_age")]
    pub reject_old_samples_max_age: LokiDuration,
    /// Newest accepted entry, after now (`10m`).
    #[serde(default = "default_grace")]
    pub creation_grace_period: LokiDuration,
    /// Loki refuses an entry more than half of this behind the newest entry of its stream
    /// ("entry too far behind"; `2h`, so one hour).
    #[serde(default = "default_max_chunk_age")]
    pub max_chunk_age: LokiDuration,
    /// Longest line (`256KB`); 0 = no limit.
    #[serde(default = "default_max_line_size")]
    pub max_line_size: ByteSize,
    /// Most labels per stream, counting the `service_name` Loki adds when it is missing (15).
    #[serde(default = "default_max_label_names")]
    pub max_label_names_per_series: usize,
    /// Longest label name (1024).
    #[serde(default = "default_max_label_name_length")]
    pub max_label_name_length: usize,
    /// Longest label value (2048).
    #[serde(default = "default_max_label_value_length")]
    pub max_label_value_length: usize,
    /// Most structured metadata bytes per entry, names and values (`64KB`); 0 = no limit.
    #[serde(default = "default_max_metadata_size")]
    pub max_structured_metadata_size: ByteSize,
    /// Most structured metadata pairs per entry (128); 0 = no limit.
    #[serde(default = "default_max_metadata_entries")]
    pub max_structured_metadata_entries_count: usize,
    /// Send entries outside the accepted time window with the time they were read, their
    /// own in `original_timestamp` metadata (true).
    #[serde(default = "yes")]
    pub repair_timestamps: bool,
    /// Cut or drop the largest metadata values of an entry over the metadata limits (true).
    #[serde(default = "yes")]
    pub repair_structured_metadata: bool,
    /// Cut lines longer than `max_line_size` (true).
    #[serde(default = "yes")]
    pub repair_lines: bool,
    /// Make label names valid, cut long names and values, and move labels beyond
    /// `max_label_names_per_series` to structured metadata (true).
    #[serde(default = "yes")]
    pub repair_labels: bool,
}

impl Default for LokiLimitsConfig {
    fn default() -> Self {
        Self {
            reject_old_samples: true,
            reject_old_samples_max_age: default_max_age(),
            creation_grace_period: default_grace(),
            max_chunk_age: default_max_chunk_age(),
            max_line_size: default_max_line_size(),
            max_label_names_per_series: default_max_label_names(),
            max_label_name_length: default_max_label_name_length(),
            max_label_value_length: default_max_label_value_length(),
            max_structured_metadata_size: default_max_metadata_size(),
            max_structured_metadata_entries_count: default_max_metadata_entries(),
            repair_timestamps: true,
            repair_structured_metadata: true,
            repair_lines: true,
            repair_labels: true,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_max_age() -> LokiDuration {
    LokiDuration(Duration::from_secs(168 * 3600))
}

fn default_grace() -> LokiDuration {
    LokiDuration(Duration::from_secs(600))
}

fn default_max_chunk_age() -> LokiDuration {
    LokiDuration(Duration::from_secs(2 * 3600))
}

fn default_max_line_size() -> ByteSize {
    ByteSize(256 * 1024)
}

fn default_max_label_names() -> usize {
    15
}

fn default_max_label_name_length() -> usize {
    1024
}

fn default_max_label_value_length() -> usize {
    2048
}

fn default_max_metadata_size() -> ByteSize {
    ByteSize(64 * 1024)
}

fn default_max_metadata_entries() -> usize {
    128
}
