//! The worker killed mid-job and restarted: every order is settled (the outbox and the queue
//! lose nothing) and settled once (the inbox). Run on the Redis queue and on the
//! database-backed queue, each with real PostgreSQL.
//!
//! Then every outbox message is published a second time, as a relay that crashed between
//! publishing and marking would: the worker must acknowledge each as a duplicate and change
//! nothing.

mod demo_support;

use std::time::Duration;

use demo_support::{Postgres, Redis, Service, post_orders, statuses, wait_settled};
use logship_tests::harness::{serial, wait_until};

const ORDERS: usize = 24;

fn crash_and_recover(pg: &Postgres, redis: Option<&Redis>) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut env = vec![
        ("DATABASE_URL", pg.url()),
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ("JOB_VISIBILITY_TIMEOUT_MS", "2000".to_owned()),
        ("OUTBOX_POLL_MS", "100".to_owned()),
    ];
    if let Some(r) = redis {
        env.push(("REDIS_URL", r.url()));
    }
    let api = Service::start("order-api", &logs, &env);
    let mut worker_env = env.clone();
    worker_env.extend([
        ("WORKER_ID", "worker-1".to_owned()),
        ("WORKER_CONCURRENCY", "4".to_owned()),
        ("PAYMENT_FAILURE_RATE", "0".to_owned()),
        ("PAYMENT_LATENCY_MIN_MS", "300".to_owned()),
        ("PAYMENT_LATENCY_MAX_MS", "600".to_owned()),
        ("PAYMENT_SLOW_RATE", "0".to_owned()),
    ]);
    let mut worker = Service::start("order-worker", &logs, &worker_env);

    let ids = post_orders(&api, ORDERS, "crash");
    // Kill it while it holds jobs: some orders paid, the rest not yet.
    let some_paid = wait_until(Duration::from_secs(30), || {
        statuses(pg, &ids).iter().filter(|s| *s == "paid").count() >= 3
    });
    assert!(some_paid, "the worker paid nothing:\n{}", worker.log());
    let jobs_started = worker.log().matches("\"msg\":\"job received\"").count();
    worker.kill9();
    let pending = statuses(pg, &ids)
        .iter()
        .filter(|s| *s == "pending")
        .count();
    assert!(
        pending > 0,
        "everything was paid before the kill; the test proves nothing"
    );
    let paid_lines_before = worker.log().matches("\"msg\":\"order paid\"").count();
    assert!(
        jobs_started > paid_lines_before,
        "no job was in hand at the kill ({jobs_started} started, {paid_lines_before} paid)"
    );

    worker.restart();
    let settled = wait_settled(pg, &ids, Duration::from_secs(90));
    assert!(
        settled.iter().all(|s| s == "paid"),
        "{settled:?}\n{}",
        worker.log()
    );

    let inbox = pg.query("SELECT count(*), count(DISTINCT message_id) FROM inbox");
    assert_eq!(
        inbox,
        format!("{ORDERS}|{ORDERS}"),
        "one inbox entry per message"
    );
    assert_eq!(
        pg.count("SELECT count(*) FROM outbox WHERE published_at_ms IS NULL"),
        0,
        "every outbox message published"
    );
    // The inbox above proves each order settled once. The log says the same, except that a
    // kill between the commit and the "order paid" line loses that line (the redelivered job
    // is then skipped as a duplicate): at most the jobs in hand at the kill lack one.
    let paid = paid_order_ids(&worker.log());
    let in_hand = jobs_started - paid_lines_before;
    assert!(
        paid.len() <= ORDERS && paid.len() + in_hand >= ORDERS,
        "{} orders logged as paid, {in_hand} jobs in hand at the kill",
        paid.len()
    );
    let distinct: std::collections::HashSet<&String> = paid.iter().collect();
    assert_eq!(distinct.len(), paid.len(), "an order paid twice: {paid:?}");
    let paid_lines = paid.len();

    // Publish everything again: all duplicates.
    let duplicates_before = worker.log().matches("duplicate message").count();
    pg.query("UPDATE outbox SET published_at_ms = NULL, lease_until_ms = NULL");
    let all_skipped = wait_until(Duration::from_secs(60), || {
        worker.log().matches("duplicate message").count() >= duplicates_before + ORDERS
    });
    assert!(
        all_skipped,
        "redelivered messages not all skipped:\n{}",
        worker.log()
    );
    assert_eq!(
        worker.log().matches("\"msg\":\"order paid\"").count(),
        paid_lines,
        "a redelivered message paid again"
    );
    assert_eq!(pg.count("SELECT count(*) FROM inbox"), ORDERS as i64);
    assert!(statuses(pg, &ids).iter().all(|s| s == "paid"));
    drop(api);
}

/// The `order_id` of every "order paid" line of `log`, in order, repeats included.
fn paid_order_ids(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("\"msg\":\"order paid\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["order_id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn worker_killed_mid_job_on_the_redis_queue_settles_every_order_once() {
    let _serial = serial();
    let Some(pg) = Postgres::start() else { return };
    let Some(redis) = Redis::start() else { return };
    crash_and_recover(&pg, Some(&redis));
}

#[test]
fn worker_killed_mid_job_on_the_database_queue_settles_every_order_once() {
    let _serial = serial();
    let Some(pg) = Postgres::start() else { return };
    crash_and_recover(&pg, None);
}
