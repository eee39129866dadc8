//! The HTTP endpoint for the agent's own telemetry: `/metrics`, `/health`, `/ready`, and
//! `/tap/<component>?limit=N`, which streams the events leaving a component as JSON lines, the
//! objects the console sink's `json` format prints (`logship tap`; see
//! [`tap`](crate::pipeline::tap)). A line `{"tap_dropped":N}` says the watcher read too slowly
//! and lost N events of the tap (never of the pipeline).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::{Health, Metrics};
use logship_config::schema::ConsoleFormat;

use crate::pipeline::tap::{TapHub, Tapped};
use crate::sinks::console::format_event;

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    tap: Arc<TapHub>,
    shutdown: CancellationToken,
}

/// Binds `address` now (so a taken port fails start-up) and serves until `shutdown`.
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    tap: Arc<TapHub>,
    shutdown: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/health", get(health_handler))
        .route("/ready", get(ready_handler))
        .route("/tap/{component}", get(tap_handler))
        .with_state(AppState {
            metrics,
            health,
            tap,
            shutdown: shutdown.clone(),
        });
    Ok(tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "telemetry server failed");
        }
    }))
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn health_handler() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

async fn ready_handler(State(s): State<AppState>) -> impl IntoResponse {
    let problems = s.health.problems();
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", problems.join("\n")),
        )
    }
}

/// `?limit=N`: stop after N events.
#[derive(serde::Deserialize)]
struct TapQuery {
    limit: Option<u64>,
}

async fn tap_handler(
    State(s): State<AppState>,
    Path(component): Path<String>,
    Query(q): Query<TapQuery>,
) -> axum::response::Response {
    let Some(point) = s.tap.existing(&component) else {
        let known = s.tap.ids().join(", ");
        return (
            StatusCode::NOT_FOUND,
            format!("no source or transform `{component}` to tap; there are: {known}\n"),
        )
            .into_response();
    };
    let watch = point.watch();
    let limit = q.limit.unwrap_or(u64::MAX);
    // Ends at the limit, when the agent stops, or when the watcher goes away (the body is
    // dropped, and the watch with it).
    let state = (watch, 0u64, s.shutdown.clone());
    let stream = futures::stream::unfold(state, move |(mut watch, sent, stop)| async move {
        if sent >= limit {
            return None;
        }
        let tapped = tokio::select! {
            () = stop.cancelled() => None,
            tapped = watch.next() => tapped,
        }?;
        // Rendered here, on the watcher's task, not the component's.
        let (text, n) = match tapped {
            Tapped::Event(event) => {
                let mut out = Vec::with_capacity(160 + event.line.len());
                let mut time = String::new();
                format_event(ConsoleFormat::Json, &event, &mut out, &mut time);
                (out, 1)
            }
            Tapped::Dropped(lost) => (format!("{{\"tap_dropped\":{lost}}}\n").into_bytes(), 0),
        };
        Some((Ok::<_, std::io::Error>(text), (watch, sent + n, stop)))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}
