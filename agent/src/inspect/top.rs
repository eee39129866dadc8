//! `logship top`: a live table of each component's throughput, from the running agent's
//! `/metrics`, like Vector's `vector top`.
//!
//! [`Scrape`] is one reading of `/metrics`, [`rows`] compares two readings into one [`Row`] per
//! component (in pipeline order), and [`render`] draws them. Only the drawing loop touches the
//! network or the terminal, so the model is tested without either.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use logship_config::{ComponentKind, LoadedConfig};

use super::{InspectError, client, telemetry_address, unreachable};

/// Counters that count a component's errors (their `component` label names it).
const ERROR_COUNTERS: &[&str] = &[
    "logship_component_errors_total",
    "logship_transform_parse_errors_total",
    "logship_transform_timestamp_errors_total",
    "logship_source_decode_errors_total",
    "logship_file_errors_total",
    "logship_docker_api_errors_total",
    "logship_kubernetes_api_errors_total",
    "logship_loki_retries_total",
];

/// One reading of `/metrics`: every `logship_*` sample summed per (name, component).
#[derive(Debug, Clone)]
pub struct Scrape {
    /// When it was read.
    pub at: Instant,
    values: HashMap<(String, String), f64>,
}

impl Scrape {
    /// Reads the Prometheus text format; lines it does not understand are skipped.
    pub fn parse(text: &str, at: Instant) -> Self {
        let mut values: HashMap<(String, String), f64> = HashMap::new();
        for line in text.lines() {
            if !line.starts_with("logship_") {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let component = label(labels, "component").unwrap_or_default();
            *values.entry((name.to_owned(), component)).or_default() += value;
        }
        Self { at, values }
    }

    /// The value of `name` for `component` (0 when absent).
    pub fn get(&self, name: &str, component: &str) -> f64 {
        self.values
            .get(&(name.to_owned(), component.to_owned()))
            .copied()
            .unwrap_or(0.0)
    }
}

/// The value of label `key` in `a="1",b="2"` text (our label values never hold `"`).
fn label(labels: &str, key: &str) -> Option<String> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let end = labels[start..].find('"')? + start;
    Some(labels[start..end].to_owned())
}

/// One component's line in the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The component id.
    pub id: String,
    /// Source, transform or sink.
    pub kind: ComponentKind,
    /// Events taken in per second (sources: read).
    pub events_in: f64,
    /// Line bytes taken in per second.
    pub bytes_in: f64,
    /// Events passed on per second (sinks: delivered).
    pub events_out: f64,
    /// Events given up on per second (filtered, refused).
    pub discarded: f64,
    /// Errors so far (all kinds the component counts).
    pub errors: f64,
    /// Bytes read but not yet acknowledged (sources).
    pub lag_bytes: f64,
}

/// The table between two readings, one row per component of `loaded`, in pipeline order.
pub fn rows(loaded: &LoadedConfig, before: &Scrape, now: &Scrape) -> Vec<Row> {
    let secs = now
        .at
        .saturating_duration_since(before.at)
        .as_secs_f64()
        .max(1e-3);
    let rate = |name: &str, id: &str| ((now.get(name, id) - before.get(name, id)) / secs).max(0.0);
    loaded
        .graph
        .topological_order()
        .into_iter()
        .map(|c| {
            let id = c.id.as_str();
            Row {
                id: c.id.clone(),
                kind: c.kind,
                events_in: rate("logship_component_received_events_total", id),
                bytes_in: rate("logship_component_received_bytes_total", id),
                events_out: rate("logship_component_sent_events_total", id),
                discarded: rate("logship_component_discarded_events_total", id),
                errors: ERROR_COUNTERS.iter().map(|n| now.get(n, id)).sum(),
                lag_bytes: now.get("logship_checkpoint_lag_bytes", id),
            }
        })
        .collect()
}

/// `1234567` as `1.2M`.
fn human(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.1}G", n / 1e9),
        n if n >= 1e6 => format!("{:.1}M", n / 1e6),
        n if n >= 1e4 => format!("{:.1}k", n / 1e3),
        n => format!("{n:.0}"),
    }
}

