//! The API over real HTTP, on an SQLite database in a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{AppState, router};
use crate::db::{Db, schema};
use crate::metrics::Metrics;

struct Api {
    base: String,
    client: reqwest::Client,
    db: Db,
    _dir: tempfile::TempDir,
}

async fn start() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let metrics = Metrics::new();
    let db = Db::connect(&url, metrics.clone(), Duration::from_secs(5))
        .await
        .unwrap();
    schema::migrate(&db).await.unwrap();
    let app = router(AppState {
        db: db.clone(),
        metrics,
        relay_wake: Arc::new(Notify::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Api {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        db,
        _dir: dir,
    }
}

impl Api {
    async fn post(&self, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/v1/orders", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

fn good_order() -> Value {
    json!({"customer_id": "c-1", "items": [{"sku": "A", "quantity": 2, "unit_price_cents": 150}]})
}

#[tokio::test]
async fn an_order_is_accepted_stored_pending_with_its_outbox_row_and_readable() {
    let api = start().await;
    let r = api
        .client
        .post(format!("{}/v1/orders", api.base))
        .json(&good_order())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["status"], "pending");
    assert_eq!(location, format!("/v1/orders/{id}"));

    let (status, text) = api.get(&location).await;
    assert_eq!(status, 200);
    let order: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(order["status"], "pending");
    assert_eq!(order["total_cents"], 300);
    assert_eq!(order["currency"], "EUR");

    let row: (String, String) =
        sqlx::query_as("SELECT aggregate_id, kind FROM outbox WHERE published_at_ms IS NULL")
            .fetch_one(api.db.pool())
            .await
            .unwrap();
    assert_eq!(row, (id, "order.created".to_owned()));
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_the_right_status() {
    let api = start().await;
    let (status, body) = api
        .post(&json!({"customer_id": "", "items": [{"sku": "A", "quantity": 0, "unit_price_cents": 1}]}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "validation_failed");
    assert_eq!(body["error"]["details"].as_array().unwrap().len(), 2);

    let (status, body) = api.post(&json!({"customer": "c-1"})).await;
    assert_eq!(status, 422, "unknown or missing fields: {body}");
    assert_eq!(body["error"]["code"], "invalid_body");

    let r = api
        .client
        .post(format!("{}/v1/orders", api.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_json"
    );

    let r = api
        .client
        .post(format!("{}/v1/orders", api.base))
        .body(good_order().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);

    let huge = json!({"customer_id": "c", "items": [], "pad": "x".repeat(super::MAX_BODY_BYTES)});
    let (status, _) = api.post(&huge).await;
    assert_eq!(status, 413);

    for (path, want, code) in [
        ("/v1/orders/not-a-uuid", 400, "invalid_id"),
        (
            "/v1/orders/6f1c1ef1-3c59-4a35-a7a8-6d4f1f7c3a10",
            404,
            "not_found",
        ),
        ("/nowhere", 404, "not_found"),
    ] {
        let (status, text) = api.get(path).await;
        assert_eq!(status, want, "{path}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], code, "{path}");
    }
    let r = api
        .client
        .delete(format!("{}/v1/orders", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
}

#[tokio::test]
async fn metrics_label_requests_by_route_template_not_path() {
    let api = start().await;
    api.get("/v1/orders/6f1c1ef1-3c59-4a35-a7a8-6d4f1f7c3a10")
        .await;
    api.get("/nowhere/else").await;
    let (status, text) = api.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/v1/orders/{id}",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains("6f1c1ef1"), "no raw ids in labels");
    let (status, text) = api.get("/healthz").await;
    assert_eq!((status, text.contains("\"sqlite\"")), (200, true));
}
