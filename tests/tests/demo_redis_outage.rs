//! Redis stopped for a while: the API keeps accepting orders (they wait in the outbox), and
//! once Redis is back they are published and processed, each once.

mod demo_support;

use std::time::Duration;

use demo_support::{Postgres, Redis, Service, post_orders, statuses, wait_settled};
use logship_tests::harness::serial;

#[test]
fn orders_are_accepted_while_redis_is_down_and_processed_when_it_returns() {
    let _serial = serial();
    let Some(pg) = Postgres::start() else { return };
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let env = vec![
        ("DATABASE_URL", pg.url()),
        ("REDIS_URL", redis.url()),
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ("OUTBOX_POLL_MS", "100".to_owned()),
        ("PAYMENT_FAILURE_RATE", "0".to_owned()),
        ("PAYMENT_LATENCY_MAX_MS", "30".to_owned()),
    ];
    let api = Service::start("order-api", &logs, &env);
    let worker = Service::start("order-worker", &logs, &env);

    let before = post_orders(&api, 5, "before");
    let s = wait_settled(&pg, &before, Duration::from_secs(30));
    assert!(s.iter().all(|s| s == "paid"), "{s:?}");

    redis.pause();
    let during = post_orders(&api, 10, "during");
    std::thread::sleep(Duration::from_secs(3));
    let s = statuses(&pg, &during);
    assert!(
        s.iter().all(|s| s == "pending"),
        "processed without Redis? {s:?}"
    );
    assert!(
        pg.count("SELECT count(*) FROM outbox WHERE published_at_ms IS NULL") >= 10,
        "the orders must wait in the outbox"
    );
    let (status, body) = api.get("/healthz").unwrap();
    assert_eq!(status, 200, "the API stays healthy without Redis: {body}");
    assert!(
        api.log().contains("publishing the job failed"),
        "the relay says why it is not publishing:\n{}",
        api.log()
    );

    redis.resume();
    let s = wait_settled(&pg, &during, Duration::from_secs(60));
    assert!(
        s.iter().all(|s| s == "paid"),
        "{s:?}\n{}\n{}",
        api.log(),
        worker.log()
    );
    assert_eq!(pg.count("SELECT count(*) FROM inbox"), 15);
    assert_eq!(
        worker.log().matches("\"msg\":\"order paid\"").count(),
        15,
        "each order paid once"
    );
}
