//! The transform shared by `json`, `logfmt` and `regex`: find fields, then map them to labels,
//! structured metadata and the timestamp, or drop the line.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use logship_config::schema::ExtractTransformConfig;
use logship_parsers::timestamp_format::{TimestampFormatError, TimestampParser};
use prometheus::IntCounter;
use tokio::sync::mpsc;

use super::fields::{FieldExtractor, FieldValue};
use super::label_cache::LabelCache;
use crate::context::ComponentContext;
use crate::pipeline::Fanout;
use crate::pipeline::{Chunk, Event, MetadataName};
use crate::telemetry::ComponentMetrics;

/// A transform could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum TransformBuildError {
    /// The `pattern` of a regex transform does not compile or has no named captures.
    #[error("invalid pattern: {0}")]
    Pattern(String),
    /// `timestamp_format` or `timezone` cannot be used.
    #[error(transparent)]
    Timestamp(#[from] TimestampFormatError),
}

/// Extracts fields with a [`FieldExtractor`] and applies the config's mapping to each event.
pub struct ExtractTransform {
    extractor: Box<dyn FieldExtractor>,
    labels: LabelCache,
    label_fields: Vec<usize>,
    metadata: Vec<(MetadataName, usize)>,
    timestamp: Option<usize>,
    timestamp_parser: TimestampParser,
    drop: Vec<(usize, Vec<String>)>,
    drop_case_insensitive: bool,
    slots: Vec<Option<FieldValue>>,
    metrics: ComponentMetrics,
    parse_errors: IntCounter,
    timestamp_errors: TimestampErrors,
    filtered: IntCounter,
}

/// Counts present but unparsable timestamps, and warns about the first of a component, so a
/// wrong `timestamp_format` is seen at once.
struct TimestampErrors {
    count: IntCounter,
    warned: bool,
    component: Arc<str>,
}

impl TimestampErrors {
    /// The line keeps its read time; this only records it.
    #[cold]
    fn record(&mut self, text: &[u8]) {
        self.count.inc();
        if !self.warned {
            self.warned = true;
            let shown = String::from_utf8_lossy(&text[..text.len().min(64)]);
            tracing::warn!(
                component = %self.component,
                value = %shown,
                "a timestamp does not parse (check `timestamp_format` and `timezone`); such lines keep the time they were read, counted in logship_transform_timestamp_errors_total"
            );
        }
    }
}

/// Field names in a fixed order; every mapping refers to a field by index.
#[derive(Default)]
struct FieldNames(Vec<String>);

impl FieldNames {
    fn index(&mut self, name: &str) -> usize {
        match self.0.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.0.push(name.to_owned());
                self.0.len() - 1
            }
        }
    }
}

impl ExtractTransform {
    /// Builds the transform; `make_extractor` receives the distinct field names it must find.
    pub fn new(
        config: &ExtractTransformConfig,
        ctx: &ComponentContext,
        make_extractor: impl FnOnce(&[String]) -> Result<Box<dyn FieldExtractor>, TransformBuildError>,
    ) -> Result<Self, TransformBuildError> {
        let mut names = FieldNames::default();
        let (label_names, label_fields): (Vec<Arc<str>>, Vec<usize>) = config
            .labels
            .iter()
            .map(|(label, field)| (Arc::from(label.as_str()), names.index(field)))
            .unzip();
        let metadata = config
            .structured_metadata
            .iter()
            .map(|(name, field)| (MetadataName::interned(name), names.index(field)))
            .collect();
        let timestamp = config.timestamp.as_deref().map(|f| names.index(f));
        let drop = drop_rules(&config.drop, &mut names);
        let timestamp_parser = TimestampParser::new(
            config.timestamp_format.as_deref(),
            config.timezone.as_deref(),
        )?;
        let extractor = make_extractor(&names.0)?;
        let id = &*ctx.id;
        Ok(Self {
            extractor,
            labels: LabelCache::new(label_names),
            label_fields,
            metadata,
            timestamp,
            timestamp_parser,
            drop,
            drop_case_insensitive: config.drop_case_insensitive,
            slots: vec![None; names.0.len()],
            metrics: ctx.metrics.component(id),
            parse_errors: ctx.metrics.parse_errors.with_label_values(&[id]),
            timestamp_errors: TimestampErrors {
                count: ctx.metrics.timestamp_errors.with_label_values(&[id]),
                warned: false,
                component: ctx.id.clone(),
            },
            filtered: ctx
                .metrics
                .discarded_events
                .with_label_values(&[id, "filtered"]),
        })
    }

    /// Applies the transform to every event of `chunk`, removing dropped ones.
    pub fn apply(&mut self, chunk: &mut Chunk) {
        let received = chunk.events.len();
        self.metrics.received_events.inc_by(received as u64);
        self.metrics
            .received_bytes
            .inc_by(chunk.line_bytes() as u64);
        chunk.events.retain_mut(|event| self.apply_one(event));
        let dropped = received - chunk.events.len();
        if dropped > 0 {
            self.filtered.inc_by(dropped as u64);
        }
        self.metrics.sent_events.inc_by(chunk.events.len() as u64);
        self.metrics.sent_bytes.inc_by(chunk.line_bytes() as u64);
    }

    /// Returns false when the event is to be dropped.
    fn apply_one(&mut self, event: &mut Event) -> bool {
        for slot in &mut self.slots {
            *slot = None;
        }
        if !self.extractor.extract(&event.line, &mut self.slots) {
            self.parse_errors.inc();
            return true;
        }
        let line: &[u8] = &event.line;
        for (field, values) in &self.drop {
            if let Some(v) = &self.slots[*field] {
                let value = v.bytes(line);
                let matches = |d: &String| {
                    if self.drop_case_insensitive {
                        d.as_bytes().eq_ignore_ascii_case(value)
                    } else {
                        d.as_bytes() == value
                    }
                };
                if values.iter().any(matches) {
                    return false;
                }
            }
        }
        if !self.label_fields.is_empty() {
            let mut values: smallvec::SmallVec<[Option<&[u8]>; 4]> = smallvec::SmallVec::new();
            for &f in &self.label_fields {
                values.push(self.slots[f].as_ref().map(|v| v.bytes(line)));
            }
            event.labels = self.labels.get(&event.labels, &values);
        }
        for (name, field) in &self.metadata {
            let value = match &self.slots[*field] {
                Some(FieldValue::Slice(r)) => event.line.slice(r.clone()),
                Some(FieldValue::Owned(s)) => Bytes::from(s.clone()),
                None => continue,
            };
            if !value.is_empty() {
                event.metadata.push((name.clone(), value));
            }
        }
        if let Some(text) = self
            .timestamp
            .and_then(|f| self.slots[f].as_ref())
            .map(|v| v.bytes(line))
        {
            match self.timestamp_parser.parse(text, event.timestamp_ns) {
                Some(ts) => event.timestamp_ns = ts,
                None => self.timestamp_errors.record(text),
            }
        }
        true
    }

    /// Runs the transform until its input closes.
    pub async fn run(mut self, mut input: mpsc::Receiver<Chunk>, mut out: Fanout) {
        while let Some(mut chunk) = input.recv().await {
            self.apply(&mut chunk);
            if out.send(chunk).await.is_err() {
                break;
            }
        }
    }
}

fn drop_rules(
    drop: &BTreeMap<String, Vec<String>>,
    names: &mut FieldNames,
) -> Vec<(usize, Vec<String>)> {
    drop.iter()
        .map(|(field, values)| (names.index(field), values.clone()))
        .collect()
}
