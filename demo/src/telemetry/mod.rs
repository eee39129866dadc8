//! Logs and traces for both services: JSON lines on stdout that carry the OpenTelemetry
//! `trace_id` and `span_id`, and spans exported over OTLP/HTTP.
//!
//! [`init`] must run before the Tokio runtime starts (see [`otel::build_provider`]), and
//! [`Telemetry::shutdown`] after it stops, so the last spans are flushed.

pub mod json_log;
pub mod otel;
pub mod propagation;
pub mod resource;

use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Dispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;

use crate::env;

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OpenTelemetry settings or exporter.
    #[error(transparent)]
    Otel(#[from] otel::OtelError),
    /// `RUST_LOG` does not parse.
    #[error("RUST_LOG is invalid: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// The running telemetry: keep it alive for the life of the process.
pub struct Telemetry {
    provider: SdkTracerProvider,
    service_name: String,
}

impl Telemetry {
    /// The resolved `service.name`, equal to every log line's `service`.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// Flushes and stops the span exporter. Blocks: call it outside the Tokio runtime.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("{}: flushing spans failed: {e}", self.service_name);
        }
    }
}

/// Installs the global subscriber: `RUST_LOG` filter (default `info`), business fields of
/// spans, OpenTelemetry, and the JSON line format on stdout.
pub fn init(default_service: &str) -> Result<Telemetry, TelemetryError> {
    let service_name = resource::resolve_service_name(
        env::var("OTEL_SERVICE_NAME").as_deref(),
        env::var("OTEL_RESOURCE_ATTRIBUTES").as_deref(),
        default_service,
    );
    let settings = otel::TraceSettings::from_lookup(env::var)?;
    let provider = otel::build_provider(&settings, &service_name)?;
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    opentelemetry::global::set_tracer_provider(provider.clone());

    let filter = match env::var("RUST_LOG") {
        Some(spec) => EnvFilter::try_new(spec)?,
        None => EnvFilter::try_new("info")?,
    };
    let slot: json_log::DispatchSlot = Arc::new(OnceLock::new());
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service_name.clone()))
        .with_threads(false)
        .with_target(false);
    let fmt_layer = tracing_subscriber::fmt::layer()
        .event_format(json_log::JsonLogFormat::new(
            service_name.clone(),
            slot.clone(),
        ))
        .with_writer(std::io::stdout);
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(json_log::SpanFieldsLayer)
        .with(otel_layer)
        .with(fmt_layer);
    let dispatch = Dispatch::new(subscriber);
    let _ = slot.set(dispatch.downgrade());
    tracing::dispatcher::set_global_default(dispatch)
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry {
        provider,
        service_name,
    })
}
