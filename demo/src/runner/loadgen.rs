//! The load generator: posts orders at a steady rate (a few of them invalid, to show 4xx
//! answers and warn lines), reads some back, and at the end waits for every accepted order to
//! be settled.

use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::watch;

/// What the load generator saw.
#[derive(Debug, Default, Clone)]
pub struct LoadStats {
    /// Ids of orders the API accepted (202).
    pub created: Vec<String>,
    /// Requests the API refused with a 4xx (the deliberately invalid ones).
    pub rejected: u64,
    /// Requests that failed otherwise (5xx, connection errors).
    pub errors: u64,
}

/// How the accepted orders ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Settled {
    /// `paid`.
    pub paid: u64,
    /// `failed`.
    pub failed: u64,
    /// Still `pending` when the wait ran out.
    pub pending: u64,
}

const SKUS: &[(&str, u64)] = &[
    ("espresso-beans-1kg", 2490),
    ("grinder-burr", 12900),
    ("milk-jug", 1450),
    ("paper-filters-100", 390),
    ("kettle-gooseneck", 5900),
];

/// A random order; one in twenty is invalid on purpose.
fn random_order() -> Value {
    let mut rng = rand::rng();
    if rng.random_bool(0.05) {
        return json!({ "customer_id": "", "items": [{"sku": "milk-jug", "quantity": 0, "unit_price_cents": 1450}] });
    }
    let lines = rng.random_range(1..=3);
    let items: Vec<Value> = (0..lines)
        .map(|_| {
            let (sku, price) = SKUS[rng.random_range(0..SKUS.len())];
            json!({ "sku": sku, "quantity": rng.random_range(1..=3), "unit_price_cents": price })
        })
        .collect();
    json!({
        "customer_id": format!("customer-{}", rng.random_range(1..=40)),
        "currency": "EUR",
        "items": items,
    })
}

/// Posts orders at `rate` per second to `base` until `stop` turns true.
pub async fn run(base: &str, rate: f64, mut stop: watch::Receiver<bool>) -> LoadStats {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let period = Duration::from_secs_f64(1.0 / rate.clamp(0.1, 1000.0));
    let mut tick = tokio::time::interval(period);
    let mut stats = LoadStats::default();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }
        let resp = client
            .post(format!("{base}/v1/orders"))
            .json(&random_order())
            .send()
            .await;
        match resp {
            Ok(r) if r.status().as_u16() == 202 => {
                if let Ok(body) = r.json::<Value>().await
                    && let Some(id) = body.get("id").and_then(Value::as_str)
                {
                    stats.created.push(id.to_owned());
                }
            }
            Ok(r) if r.status().is_client_error() => stats.rejected += 1,
            Ok(_) | Err(_) => stats.errors += 1,
        }
        // Now and then read an order back, as a client polling for its result would.
        if stats.created.len() % 4 == 1
            && let Some(id) = stats.created.last()
        {
            let _ = client.get(format!("{base}/v1/orders/{id}")).send().await;
        }
    }
    stats
}

/// Polls the API until every order in `ids` is settled or `timeout` passes.
pub async fn wait_settled(base: &str, ids: &[String], timeout: Duration) -> Settled {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pending: Vec<String> = ids.to_vec();
    let mut done = Settled::default();
    loop {
        let mut still = Vec::new();
        for id in pending {
            let status = match client.get(format!("{base}/v1/orders/{id}")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_owned)),
                Err(_) => None,
            };
            match status.as_deref() {
                Some("paid") => done.paid += 1,
                Some("failed") => done.failed += 1,
                _ => still.push(id),
            }
        }
        pending = still;
        if pending.is_empty() || tokio::time::Instant::now() >= deadline {
            done.pending = pending.len() as u64;
            return done;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_orders_are_mostly_valid_requests() {
        let mut valid = 0;
        for _ in 0..400 {
            let o = random_order();
            let items = o["items"].as_array().unwrap();
            assert!(!items.is_empty());
            if o["customer_id"].as_str().unwrap().is_empty() {
                continue;
            }
            valid += 1;
            assert!(
                items
                    .iter()
                    .all(|i| (1..=3).contains(&i["quantity"].as_u64().unwrap()))
            );
        }
        assert!(valid > 340, "about 95% valid, got {valid}/400");
    }
}
