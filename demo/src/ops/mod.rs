//! Endpoints every service has: `/metrics`, `/healthz`, `/debug/pprof/profile`, and JSON
//! answers for unknown routes and methods.

pub mod process_metrics;

use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::api::error::ApiError;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::profiling::{self, ProfileError};

/// What the operational endpoints read.
#[derive(Clone)]
pub struct OpsState {
    /// Rendered by `/metrics`.
    pub metrics: Metrics,
    /// Pinged by `/healthz`.
    pub db: Db,
}

/// `/metrics`, `/healthz` and `/debug/pprof/profile`.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/debug/pprof/profile", get(profile))
        .with_state(state)
}

async fn metrics(State(s): State<OpsState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn healthz(State(s): State<OpsState>) -> Response {
    match s.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ok", "database": s.db.backend().system()})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "error": e.to_string()})),
        )
            .into_response(),
    }
}

/// `?seconds=N`, 1 to 60 (default 10), as in Go's `net/http/pprof`.
#[derive(Deserialize)]
struct ProfileParams {
    seconds: Option<u64>,
}

async fn profile(
    params: Result<Query<ProfileParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let seconds = match params {
        Ok(Query(p)) => p.seconds.unwrap_or(10),
        Err(_) => 0,
    };
    if !(1..=60).contains(&seconds) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_seconds",
            "seconds must be a whole number from 1 to 60",
        )
        .into_response();
    }
    match profiling::cpu_profile(Duration::from_secs(seconds)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"profile.pb.gz\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(ProfileError::Busy) => ApiError::new(
            StatusCode::CONFLICT,
            "profile_in_progress",
            "a profile is already being taken; try again when it is done",
        )
        .into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

/// JSON 404 for routes that do not exist.
pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// JSON 405 for a known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}
