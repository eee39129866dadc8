//! The kubelet's side of `/var/log/pods`: container log files in CRI format, written the way
//! the kubelet writes them (`<time> <stream> <P|F> <text>`, partial pieces tagged `P`).

use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::logwriter::{append_raw, json_line};
use crate::timefmt::{now_nanos, rfc3339_nanos};

/// `<pod_dir>/<container>/<restart>.log`, its directory created.
pub fn container_log(pod_dir: &Path, container: &str, restart: u32) -> io::Result<PathBuf> {
    let dir = pod_dir.join(container);
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(format!("{restart}.log")))
}

/// One CRI record (with its newline).
pub fn cri_record(stream: &str, partial: bool, text: &str) -> String {
    let tag = if partial { "P" } else { "F" };
    format!("{} {stream} {tag} {text}\n", rfc3339_nanos(now_nanos()))
}

/// Appends numbered JSON lines `seqs` (service `svc-a`) to stdout, one write; returns the
/// lines as the service wrote them.
pub fn append_cri_lines(path: &Path, seqs: RangeInclusive<u64>) -> io::Result<Vec<String>> {
    let lines: Vec<String> = seqs
        .map(|s| json_line(s, "svc-a", "info", now_nanos(), "request handled"))
        .collect();
    let mut buf = String::new();
    for l in &lines {
        buf.push_str(&cri_record("stdout", false, l));
    }
    append_raw(path, buf.as_bytes())?;
    Ok(lines)
}

/// Appends one line split into `pieces` partial records (the last one `F`), as the kubelet
/// does for lines over 16 KiB; returns the whole line.
pub fn append_cri_split(path: &Path, seq: u64, pieces: usize) -> io::Result<String> {
    let line = json_line(seq, "svc-a", "info", now_nanos(), &"x".repeat(300));
    let step = line.len().div_ceil(pieces);
    let mut buf = String::new();
    let chars: Vec<char> = line.chars().collect();
    let parts: Vec<String> = chars.chunks(step).map(|p| p.iter().collect()).collect();
    for (i, text) in parts.iter().enumerate() {
        buf.push_str(&cri_record("stdout", i + 1 < parts.len(), text));
    }
    append_raw(path, buf.as_bytes())?;
    Ok(line)
}
