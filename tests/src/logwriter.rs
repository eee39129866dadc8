//! A log-producing service stand-in: writes numbered JSON lines to a file at a given rate,
//! rotating it by rename or by copytruncate, in a background thread.
//!
//! Each line carries a unique `seq` (1, 2, 3, ...) so a test can count what was lost or
//! duplicated ([`crate::seqs`]). Lines are written whole (one `write` per batch of complete
//! lines), and a copytruncate happens between two writes of this writer, so the writer itself
//! never loses a line: whatever goes missing was lost by the agent.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::timefmt::{now_nanos, rfc3339_nanos};

/// How the file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Never.
    None,
    /// logrotate's default: `app.log.1` → `app.log.2` ..., `app.log` → `app.log.1`, then a
    /// new `app.log`. Rotated files beyond `keep` are deleted.
    Rename {
        /// Lines per file before rotating.
        every_lines: u64,
        /// Rotated files kept (`app.log.1` ..= `app.log.<keep>`).
        keep: usize,
    },
    /// logrotate's `copytruncate`: copy `app.log` to `app.log.1` (after shifting), then
    /// truncate `app.log` in place and keep writing to it.
    CopyTruncate {
        /// Lines per file before rotating.
        every_lines: u64,
        /// Rotated copies kept.
        keep: usize,
    },
}

/// What a [`LogWriter`] writes.
#[derive(Debug, Clone)]
pub struct LogWriterConfig {
    /// The live file (created if missing, appended to).
    pub path: PathBuf,
    /// Lines to write in total.
    pub total_lines: u64,
    /// Target rate; 0 writes as fast as possible.
    pub lines_per_sec: u64,
    /// Rotation policy.
    pub rotation: Rotation,
    /// `service` field.
    pub service: String,
    /// `level` field.
    pub level: String,
    /// Extra bytes appended to `msg`, to make lines longer.
    pub msg_padding: usize,
    /// Seq of the first line (default 1), so a second writer can continue the numbering.
    pub first_seq: u64,
}

impl LogWriterConfig {
    /// `total_lines` lines at `lines_per_sec` into `path`, no rotation, service `svc-a`,
    /// level `info`.
    pub fn new(path: impl Into<PathBuf>, total_lines: u64, lines_per_sec: u64) -> Self {
        Self {
            path: path.into(),
            total_lines,
            lines_per_sec,
            rotation: Rotation::None,
            service: "svc-a".to_owned(),
            level: "info".to_owned(),
            msg_padding: 0,
            first_seq: 1,
        }
    }

    /// The same with a rotation policy.
    pub fn rotation(mut self, rotation: Rotation) -> Self {
        self.rotation = rotation;
        self
    }

    /// Seq of the last line this config writes.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.total_lines.saturating_sub(1)
    }
}

/// Deterministic 32-hex trace id of a seq (what the line's `trace_id` holds).
pub fn trace_id_for(seq: u64) -> String {
    format!("{:016x}{:016x}", mix(seq), mix(seq ^ 0x5151))
}

/// Deterministic 16-hex span id of a seq.
pub fn span_id_for(seq: u64) -> String {
    format!("{:016x}", mix(seq ^ 0xa5a5_a5a5))
}

fn mix(x: u64) -> u64 {
    // splitmix64: well spread, never all zeros for the seqs used here.
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One JSON line (no newline): `{"time":...,"level":...,"service":...,"msg":...,"seq":N,
/// "trace_id":...,"span_id":...}`.
pub fn json_line(seq: u64, service: &str, level: &str, time_ns: i64, msg: &str) -> String {
    format!(
        r#"{{"time":"{}","level":"{level}","service":"{service}","msg":"{msg}","seq":{seq},"trace_id":"{}","span_id":"{}"}}"#,
        rfc3339_nanos(time_ns),
        trace_id_for(seq),
        span_id_for(seq)
    )
}

/// Appends lines `seqs` (service `svc-a`, level `info`, time now) to `path` in one write and
/// returns them without their newlines.
pub fn append_lines(path: &Path, seqs: RangeInclusive<u64>) -> io::Result<Vec<String>> {
    let lines: Vec<String> = seqs
        .map(|s| json_line(s, "svc-a", "info", now_nanos(), "request handled"))
        .collect();
    let mut buf = String::new();
    for l in &lines {
        buf.push_str(l);
        buf.push('\n');
    }
    append_raw(path, buf.as_bytes())?;
    Ok(lines)
}

/// Appends raw bytes to `path` (created if missing) in one write.
pub fn append_raw(path: &Path, bytes: &[u8]) -> io::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(bytes)
}

