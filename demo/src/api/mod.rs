//! The order API's HTTP surface: routes, shared state, and the middleware that observes every
//! request.

pub mod error;
pub mod observe;
pub mod orders;
pub mod validate;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::Notify;

use crate::db::Db;
use crate::metrics::Metrics;
use crate::ops::{self, OpsState};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The metrics.
    pub metrics: Metrics,
    /// Wakes the outbox relay after an insert.
    pub relay_wake: Arc<Notify>,
}

/// The full API: orders, operational endpoints, JSON fallbacks, body limit, observation.
pub fn router(state: AppState) -> Router {
    let ops_state = OpsState {
        metrics: state.metrics.clone(),
        db: state.db.clone(),
    };
    let metrics = state.metrics.clone();
    Router::new()
        .route("/v1/orders", post(orders::create))
        .route("/v1/orders/{id}", get(orders::get))
        .with_state(state)
        .merge(ops::router(ops_state))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            observe::observe,
        ))
}

/// The worker's HTTP surface: only the operational endpoints.
pub fn ops_router(db: Db, metrics: Metrics) -> Router {
    ops::router(OpsState {
        metrics: metrics.clone(),
        db,
    })
    .fallback(ops::not_found)
    .method_not_allowed_fallback(ops::method_not_allowed)
    .layer(axum::middleware::from_fn_with_state(
        metrics,
        observe::observe,
    ))
}

#[cfg(test)]
mod tests;
