//! The Loki sink against every way Loki fails: what is retried arrives (once, or with
//! duplicates bounded by the one batch Loki may have stored), what Loki stored of a 400 is
//! never re-sent and what it refused is repaired once or counted, configuration errors keep
//! the data and fail `/ready`.

use std::collections::HashSet;
use std::time::Duration;

use logship_tests::harness::{Agent, wait_until};
use logship_tests::logwriter::append_lines;
use logship_tests::loki::{Fault, LokiReceiver, Mode};
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::seqs::{count_seqs, seq_of, wait_for_seqs};

struct Setup {
    dir: tempfile::TempDir,
    loki: LokiReceiver,
    cfg: PipelineConfig,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    Setup { dir, loki, cfg }
}

impl Setup {
    fn write(&self, n: u64) {
        append_lines(&logs_dir(self.dir.path()).join("app.log"), 1..=n).unwrap();
    }

    fn start(&self) -> Agent {
        Agent::start(&self.cfg.to_toml(), self.dir.path())
    }

    /// Waits for every line, lets late retries land, and returns the final counts.
    fn settle(&self, n: u64, timeout: Duration) -> logship_tests::seqs::SeqCounts {
        let c = wait_for_seqs(&self.loki, n, timeout);
        assert!(c.missing.is_empty(), "not everything arrived: {c}");
        std::thread::sleep(Duration::from_secs(1));
        self.loki.with_entries(|e| count_seqs(e, n))
    }
}

fn retries(agent: &Agent) -> f64 {
    agent.metric("logship_loki_retries_total", &[("component", "loki")])
}

