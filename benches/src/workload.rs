//! The bench workload: JSON log lines of about 250 bytes, as a service instrumented like the
//! demo writes them.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

const SERVICES: [&str; 4] = ["order-api", "order-worker", "payment", "inventory"];
const LEVELS: [&str; 4] = ["info", "info", "warn", "error"];

/// Writes `n` lines to `path` and returns the bytes written.
pub fn write_json_lines(path: &Path, n: usize) -> io::Result<u64> {
    write_json_lines_seeded(path, 0, n, 0)
}

/// Writes lines `first..first + n` to `path`, with ids drawn from `seed` (so that files
/// written with different seeds differ from their first line on); returns the bytes written.
pub fn write_json_lines_seeded(path: &Path, first: usize, n: usize, seed: u64) -> io::Result<u64> {
    write_lines_seeded(path, first, n, seed, "")
}

/// A CRI record's prefix, as the kubelet writes before each line of `/var/log/pods`.
pub const CRI_PREFIX: &str = "2026-11-30T10:00:00.000000000Z stdout F ";

/// [`write_json_lines_seeded`] with `prefix` before each line (`CRI_PREFIX` for CRI files).
pub fn write_lines_seeded(
    path: &Path,
    first: usize,
    n: usize,
    seed: u64,
    prefix: &str,
) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut written = 0u64;
    let mut line = String::with_capacity(320);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    for i in first..first + n {
        line.clear();
        line.push_str(prefix);
        json_line(i, &mut rng, &mut line);
        line.push('\n');
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()?;
    Ok(written)
}

/// The time of line 0: an hour ago, whole seconds, fixed for the run. Times must be recent:
/// Loki refuses entries older than a week, and the sink re-stamps them, which would measure
/// the repair instead of the pipeline. A million lines span about 17 minutes.
fn time_base() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1_795_000_000, |d| d.as_secs())
            .saturating_sub(3600)
    })
}

/// Appends line number `i` (without newline) to `out`.
pub fn json_line(i: usize, rng: &mut u64, out: &mut String) {
    use std::fmt::Write as _;
    let mut next = || {
        // xorshift64*: deterministic and cheap; the ids only need to look random.
        *rng ^= *rng >> 12;
        *rng ^= *rng << 25;
        *rng ^= *rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let (a, b, c) = (next(), next(), next());
    let secs = time_base() + (i / 1000) as u64;
    let nanos = (i % 1000) as u64 * 1_000_000 + (a % 1_000_000);
    let _ = write!(
        out,
        r#"{{"time":"{}","level":"{}","service":"{}","msg":"order processed","order_id":"ord_{:08}","trace_id":"{:016x}{:016x}","span_id":"{:016x}","http.status":202,"latency_ms":{}.{}}}"#,
        rfc3339(secs, nanos),
        LEVELS[i % LEVELS.len()],
        SERVICES[(i / 7) % SERVICES.len()],
        i,
        a,
        b,
        c,
        a % 900,
        b % 10,
    );
}

fn rfc3339(secs: u64, nanos: u64) -> String {
    let mut s = String::new();
    logship_parsers::timestamp::format_rfc3339_nanos((secs * 1_000_000_000 + nanos) as i64, &mut s);
    s
}
