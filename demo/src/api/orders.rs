//! `POST /v1/orders` and `GET /v1/orders/{id}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::validate::{CreateOrder, validate};
use crate::db::orders::{self, Order, OrderStatus};
use crate::outbox::OutboxMessage;
use crate::telemetry::propagation::traceparent_of;

/// Accepts an order: validates it, stores it as `pending` with its outbox message in one
/// transaction, and answers 202 at once; payment happens in the worker.
pub async fn create(
    State(state): State<AppState>,
    body: Result<Json<CreateOrder>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(req) = body.map_err(|rejection| {
        let code = match rejection {
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            JsonRejection::JsonSyntaxError(_) => "invalid_json",
            JsonRejection::JsonDataError(_) => "invalid_body",
            _ => "bad_request",
        };
        ApiError::new(rejection.status(), code, rejection.body_text())
    })?;
    let valid = validate(req).map_err(ApiError::validation)?;

    let id = uuid::Uuid::new_v4().to_string();
    let span = tracing::Span::current();
    span.record("order_id", id.as_str());
    let now = crate::now_ms();
    let order = Order {
        id: id.clone(),
        customer_id: valid.customer_id,
        status: OrderStatus::Pending,
        total_cents: valid.total_cents,
        currency: valid.currency,
        items: valid.items,
        failure_reason: None,
        created_at_ms: now,
        updated_at_ms: now,
    };
    let message = OutboxMessage {
        message_id: uuid::Uuid::new_v4().to_string(),
        aggregate_id: id.clone(),
        kind: "order.created".to_owned(),
        payload: json!({
            "order_id": id,
            "total_cents": order.total_cents,
            "currency": order.currency,
        })
        .to_string(),
        traceparent: traceparent_of(&span),
        created_at_ms: now,
    };
    orders::insert_with_outbox(&state.db, &order, &message)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    state.metrics.orders_created.inc();
    state.relay_wake.notify_one();
    tracing::info!(
        total_cents = order.total_cents,
        items = order.items.len(),
        customer_id = %order.customer_id,
        "order accepted"
    );
    let mut headers = HeaderMap::new();
    if let Ok(v) = format!("/v1/orders/{id}").parse() {
        headers.insert(header::LOCATION, v);
    }
    Ok((
        StatusCode::ACCEPTED,
        headers,
        Json(json!({ "id": id, "status": "pending" })),
    ))
}

/// The order with this id.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let Ok(uuid) = uuid::Uuid::parse_str(&id) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "an order id is a UUID",
        ));
    };
    let id = uuid.hyphenated().to_string();
    tracing::Span::current().record("order_id", id.as_str());
    match orders::get(&state.db, &id).await {
        Ok(Some(order)) => Ok(Json(order)),
        Ok(None) => Err(ApiError::not_found("order")),
        Err(e) => Err(ApiError::internal(&e)),
    }
}