#[test]
fn retry_after_is_honoured() {
    let s = setup();
    s.loki.push_fault(Fault::Status429 {
        retry_after: Some(2),
    });
    s.write(200);
    let _agent = s.start();
    let c = s.settle(200, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");
    let reqs = s.loki.requests();
    let first = reqs
        .iter()
        .find(|r| r.status == Some(429))
        .expect("the 429 was served");
    let retry = reqs
        .iter()
        .find(|r| r.received_at > first.received_at && r.lines_digest == first.lines_digest)
        .expect("the rate-limited batch was retried");
    let gap = retry.received_at - first.received_at;
    println!("429 Retry-After: 2 → retried after {gap:?}");
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
    assert!(gap < Duration::from_secs(15), "retried only after {gap:?}");
}

#[test]
fn status_429_without_retry_after_is_retried() {
    let s = setup();
    s.loki.push_faults([
        Fault::Status429 { retry_after: None },
        Fault::Status429 { retry_after: None },
    ]);
    s.write(300);
    let agent = s.start();
    let c = s.settle(300, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");
    assert!(retries(&agent) >= 2.0, "{}", agent.metrics());
}

#[test]
fn status_500_is_retried_until_ok() {
    let s = setup();
    s.loki.push_faults(std::iter::repeat_n(Fault::Status500, 5));
    s.write(500);
    let agent = s.start();
    let c = s.settle(500, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");
    let served_500 = s
        .loki
        .requests()
        .iter()
        .filter(|r| r.status == Some(500))
        .count();
    assert_eq!(served_500, 5);
    assert!(retries(&agent) >= 5.0, "{}", agent.metrics());
    assert!(wait_until(Duration::from_secs(5), || {
        agent.metric(
            "logship_loki_requests_total",
            &[("component", "loki"), ("status", "500")],
        ) == 5.0
    }));
}

/// An ingester refusing every 10th entry of each push as "too far behind": Loki stores the
/// rest, which is never sent again; the refused entries it names (to the nanosecond) are
/// re-stamped and sent once more, alone; an entry refused again is counted as discarded.
#[test]
fn partial_400_stores_the_rest_and_repairs_what_it_names_once() {
    let s = setup();
    s.loki.set_mode(Mode::Fault(Fault::Status400Partial {
        reject_every_nth: 10,
    }));
    s.write(1000);
    let agent = s.start();
    let discarded = || {
        agent.metric(
            "logship_component_discarded_events_total",
            &[("component", "loki")],
        )
    };
    // Settled when every line is stored or was refused twice (and so discarded).
    assert!(
        wait_until(Duration::from_secs(30), || s.loki.count() as f64
            + discarded()
            >= 1000.0),
        "stored {} + discarded {}",
        s.loki.count(),
        discarded()
    );
    // A third attempt would show up as more requests and more entries.
    std::thread::sleep(Duration::from_secs(2));
    let received = s.loki.entries();
    let rejected = s.loki.rejected();
    let c = count_seqs(&received, 1000);
    let mut refusals_per_seq: std::collections::HashMap<u64, usize> = Default::default();
    for seq in rejected.iter().filter_map(|r| seq_of(&r.entry.line)) {
        *refusals_per_seq.entry(seq).or_default() += 1;
    }
    let refused_twice: HashSet<u64> = refusals_per_seq
        .iter()
        .filter(|(_, n)| **n == 2)
        .map(|(s, _)| *s)
        .collect();
    println!(
        "400 partial: received {}, refusals {}, refused lines {}, refused twice {}, {c}",
        received.len(),
        rejected.len(),
        refusals_per_seq.len(),
        refused_twice.len()
    );
    assert_eq!(
        refusals_per_seq.len(),
        100,
        "every 10th line of the first pushes"
    );
    assert!(
        refusals_per_seq.values().all(|n| *n <= 2),
        "no line is tried a third time: {refusals_per_seq:?}"
    );
    assert!(
        !refused_twice.is_empty(),
        "the second attempts are refused too, every 10th"
    );
    assert_eq!(c.duplicates, 0, "a stored line was sent again: {c}");
    let missing: HashSet<u64> = c.missing.iter().copied().collect();
    assert_eq!(
        missing, refused_twice,
        "lost exactly the lines refused twice: {c}"
    );
    let sent: usize = s.loki.requests().iter().map(|r| r.entries).sum();
    assert_eq!(sent, 1000 + 100, "the stored entries were never re-sent");
    assert!(
        wait_until(Duration::from_secs(5), || discarded()
            == refused_twice.len() as f64),
        "discarded metric {} != refused twice {}\n{}",
        discarded(),
        refused_twice.len(),
        agent.metrics()
    );
    assert_eq!(
        agent.metric(
            "logship_loki_entries_repaired_total",
            &[("component", "loki"), ("reason", "entry_too_far_behind")]
        ),
        100.0
    );
}

#[test]
fn status_413_splits_the_batch() {
    let s = setup();
    const LIMIT: usize = 16 * 1024;
    s.loki
        .set_mode(Mode::Fault(Fault::Status413IfBodyOver(LIMIT)));
    s.write(5000);
    let _agent = s.start();
    let c = s.settle(5000, Duration::from_secs(60));
    assert!(c.is_exactly_once(), "{c}");
    let reqs = s.loki.requests();
    assert!(
        reqs.iter().any(|r| r.status == Some(413)),
        "no batch was over the limit"
    );
    assert!(
        reqs.iter()
            .filter(|r| r.status == Some(204))
            .all(|r| r.body_len <= LIMIT)
    );
}

#[test]
fn dropped_connections_are_retried() {
    let s = setup();
    s.loki
        .push_faults(std::iter::repeat_n(Fault::DropConnection, 3));
    s.write(500);
    let agent = s.start();
    let c = s.settle(500, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");
    let unanswered = s
        .loki
        .requests()
        .iter()
        .filter(|r| r.status.is_none())
        .count();
    assert_eq!(unanswered, 3);
    assert!(retries(&agent) >= 3.0, "{}", agent.metrics());
}

#[test]
fn slow_answer_beyond_the_timeout_is_retried() {
    let mut s = setup();
    s.cfg.request =
        "timeout_ms = 1000, retry_initial_backoff_ms = 50, retry_max_backoff_ms = 1000".to_owned();
    s.loki.push_fault(Fault::Delay(Duration::from_secs(3)));
    s.write(500);
    let _agent = s.start();
    let c = s.settle(500, Duration::from_secs(30));
    // The slow request may still have been stored after the agent gave up on it, as Loki
    // would: its entries are the only possible duplicates.
    let delayed_entries = s
        .loki
        .requests()
        .iter()
        .find(|r| matches!(r.fault, Some(Fault::Delay(_))))
        .map_or(0, |r| r.entries);
    println!("delay beyond timeout: {c}, delayed request held {delayed_entries} entries");
    assert!(c.missing.is_empty(), "{c}");
    assert!(c.duplicates <= delayed_entries, "{c}");
}

#[test]
fn hung_request_times_out_and_is_retried() {
    let mut s = setup();
    s.cfg.request =
        "timeout_ms = 1000, retry_initial_backoff_ms = 50, retry_max_backoff_ms = 1000".to_owned();
    s.loki.push_fault(Fault::Hang);
    s.write(500);
    let _agent = s.start();
    let c = s.settle(500, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");
}

fn config_error_keeps_data(fault: Fault, code: &str) {
    let s = setup();
    s.loki.set_mode(Mode::Fault(fault));
    s.write(300);
    let agent = s.start();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let (status, body) = agent.ready();
            status == 503 && body.contains(code)
        }),
        "/ready should be 503 naming {code}: {:?}",
        agent.ready()
    );
    assert_eq!(agent.health().0, 200, "alive while not ready");
    assert_eq!(s.loki.count(), 0);
    s.loki.set_mode(Mode::Normal);
    let c = s.settle(300, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");
    assert!(
        wait_until(Duration::from_secs(10), || agent.ready().0 == 200),
        "/ready should recover: {:?}",
        agent.ready()
    );
}

#[test]
fn unauthorized_keeps_the_data_and_fails_ready() {
    config_error_keeps_data(Fault::Status401, "401");
}

#[test]
fn not_found_keeps_the_data_and_fails_ready() {
    config_error_keeps_data(Fault::Status404, "404");
}

#[test]
fn ready_fails_once_loki_refuses_for_not_ready_after_secs_and_recovers() {
    let mut s = setup();
    s.cfg = s.cfg.clone().sink("not_ready_after_secs = 2");
    s.write(100);
    s.loki.stop();
    let started = std::time::Instant::now();
    let agent = s.start();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let (status, body) = agent.ready();
            status == 503 && body.contains("loki") && body.contains("connection")
        }),
        "/ready should be 503 naming the sink and the reason: {:?}",
        agent.ready()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "unready before not_ready_after_secs"
    );
    assert_eq!(agent.health().0, 200, "alive while not ready");
    s.loki.start().unwrap();
    let c = s.settle(100, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");
    assert!(
        wait_until(Duration::from_secs(10), || agent.ready().0 == 200),
        "/ready should recover at the next success: {:?}",
        agent.ready()
    );
}

/// Some gateways echo the request's headers in their error answers. Whatever form a
/// configured secret took on the wire (token, password, `user:password`, its base64, JSON
/// escaped), it never reaches the agent's log, `/ready` or `/metrics`.
#[test]
fn credentials_echoed_by_a_gateway_are_never_logged() {
    const TOKEN: &str = "tok-3f9a/b+c==";
    const USER: &str = "ops";
    const PASSWORD: &str = "pa/ss:w0rd";
    let basic = base64_of(&format!("{USER}:{PASSWORD}"));
    let cases = [
        (
            format!("auth = {{ token = \"{TOKEN}\" }}"),
            vec![TOKEN.to_owned(), TOKEN.replace('/', "\\/")],
        ),
        (
            format!("auth = {{ user = \"{USER}\", password = \"{PASSWORD}\" }}"),
            vec![
                PASSWORD.to_owned(),
                PASSWORD.replace('/', "\\/"),
                basic.clone(),
                basic.replace('/', "\\/"),
            ],
        ),
    ];
    for (auth, secrets) in cases {
        let mut s = setup();
        s.cfg = s.cfg.clone().sink(&auth);
        // First a 400 (logged with its body, the batch is refused), then a 401 (logged with
        // its body, retried), then Loki accepts.
        s.loki.push_faults([
            Fault::EchoHeaders { status: 400 },
            Fault::EchoHeaders { status: 401 },
        ]);
        let log_file = logs_dir(s.dir.path()).join("app.log");
        append_lines(&log_file, 1..=50).unwrap();
        let agent = s.start();
        assert!(wait_until(Duration::from_secs(20), || !s
            .loki
            .requests()
            .is_empty()));
        append_lines(&log_file, 51..=100).unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || s.loki.requests().len() >= 3),
            "requests: {}",
            s.loki.requests().len()
        );
        // The receiver did see the secret, and echoed it.
        let echoed = s.loki.requests()[0].response_body.clone();
        assert!(
            secrets
                .iter()
                .any(|secret| echoed.contains(secret.as_str())),
            "the receiver did not echo the credentials: {echoed}"
        );
        // The first batch was refused and counted; the second arrives after its 401.
        assert_eq!(s.loki.count(), 50);
        let discarded = || {
            agent.metric(
                "logship_component_discarded_events_total",
                &[("component", "loki")],
            )
        };
        assert!(
            wait_until(Duration::from_secs(20), || {
                s.loki.count() as f64 + discarded() == 100.0
            }),
            "stored {} + discarded {} != 100",
            s.loki.count(),
            discarded()
        );
        let log = agent.log();
        assert!(
            log.contains("request headers") && log.contains("***"),
            "the echoed bodies should be logged, redacted:\n{log}"
        );
        let exposed = format!("{log}\n{}\n{:?}", agent.metrics(), agent.ready());
        for secret in &secrets {
            assert!(
                !exposed.contains(secret.as_str()),
                "{secret:?} leaked:\n{exposed}"
            );
        }
    }
}

/// Standard base64 with padding.
fn base64_of(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
