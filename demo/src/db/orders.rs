//! Orders: the business rows both services change.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Db, DbError};
use crate::outbox::OutboxMessage;

/// The states an order moves through: `pending` until the worker settles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Accepted, payment not yet settled.
    Pending,
    /// Payment succeeded.
    Paid,
    /// Payment failed for good.
    Failed,
}

impl OrderStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Failed => "failed",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(OrderStatus::Pending),
            "paid" => Some(OrderStatus::Paid),
            "failed" => Some(OrderStatus::Failed),
            _ => None,
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Stock-keeping unit.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Price of one, in cents.
    pub unit_price_cents: u64,
}

/// An order as stored and as `GET /v1/orders/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// UUID.
    pub id: String,
    /// Who ordered.
    pub customer_id: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// Sum of the items, in cents.
    pub total_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// What was ordered.
    pub items: Vec<Item>,
    /// Why payment failed, for `failed` orders.
    pub failure_reason: Option<String>,
    /// When it was accepted (epoch ms).
    pub created_at_ms: i64,
    /// When it last changed (epoch ms).
    pub updated_at_ms: i64,
}

const INSERT_ORDER: &str = "INSERT INTO orders \
    (id, customer_id, status, total_cents, currency, items, failure_reason, created_at_ms, updated_at_ms) \
    VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7)";

const INSERT_OUTBOX: &str = "INSERT INTO outbox \
    (message_id, aggregate_id, kind, payload, traceparent, created_at_ms, attempts) \
    VALUES ($1, $2, $3, $4, $5, $6, 0)";

const SELECT_ORDER: &str = "SELECT id, customer_id, status, total_cents, currency, items, \
    failure_reason, created_at_ms, updated_at_ms FROM orders WHERE id = $1";

const SETTLE_ORDER: &str = "UPDATE orders SET status = $1, failure_reason = $2, updated_at_ms = $3 \
    WHERE id = $4 AND status = 'pending'";

/// Stores a new `pending` order and the outbox message announcing it, in one transaction: both
/// rows exist or neither does, so no order is ever accepted without its job.
pub async fn insert_with_outbox(
    db: &Db,
    order: &Order,
    message: &OutboxMessage,
) -> Result<(), DbError> {
    let items = serde_json::to_string(&order.items).unwrap_or_else(|_| "[]".to_owned());
    let mut tx = db.begin().await?;
    db.timed("INSERT orders", INSERT_ORDER, async {
        sqlx::query(INSERT_ORDER)
            .bind(&order.id)
            .bind(&order.customer_id)
            .bind(order.status.as_str())
            .bind(order.total_cents)
            .bind(&order.currency)
            .bind(items)
            .bind(order.created_at_ms)
            .execute(&mut *tx)
            .await
    })
    .await?;
    db.timed("INSERT outbox", INSERT_OUTBOX, async {
        sqlx::query(INSERT_OUTBOX)
            .bind(&message.message_id)
            .bind(&message.aggregate_id)
            .bind(&message.kind)
            .bind(&message.payload)
            .bind(message.traceparent.as_deref())
            .bind(message.created_at_ms)
            .execute(&mut *tx)
            .await
    })
    .await?;
    db.timed("COMMIT", "COMMIT", tx.commit()).await
}

/// The order with this id, if any.
pub async fn get(db: &Db, id: &str) -> Result<Option<Order>, DbError> {
    let row = db
        .timed("SELECT orders", SELECT_ORDER, async {
            sqlx::query(SELECT_ORDER)
                .bind(id)
                .fetch_optional(db.pool())
                .await
        })
        .await?;
    row.map(|r| decode(&r)).transpose()
}

fn decode(r: &AnyRow) -> Result<Order, DbError> {
    let d = |source| DbError::Decode {
        operation: "SELECT orders",
        source,
    };
    let status: String = r.try_get("status").map_err(d)?;
    let items: String = r.try_get("items").map_err(d)?;
    Ok(Order {
        id: r.try_get("id").map_err(d)?,
        customer_id: r.try_get("customer_id").map_err(d)?,
        status: OrderStatus::parse(&status).ok_or_else(|| {
            d(sqlx::Error::Decode(
                format!("unknown order status {status:?}").into(),
            ))
        })?,
        total_cents: r.try_get("total_cents").map_err(d)?,
        currency: r.try_get("currency").map_err(d)?,
        items: serde_json::from_str(&items).map_err(|e| d(sqlx::Error::Decode(e.into())))?,
        failure_reason: r.try_get("failure_reason").map_err(d)?,
        created_at_ms: r.try_get("created_at_ms").map_err(d)?,
        updated_at_ms: r.try_get("updated_at_ms").map_err(d)?,
    })
}

/// Moves a `pending` order to its final status inside the caller's transaction; returns
/// whether a row changed (false when the order was already settled or does not exist).
pub async fn settle(
    db: &Db,
    tx: &mut Transaction<'static, Any>,
    id: &str,
    status: OrderStatus,
    failure_reason: Option<&str>,
) -> Result<bool, DbError> {
    let done = db
        .timed("UPDATE orders", SETTLE_ORDER, async {
            sqlx::query(SETTLE_ORDER)
                .bind(status.as_str())
                .bind(failure_reason)
                .bind(crate::now_ms())
                .bind(id)
                .execute(&mut **tx)
                .await
        })
        .await?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips() {
        for s in [OrderStatus::Pending, OrderStatus::Paid, OrderStatus::Failed] {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("shipped"), None);
    }
}