/// The table as text.
pub fn render(title: &str, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "{:<24} {:<9} {:>10} {:>10} {:>10} {:>10} {:>8} {:>10}",
        "COMPONENT", "KIND", "IN/S", "IN B/S", "OUT/S", "DROPPED/S", "ERRORS", "LAG B"
    );
    for r in rows {
        let kind = match r.kind {
            ComponentKind::Source => "source",
            ComponentKind::Transform => "transform",
            ComponentKind::Sink => "sink",
        };
        let _ = writeln!(
            out,
            "{:<24} {:<9} {:>10} {:>10} {:>10} {:>10} {:>8} {:>10}",
            r.id,
            kind,
            human(r.events_in),
            human(r.bytes_in),
            human(r.events_out),
            human(r.discarded),
            human(r.errors),
            human(r.lag_bytes)
        );
    }
    out
}

/// Draws the table every `interval` until `frames` have been drawn (or forever). On a
/// terminal each frame replaces the last; otherwise frames follow each other.
pub async fn top(
    loaded: &LoadedConfig,
    interval: Duration,
    frames: Option<u64>,
    out: &mut impl Write,
) -> Result<(), InspectError> {
    let address = telemetry_address(loaded)?;
    let client = client()?;
    let url = format!("http://{address}/metrics");
    let scrape = || async {
        let response = client
            .get(&url)
            .send()
            .await
            .map_err(|e| unreachable(address, e))?;
        let text = response.text().await.map_err(|e| unreachable(address, e))?;
        Ok::<_, InspectError>(Scrape::parse(&text, Instant::now()))
    };
    let terminal = std::io::stdout().is_terminal();
    let mut before = scrape().await?;
    let mut drawn = 0;
    while frames.is_none_or(|n| drawn < n) {
        tokio::time::sleep(interval).await;
        let now = scrape().await?;
        let title = format!(
            "logship top: {address}, every {:.1} s",
            interval.as_secs_f64()
        );
        let text = render(&title, &rows(loaded, &before, &now));
        if terminal {
            // Clear the screen and go home, then draw.
            write!(out, "\x1b[2J\x1b[H{text}")?;
        } else {
            writeln!(out, "{text}")?;
        }
        out.flush()?;
        before = now;
        drawn += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[sources.app]
type = "stdin"
[transforms.parse]
type = "json"
inputs = ["app"]
[sinks.out]
type = "blackhole"
inputs = ["parse"]
"#;

    fn metrics(read: u64, bytes: u64, sent: u64, lag: u64) -> String {
        format!(
            "# HELP logship_component_received_events_total x\n\
             logship_component_received_events_total{{component=\"app\"}} {read}\n\
             logship_component_received_bytes_total{{component=\"app\"}} {bytes}\n\
             logship_component_sent_events_total{{component=\"out\"}} {sent}\n\
             logship_component_discarded_events_total{{component=\"parse\",reason=\"filtered\"}} 4\n\
             logship_transform_parse_errors_total{{component=\"parse\"}} 7\n\
             logship_checkpoint_lag_bytes{{component=\"app\"}} {lag}\n\
             process_cpu_seconds_total 3\n"
        )
    }

    #[test]
    fn rates_come_from_two_readings_in_pipeline_order() {
        let loaded = logship_config::load_str(CONFIG, "t.toml", &|_| None).unwrap();
        let t0 = Instant::now();
        let a = Scrape::parse(&metrics(100, 10_000, 90, 0), t0);
        let b = Scrape::parse(
            &metrics(2100, 210_000, 1090, 512),
            t0 + Duration::from_secs(2),
        );
        let r = rows(&loaded, &a, &b);
        let ids: Vec<&str> = r.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["app", "parse", "out"]);
        assert_eq!(r[0].events_in, 1000.0);
        assert_eq!(r[0].bytes_in, 100_000.0);
        assert_eq!(r[0].lag_bytes, 512.0);
        assert_eq!(r[1].errors, 7.0);
        assert_eq!(r[1].discarded, 0.0, "a counter that did not move");
        assert_eq!(r[2].events_out, 500.0);
        let text = render("title", &r);
        assert!(text.starts_with("title\nCOMPONENT"), "{text}");
        let app = text.lines().nth(2).unwrap();
        assert!(
            app.starts_with("app") && app.contains("source") && app.contains("100.0k"),
            "{app}"
        );
    }
}
