//! The OpenTelemetry tracer provider, configured from the standard `OTEL_*` variables so the
//! same binary exports to Tempo, Jaeger or a collector without a code change.
//!
//! Read here: `OTEL_TRACES_EXPORTER` (`otlp`, the default, or `none`),
//! `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` (`http/protobuf`, the default, or `http/json`), and
//! `OTEL_TRACES_SAMPLER(_ARG)`. The exporter crate itself reads the endpoint, headers, timeout
//! and compression variables, and the SDK reads `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`
//! and the `OTEL_BSP_*` batch settings.

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// A variable names something this build does not support.
    #[error("{name}={value:?} is not supported here: {reason}")]
    Unsupported {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What would work instead.
        reason: &'static str,
    },
    /// `OTEL_TRACES_SAMPLER_ARG` is not a number in `[0, 1]`.
    #[error("OTEL_TRACES_SAMPLER_ARG={0:?} must be a number between 0 and 1")]
    SamplerArg(String),
    /// The exporter could not be built.
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// What the environment asks of the trace pipeline; parsed separately from building it so it
/// can be tested without touching the process environment.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// Export spans over OTLP; `false` for `OTEL_TRACES_EXPORTER=none` (ids are still made, so
    /// log lines still carry them).
    pub export: bool,
    /// The OTLP/HTTP body format.
    pub protocol: OtlpProtocol,
    /// `Some(ratio)` for the demo's default parent-based ratio sampler; `None` when
    /// `OTEL_TRACES_SAMPLER` is set and the SDK applies it as the specification says.
    pub default_sampler_ratio: Option<f64>,
}

/// The OTLP/HTTP encodings this build can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf`.
    HttpProtobuf,
    /// `http/json`.
    HttpJson,
}

impl TraceSettings {
    /// Parses the settings from a variable lookup (`std::env::var` in production).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, OtelError> {
        let export = match get("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
            None | Some("") | Some("otlp") => true,
            Some("none") => false,
            Some(other) => {
                return Err(OtelError::Unsupported {
                    name: "OTEL_TRACES_EXPORTER",
                    value: other.to_owned(),
                    reason: "use otlp or none",
                });
            }
        };
        let (name, value) = match get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
            Some(v) if !v.trim().is_empty() => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", v),
            _ => (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                get("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_default(),
            ),
        };
        let protocol = match value.trim() {
            "" | "http/protobuf" => OtlpProtocol::HttpProtobuf,
            "http/json" => OtlpProtocol::HttpJson,
            other => {
                return Err(OtelError::Unsupported {
                    name,
                    value: other.to_owned(),
                    reason: "this build sends OTLP over HTTP: use http/protobuf or http/json \
                             (every OTLP receiver, Tempo, Jaeger and the collector among them, \
                             accepts them on port 4318)",
                });
            }
        };
        let default_sampler_ratio = match get("OTEL_TRACES_SAMPLER") {
            Some(s) if !s.trim().is_empty() => None,
            _ => Some(match get("OTEL_TRACES_SAMPLER_ARG") {
                Some(arg) if !arg.trim().is_empty() => match arg.trim().parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => r,
                    _ => return Err(OtelError::SamplerArg(arg)),
                },
                _ => 1.0,
            }),
        };
        Ok(Self {
            export,
            protocol,
            default_sampler_ratio,
        })
    }
}

/// Builds the tracer provider. Must run outside the Tokio runtime: the OTLP exporter's blocking
/// HTTP client refuses to be created inside one.
pub fn build_provider(
    settings: &TraceSettings,
    service_name: &str,
) -> Result<SdkTracerProvider, OtelError> {
    // `Resource::builder()` runs the SDK's detectors (OTEL_RESOURCE_ATTRIBUTES,
    // OTEL_SERVICE_NAME); the name resolved by the caller already honours both, so setting it
    // again only fills in the binary's default.
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(ratio) = settings.default_sampler_ratio {
        builder = builder.with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))));
    }
    if settings.export {
        let protocol = match settings.protocol {
            OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
            OtlpProtocol::HttpJson => Protocol::HttpJson,
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<TraceSettings, OtelError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TraceSettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_otlp_protobuf_and_parent_based_always() {
        let s = settings(&[]).unwrap();
        assert!(s.export);
        assert_eq!(s.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(s.default_sampler_ratio, Some(1.0));
    }

    #[test]
    fn sampler_arg_sets_the_ratio_and_an_explicit_sampler_defers_to_the_sdk() {
        assert_eq!(
            settings(&[("OTEL_TRACES_SAMPLER_ARG", "0.25")])
                .unwrap()
                .default_sampler_ratio,
            Some(0.25)
        );
        assert_eq!(
            settings(&[("OTEL_TRACES_SAMPLER", "always_off")])
                .unwrap()
                .default_sampler_ratio,
            None
        );
        assert!(settings(&[("OTEL_TRACES_SAMPLER_ARG", "2")]).is_err());
        assert!(settings(&[("OTEL_TRACES_SAMPLER_ARG", "half")]).is_err());
    }

    #[test]
    fn protocol_signal_variable_wins_and_grpc_is_refused_clearly() {
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ])
        .unwrap();
        assert_eq!(s.protocol, OtlpProtocol::HttpJson);
        let err = settings(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).unwrap_err();
        assert!(err.to_string().contains("http/protobuf"), "{err}");
    }

    #[test]
    fn exporter_none_keeps_ids_but_sends_nothing() {
        assert!(
            !settings(&[("OTEL_TRACES_EXPORTER", "none")])
                .unwrap()
                .export
        );
        assert!(settings(&[("OTEL_TRACES_EXPORTER", "zipkin")]).is_err());
    }
}
