//! JSON log lines with the OpenTelemetry ids at the top level.
//!
//! `tracing-subscriber`'s own JSON format cannot write OTel's `trace_id`, and nests span fields
//! under `"span"`. Loki, logship's `json` transform and Grafana's derived fields all want flat
//! lines, so this module writes them itself:
//!
//! ```json
//! {"time":"…","level":"info","service":"order-api","msg":"order accepted","order_id":"…","trace_id":"…","span_id":"…"}
//! ```
//!
//! Event fields come first, then the business fields of the enclosing spans (leaf first; only
//! names without a dot, so `order_id` is copied onto every line but OTel semantic attributes
//! such as `http.route` stay on the span), then the ids of the current span.

use std::fmt::{self, Write as _};
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// A field value kept as JSON would print it.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl Value {
    fn write(&self, out: &mut String) {
        match self {
            Value::Str(s) => write_json_str(out, s),
            Value::I64(v) => {
                let _ = write!(out, "{v}");
            }
            Value::U64(v) => {
                let _ = write!(out, "{v}");
            }
            Value::F64(v) if v.is_finite() => {
                let _ = write!(out, "{v}");
            }
            // JSON has no NaN or infinity.
            Value::F64(v) => write_json_str(out, &v.to_string()),
            Value::Bool(v) => out.push_str(if *v { "true" } else { "false" }),
        }
    }
}

/// Writes `s` as a JSON string literal.
pub fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Collects fields into `(name, value)` pairs; `message` becomes `msg`.
#[derive(Default)]
struct FieldCollector {
    fields: Vec<(&'static str, Value)>,
    keep_dotted: bool,
}

impl FieldCollector {
    fn put(&mut self, field: &Field, value: Value) {
        let name = match field.name() {
            "message" => "msg",
            n => n,
        };
        if !self.keep_dotted && name.contains('.') {
            return;
        }
        if let Some(slot) = self.fields.iter_mut().find(|(k, _)| *k == name) {
            slot.1 = value;
        } else {
            self.fields.push((name, value));
        }
    }
}

impl Visit for FieldCollector {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::U64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::Str(value.to_owned()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::Str(format!("{value:?}")));
    }
}

/// The business fields of one span, stored in its extensions by [`SpanFieldsLayer`].
struct SpanFields(Vec<(&'static str, Value)>);

/// Keeps each span's dot-free fields (`order_id`, `message_id`, `attempt`) so every line
/// written inside the span can repeat them, including fields recorded after creation.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpanFieldsLayer;

impl<S> Layer<S> for SpanFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut c = FieldCollector::default();
        attrs.record(&mut c);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(c.fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let Some(stored) = ext.get_mut::<SpanFields>() else {
            return;
        };
        let mut c = FieldCollector {
            fields: std::mem::take(&mut stored.0),
            keep_dotted: false,
        };
        values.record(&mut c);
        stored.0 = c.fields;
    }
}

/// A handle the formatter uses to reach the OpenTelemetry layer of its own subscriber; filled
/// in once the subscriber is built (the formatter is part of it, so it cannot be passed in).
pub type DispatchSlot = Arc<OnceLock<WeakDispatch>>;

/// The [`FormatEvent`] that writes one flat JSON object per line.
pub struct JsonLogFormat {
    service: String,
    dispatch: DispatchSlot,
}

impl JsonLogFormat {
    /// A formatter stamping `service` on every line.
    pub fn new(service: impl Into<String>, dispatch: DispatchSlot) -> Self {
        Self {
            service: service.into(),
            dispatch,
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut time = String::with_capacity(32);
        SystemTime.format_time(&mut Writer::new(&mut time))?;

        let mut event_fields = FieldCollector {
            keep_dotted: true,
            ..FieldCollector::default()
        };
        event.record(&mut event_fields);

        let mut out = String::with_capacity(256);
        out.push_str("{\"time\":");
        write_json_str(&mut out, &time);
        out.push_str(",\"level\":");
        write_json_str(
            &mut out,
            &event.metadata().level().as_str().to_ascii_lowercase(),
        );
        out.push_str(",\"service\":");
        write_json_str(&mut out, &self.service);
        let mut written: Vec<&str> = vec!["time", "level", "service", "trace_id", "span_id"];
        if let Some((_, msg)) = event_fields.fields.iter().find(|(k, _)| *k == "msg") {
            out.push_str(",\"msg\":");
            msg.write(&mut out);
        } else {
            out.push_str(",\"msg\":\"\"");
        }
        written.push("msg");
        for (k, v) in &event_fields.fields {
            if written.contains(k) {
                continue;
            }
            push_field(&mut out, k, v);
            written.push(k);
        }

        let mut leaf_id = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                if leaf_id.is_none() {
                    leaf_id = Some(span.id());
                }
                let ext = span.extensions();
                if let Some(SpanFields(fields)) = ext.get::<SpanFields>() {
                    for (k, v) in fields {
                        if !written.contains(k) {
                            push_field(&mut out, k, v);
                            written.push(k);
                        }
                    }
                }
            }
        }
        // The extension guards above are dropped: the OTel layer may need to lock the span's
        // extensions mutably to build its context.
        if let (Some(id), Some(dispatch)) =
            (leaf_id, self.dispatch.get().and_then(WeakDispatch::upgrade))
            && let Some(cx) = tracing_opentelemetry::get_otel_context(&id, &dispatch)
        {
            let span = cx.span();
            let sc = span.span_context();
            if sc.is_valid() {
                let _ = write!(
                    out,
                    ",\"trace_id\":\"{}\",\"span_id\":\"{}\"",
                    sc.trace_id(),
                    sc.span_id()
                );
            }
        }
        out.push_str("}\n");
        writer.write_str(&out)
    }
}

fn push_field(out: &mut String, key: &str, value: &Value) {
    out.push(',');
    write_json_str(out, key);
    out.push(':');
    value.write(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        write_json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&s).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn non_finite_floats_stay_valid_json() {
        let mut s = String::new();
        Value::F64(f64::NAN).write(&mut s);
        assert_eq!(s, "\"NaN\"");
    }
}
