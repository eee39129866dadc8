//! One HTTP request: routing, tenancy, fault injection, decoding, validation, storing, and
//! the answer Loki would give.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::count::count_entries;
use super::decode::{DecodedStream, decode_body};
use super::faults::{Action, Fault};
use super::labels::format_labels;
use super::rate::TokenBucket;
use super::store::{ReceivedEntry, RejectedEntry, RequestRecord, Shared};
use super::validate::{
    StreamFailures, failure_body, validate_entry, validate_labels, validate_not_behind,
};
use crate::timefmt::{now_nanos, rfc3339_seconds};

/// Per-connection handles: `drop_conn` makes the connection task close the socket without an
/// answer; `cancel` fires when the receiver stops.
#[derive(Clone)]
pub(crate) struct ConnCtx {
    pub drop_conn: Arc<Notify>,
    pub cancel: CancellationToken,
}

type Resp = Response<Full<Bytes>>;

/// What to answer: status, text body, optional `Retry-After`.
struct Answer {
    status: StatusCode,
    body: String,
    retry_after: Option<u64>,
}

fn answer(status: StatusCode, body: impl Into<String>) -> Answer {
    Answer {
        status,
        body: body.into(),
        retry_after: None,
    }
}

fn plain(status: StatusCode, body: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn all_headers(h: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in h {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        out.entry(k.as_str().to_owned())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

/// The request's headers as `name: value` lines, then as one JSON object (whose encoder
/// escapes `/` as `\/`, as Go's does in HTML-safe mode).
fn echo_headers(h: &HeaderMap) -> String {
    let headers = all_headers(h);
    let mut text = String::from("request headers:\n");
    for (k, v) in &headers {
        text.push_str(&format!("{k}: {v}\n"));
    }
    let json = serde_json::to_string(&headers).unwrap_or_default();
    text.push_str(&json.replace('/', "\\/"));
    text.push('\n');
    text
}

/// A pseudo-random number below `spread` from a request's digest and the clock (no RNG state
/// to share between connections).
fn digest_jitter(digest: u64, spread: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = digest ^ nanos.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x % spread.max(1)
}

/// Entry count and an order-insensitive hash of (timestamp, line) pairs: a batch re-sent
/// with its streams in another order still matches.
fn digest(streams: &[DecodedStream]) -> (usize, u64) {
    let mut sum = 0u64;
    let mut n = 0;
    for s in streams {
        for e in &s.entries {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            e.line.hash(&mut h);
            e.timestamp_ns.hash(&mut h);
            sum = sum.wrapping_add(h.finish());
            n += 1;
        }
    }
    (n, sum)
}

/// Entry point for every request on a connection.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    ctx: ConnCtx,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let received_at = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    match (&parts.method, path.as_str()) {
        (&Method::GET, "/ready") => return Ok(plain(StatusCode::OK, "ready\n")),
        (&Method::POST, "/loki/api/v1/push") => {}
        (_, "/loki/api/v1/push") => {
            return Ok(plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "405 method not allowed\n",
            ));
        }
        _ => return Ok(plain(StatusCode::NOT_FOUND, "404 page not found\n")),
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "could not read the body\n")),
    };
    let action = shared.next_action();
    let content_type = header_str(&parts.headers, "content-type").map(str::to_owned);
    let content_encoding = header_str(&parts.headers, "content-encoding").map(str::to_owned);
    let tenant = header_str(&parts.headers, "x-scope-orgid").map(str::to_owned);
    let mut rec = RequestRecord {
        received_at,
        answered_at: None,
        method: parts.method.to_string(),
        path,
        headers: all_headers(&parts.headers),
        content_type: content_type.clone(),
        content_encoding: content_encoding.clone(),
        body_len: body.len(),
        tenant: tenant.clone(),
        entries: 0,
        lines_digest: 0,
        fault: match &action {
            Action::Fault(f) => Some(f.clone()),
            _ => None,
        },
        status: None,
        response_body: String::new(),
        stored: 0,
        rejected: 0,
    };

    if shared.config.auth_enabled {
        match tenant.as_deref() {
            None | Some("") => {
                return Ok(finish(
                    &shared,
                    rec,
                    answer(StatusCode::UNAUTHORIZED, "no org id\n"),
                ));
            }
            Some(t) if t.contains('|') => {
                let a = answer(StatusCode::BAD_REQUEST, "multiple org IDs present\n");
                return Ok(finish(&shared, rec, a));
            }
            Some(_) => {}
        }
    }

    if action == Action::AckOnly {
        let ct = content_type.as_deref();
        let a = match count_entries(ct, content_encoding.as_deref(), &body) {
            Ok(n) => {
                rec.entries = n;
                rec.stored = n;
                answer(StatusCode::NO_CONTENT, "")
            }
            Err(e) => answer(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
        return Ok(finish(&shared, rec, a));
    }

    let decoded = decode_body(content_type.as_deref(), content_encoding.as_deref(), &body);
    if let Ok((_, streams)) = &decoded {
        (rec.entries, rec.lines_digest) = digest(streams);
    }

    // Faults that happen before Loki looks at the body.
    if let Action::Fault(f) = &action {
        let early = match f {
            Fault::DropConnection | Fault::Hang => {
                shared.update(|g| g.requests.push(rec));
                if *f == Fault::DropConnection {
                    ctx.drop_conn.notify_one();
                }
                ctx.cancel.cancelled().await;
                return Ok(plain(StatusCode::SERVICE_UNAVAILABLE, ""));
            }
            Fault::Delay(_) | Fault::DelayBetween(..) => {
                let d = match f {
                    Fault::DelayBetween(lo, hi) if hi > lo => {
                        let spread = (*hi - *lo).as_nanos() as u64;
                        *lo + Duration::from_nanos(digest_jitter(rec.lines_digest, spread))
                    }
                    Fault::DelayBetween(lo, _) => *lo,
                    Fault::Delay(d) => *d,
                    _ => Duration::ZERO,
                };
                tokio::select! {
                    _ = tokio::time::sleep(d) => None,
                    _ = ctx.cancel.cancelled() => {
                        return Ok(plain(StatusCode::SERVICE_UNAVAILABLE, ""));
                    }
                }
            }
            Fault::Status401 => Some(answer(StatusCode::UNAUTHORIZED, "no org id\n")),
            Fault::Status403 => Some(answer(StatusCode::FORBIDDEN, "forbidden\n")),
            Fault::Status404 => Some(answer(StatusCode::NOT_FOUND, "404 page not found\n")),
            Fault::EchoHeaders { status } => Some(answer(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                echo_headers(&parts.headers),
            )),
            Fault::Status413IfBodyOver(limit) if body.len() > *limit => Some(answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body too large: {} bytes, limit: {limit} bytes\n",
                    body.len()
                ),
            )),
            _ => None,
        };
        if let Some(a) = early {
            return Ok(finish(&shared, rec, a));
        }
    }

    let streams = match decoded {
        Ok((_, s)) => s,
        Err(e) => {
            return Ok(finish(
                &shared,
                rec,
                answer(StatusCode::BAD_REQUEST, format!("{e}\n")),
            ));
        }
    };
    if streams.is_empty() {
        let a = answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            "error at least one valid stream is required for ingestion\n",
        );
        return Ok(finish(&shared, rec, a));
    }

    // Faults that Loki gives after parsing.
    let mut reject_every = None;
    if let Action::Fault(f) = &action {
        match f {
            Fault::Status429 { retry_after } => {
                let mut a = answer(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Ingestion rate limit exceeded for user {} (limit: 4194304 bytes/sec) while attempting to ingest '{}' lines totaling '{}' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased\n",
                        tenant.as_deref().unwrap_or("fake"),
                        rec.entries,
                        body.len()
                    ),
                );
                a.retry_after = *retry_after;
                return Ok(finish(&shared, rec, a));
            }
            Fault::Status500 => {
                let a = answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "rpc error: code = Unavailable desc = injected failure\n",
                );
                return Ok(finish(&shared, rec, a));
            }
            Fault::Status400Partial { reject_every_nth } => {
                reject_every = Some((*reject_every_nth).max(1));
            }
            _ => {}
        }
    }

    if let Some(rate) = shared.config.ingestion_rate {
        let size: usize = streams
            .iter()
            .flat_map(|s| &s.entries)
            .map(|e| {
                e.line.len()
                    + e.metadata
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            })
            .sum();
        let allowed = shared.update(|g| {
            g.buckets
                .entry(tenant.clone())
                .or_insert_with(|| TokenBucket::new(rate))
                .allow(size, Instant::now())
        });
        if !allowed {
            let a = answer(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Ingestion rate limit exceeded for user {} (limit: {} bytes/sec) while attempting to ingest '{}' lines totaling '{size}' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased\n",
                    tenant.as_deref().unwrap_or("fake"),
                    rate.bytes_per_sec as u64,
                    rec.entries,
                ),
            );
            return Ok(finish(&shared, rec, a));
        }
    }

    let (a, accepted, rejected) = store(&shared, &mut rec, streams, tenant, reject_every);
    Ok(finish_with(&shared, rec, a, accepted, rejected))
}