/// A writer thread. Dropping it stops the thread.
pub struct LogWriter {
    stop: Arc<AtomicBool>,
    highest: Arc<AtomicU64>,
    rotations: Arc<AtomicU64>,
    handle: Option<JoinHandle<io::Result<()>>>,
}

impl LogWriter {
    /// Starts writing in a background thread.
    pub fn start(config: LogWriterConfig) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let highest = Arc::new(AtomicU64::new(config.first_seq.saturating_sub(1)));
        let rotations = Arc::new(AtomicU64::new(0));
        let (s, h, r) = (stop.clone(), highest.clone(), rotations.clone());
        let handle = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || run(&config, &s, &h, &r))
            .ok();
        Self {
            stop,
            highest,
            rotations,
            handle,
        }
    }

    /// Highest seq written (and flushed to the file) so far.
    pub fn highest_seq(&self) -> u64 {
        self.highest.load(Ordering::Acquire)
    }

    /// Rotations done so far.
    pub fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Acquire)
    }

    /// True once the thread has finished (all lines written, stopped, or failed).
    pub fn is_done(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for every line to be written; returns the highest seq.
    pub fn wait(mut self) -> io::Result<u64> {
        self.join()
    }

    /// Stops early; returns the highest seq written.
    pub fn stop(mut self) -> io::Result<u64> {
        self.stop.store(true, Ordering::Release);
        self.join()
    }

    fn join(&mut self) -> io::Result<u64> {
        match self.handle.take() {
            None => Err(io::Error::other("log writer thread did not start")),
            Some(h) => match h.join() {
                Ok(r) => r.map(|()| self.highest_seq()),
                Err(_) => Err(io::Error::other("log writer thread panicked")),
            },
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn rotated(path: &Path, i: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// `path.1` → `path.2` ... so that `path.1` is free; the oldest beyond `keep` is deleted.
fn shift(path: &Path, keep: usize) -> io::Result<()> {
    let oldest = rotated(path, keep.max(1));
    if oldest.exists() {
        fs::remove_file(&oldest)?;
    }
    for i in (1..keep.max(1)).rev() {
        let from = rotated(path, i);
        if from.exists() {
            fs::rename(&from, rotated(path, i + 1))?;
        }
    }
    Ok(())
}

fn rotate(path: &Path, file: &mut File, rotation: Rotation) -> io::Result<()> {
    match rotation {
        Rotation::None => Ok(()),
        Rotation::Rename { keep, .. } => {
            shift(path, keep)?;
            fs::rename(path, rotated(path, 1))?;
            if keep == 0 {
                fs::remove_file(rotated(path, 1))?;
            }
            *file = open_append(path)?;
            Ok(())
        }
        Rotation::CopyTruncate { keep, .. } => {
            shift(path, keep)?;
            fs::copy(path, rotated(path, 1))?;
            // O_APPEND: the next write lands at the new end, offset 0.
            file.set_len(0)?;
            if keep == 0 {
                fs::remove_file(rotated(path, 1))?;
            }
            Ok(())
        }
    }
}

fn run(
    cfg: &LogWriterConfig,
    stop: &AtomicBool,
    highest: &AtomicU64,
    rotations: &AtomicU64,
) -> io::Result<()> {
    let every = match cfg.rotation {
        Rotation::None => u64::MAX,
        Rotation::Rename { every_lines, .. } | Rotation::CopyTruncate { every_lines, .. } => {
            every_lines.max(1)
        }
    };
    let msg = format!("request handled{}", "x".repeat(cfg.msg_padding));
    let mut file = open_append(&cfg.path)?;
    let started = Instant::now();
    let mut written = 0u64;
    let mut in_file = 0u64;
    let mut buf = String::with_capacity(1 << 20);
    while written < cfg.total_lines && !stop.load(Ordering::Acquire) {
        let due = if cfg.lines_per_sec == 0 {
            cfg.total_lines
        } else {
            let secs = started.elapsed().as_secs_f64();
            ((secs * cfg.lines_per_sec as f64) as u64).min(cfg.total_lines)
        };
        if due <= written {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        // Bounded batches keep the writer responsive to `stop` and rotation timely.
        let batch_end = due.min(written + 10_000);
        while written < batch_end {
            let seq = cfg.first_seq + written;
            buf.push_str(&json_line(seq, &cfg.service, &cfg.level, now_nanos(), &msg));
            buf.push('\n');
            written += 1;
            in_file += 1;
            if in_file >= every {
                file.write_all(buf.as_bytes())?;
                buf.clear();
                highest.store(seq, Ordering::Release);
                rotate(&cfg.path, &mut file, cfg.rotation)?;
                rotations.fetch_add(1, Ordering::AcqRel);
                in_file = 0;
            }
        }
        if !buf.is_empty() {
            file.write_all(buf.as_bytes())?;
            buf.clear();
        }
        highest.store(cfg.first_seq + written - 1, Ordering::Release);
    }
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seqs::count_seq_lines;

    fn read_all(dir: &Path) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let data = fs::read(e.unwrap().path()).unwrap();
            lines.extend(
                data.split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
        }
        lines
    }

    #[test]
    fn line_shape() {
        let l = json_line(7, "svc-a", "info", 1_718_000_000_000_000_001, "m");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["time"], "2024-06-10T06:13:20.000000001Z");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["service"], "svc-a");
        assert_eq!(v["trace_id"].as_str().unwrap().len(), 32);
        assert_eq!(v["span_id"].as_str().unwrap().len(), 16);
        assert_eq!(v["trace_id"], trace_id_for(7));
    }

    #[test]
    fn rename_rotation_keeps_every_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let w = LogWriter::start(
            LogWriterConfig::new(&path, 1000, 0).rotation(Rotation::Rename {
                every_lines: 300,
                keep: 5,
            }),
        );
        assert_eq!(w.wait().unwrap(), 1000);
        let names: Vec<String> = {
            let mut n: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            n.sort();
            n
        };
        assert_eq!(names, ["app.log", "app.log.1", "app.log.2", "app.log.3"]);
        let lines = read_all(dir.path());
        assert!(count_seq_lines(lines.iter().map(Vec::as_slice), 1000).is_exactly_once());
        // The newest rotated file holds lines 601..=900.
        let one = fs::read_to_string(rotated(&path, 1)).unwrap();
        assert!(one.starts_with("{\"time\""));
        assert!(one.contains("\"seq\":601,") && one.contains("\"seq\":900,"));
    }

    #[test]
    fn copytruncate_keeps_every_line_once_and_deletes_beyond_keep() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let w = LogWriter::start(LogWriterConfig::new(&path, 1000, 0).rotation(
            Rotation::CopyTruncate {
                every_lines: 200,
                keep: 10,
            },
        ));
        assert_eq!(w.wait().unwrap(), 1000);
        // 5 rotations; the last left the live file empty.
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
        let lines = read_all(dir.path());
        assert!(count_seq_lines(lines.iter().map(Vec::as_slice), 1000).is_exactly_once());

        let dir2 = tempfile::tempdir().unwrap();
        let path2 = dir2.path().join("app.log");
        LogWriter::start(
            LogWriterConfig::new(&path2, 1000, 0).rotation(Rotation::CopyTruncate {
                every_lines: 100,
                keep: 2,
            }),
        )
        .wait()
        .unwrap();
        assert!(rotated(&path2, 2).exists() && !rotated(&path2, 3).exists());
    }

    #[test]
    fn rate_is_respected_and_stop_works() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let t = Instant::now();
        let w = LogWriter::start(LogWriterConfig::new(&path, 1_000_000, 2000));
        std::thread::sleep(Duration::from_millis(500));
        let mid = w.highest_seq();
        let last = w.stop().unwrap();
        let elapsed = t.elapsed().as_secs_f64();
        assert!(
            mid > 0 && (last as f64) <= elapsed * 2000.0 + 50.0,
            "mid {mid} last {last}"
        );
        assert!(last >= 500, "wrote only {last} lines in {elapsed:.2}s");
        let lines = read_all(dir.path());
        assert!(count_seq_lines(lines.iter().map(Vec::as_slice), last).is_exactly_once());
    }

    #[test]
    fn append_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let lines = append_lines(&path, 5..=7).unwrap();
        assert_eq!(lines.len(), 3);
        append_raw(&path, b"raw\n").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("{}\n{}\n{}\nraw\n", lines[0], lines[1], lines[2])
        );
        assert_eq!(LogWriterConfig::new(&path, 10, 0).last_seq(), 10);
    }
}