/// Validates as Loki's distributor and then its ingester would: the answer (204, or 400 with
/// Loki's text), the entries to store and the entries refused.
fn store(
    shared: &Shared,
    rec: &mut RequestRecord,
    streams: Vec<DecodedStream>,
    tenant: Option<String>,
    reject_every: Option<usize>,
) -> (Answer, Vec<ReceivedEntry>, Vec<RejectedEntry>) {
    let now = now_nanos();
    let limits = &shared.config.limits;
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    // The distributor's refusals (one message each) and the ingester's (per stream).
    let mut distributor = Vec::new();
    let mut ingester = Vec::new();
    let mut position = 0usize;
    // Held for the whole request, so concurrent pushes to one stream see each other's
    // newest entries, as the ingester's stream lock makes them.
    let mut guard = shared.lock();
    let newest = &mut guard.newest;
    for s in streams {
        let labels_text = format_labels(&s.labels);
        let label_err = validate_labels(limits, &s.labels).err();
        if let Some(err) = &label_err {
            distributor.push(err.clone());
        }
        let labels: BTreeMap<String, String> = s.labels.into_iter().collect();
        let stream_key = (tenant.clone(), labels_text.clone());
        let mut fail = StreamFailures {
            labels_text: labels_text.clone(),
            total: s.entries.len(),
            ignored: Vec::new(),
        };
        for e in s.entries {
            position += 1;
            let checked = match &label_err {
                Some(err) => Err(err.clone()),
                None => validate_entry(limits, &labels_text, &e, now),
            };
            let verdict = match checked {
                Err(reason) => {
                    if label_err.is_none() {
                        distributor.push(reason.clone());
                    }
                    Err(reason)
                }
                Ok(()) => {
                    let behind = if reject_every.is_some_and(|n| position.is_multiple_of(n)) {
                        Err(format!(
                            "entry too far behind, entry timestamp is: {}, oldest acceptable timestamp is: {}",
                            rfc3339_seconds(e.timestamp_ns),
                            rfc3339_seconds(now)
                        ))
                    } else {
                        validate_not_behind(
                            limits,
                            newest.get(&stream_key).copied(),
                            e.timestamp_ns,
                        )
                    };
                    match behind {
                        Ok(()) => {
                            let n = newest.entry(stream_key.clone()).or_insert(e.timestamp_ns);
                            *n = (*n).max(e.timestamp_ns);
                            Ok(())
                        }
                        Err(reason) => {
                            fail.ignored.push((e.timestamp_ns, reason.clone()));
                            Err(reason)
                        }
                    }
                }
            };
            let entry = ReceivedEntry {
                tenant: tenant.clone(),
                labels: labels.clone(),
                timestamp_ns: e.timestamp_ns,
                line: e.line,
                metadata: e.metadata.into_iter().collect(),
                received_ns: now,
            };
            match verdict {
                Ok(()) => accepted.push(entry),
                Err(reason) => rejected.push(RejectedEntry { entry, reason }),
            }
        }
        ingester.push(fail);
    }
    drop(guard);
    rec.stored = accepted.len();
    rec.rejected = rejected.len();
    // An ingester error is what the distributor returns when there is one; its own
    // validation messages are returned otherwise.
    let body = failure_body(tenant.as_deref().unwrap_or("fake"), &ingester)
        .or_else(|| (!distributor.is_empty()).then(|| distributor.join("\n")));
    let a = match body {
        None => answer(StatusCode::NO_CONTENT, ""),
        Some(body) => answer(StatusCode::BAD_REQUEST, body),
    };
    (a, accepted, rejected)
}

/// Records the answer (nothing stored) and builds the response.
fn finish(shared: &Shared, rec: RequestRecord, answer: Answer) -> Resp {
    finish_with(shared, rec, answer, Vec::new(), Vec::new())
}

/// Records the request, its stored and refused entries in one step (so a waiter never sees
/// entries without their request), and builds the response.
fn finish_with(
    shared: &Shared,
    mut rec: RequestRecord,
    answer: Answer,
    accepted: Vec<ReceivedEntry>,
    rejected: Vec<RejectedEntry>,
) -> Resp {
    rec.status = Some(answer.status.as_u16());
    rec.answered_at = Some(Instant::now());
    let mut resp = if answer.status == StatusCode::NO_CONTENT {
        Response::new(Full::new(Bytes::new()))
    } else {
        let mut r = Response::new(Full::new(Bytes::from(answer.body.clone())));
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    *resp.status_mut() = answer.status;
    if let Some(secs) = answer.retry_after {
        resp.headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    rec.response_body = answer.body;
    shared.update(|g| {
        // `stored` is what was accepted; in ack-only mode those entries are counted, not kept.
        g.accepted += rec.stored as u64;
        g.entries.extend(accepted);
        g.rejected.extend(rejected);
        g.requests.push(rec);
    });
    resp
}
