//! `process_*` metrics read from `/proc/self` at scrape time: memory, threads, open files and
//! CPU, named as every Prometheus client library names them so stock dashboards work.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads the process's own resource use on each scrape. Off Linux it reports nothing.
#[derive(Debug)]
pub struct ProcessCollector {
    page_size: f64,
    ticks_per_second: f64,
}

/// One reading of `/proc/self`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    /// Resident set size in bytes.
    pub resident_bytes: f64,
    /// Virtual memory size in bytes.
    pub virtual_bytes: f64,
    /// OS threads.
    pub threads: i64,
    /// Open file descriptors.
    pub open_fds: i64,
    /// The soft limit on open file descriptors.
    pub max_fds: i64,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: f64,
}

impl ProcessCollector {
    /// A collector for the current process.
    pub fn new() -> Self {
        // SAFETY: sysconf only reads configuration values.
        let (page, ticks) = unsafe {
            (
                libc::sysconf(libc::_SC_PAGESIZE),
                libc::sysconf(libc::_SC_CLK_TCK),
            )
        };
        Self {
            page_size: if page > 0 { page as f64 } else { 4096.0 },
            ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
        }
    }

    /// Reads the current numbers, or `None` where `/proc` is unavailable.
    pub fn read(&self) -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let mut s = parse_stat(&stat, self.page_size, self.ticks_per_second)?;
        s.open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as i64)
            .unwrap_or(0);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes only into the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            s.max_fds = i64::try_from(lim.rlim_cur).unwrap_or(i64::MAX);
        }
        Some(s)
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

/// Parses `/proc/self/stat`. The command name (field 2) may contain spaces and parentheses, so
/// the fields are counted from the last `)`.
pub fn parse_stat(stat: &str, page_size: f64, ticks_per_second: f64) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so field N is f[N - 3].
    let field = |n: usize| -> Option<f64> { f.get(n - 3)?.parse().ok() };
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) / ticks_per_second,
        threads: field(20)? as i64,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
        ..ProcessStats::default()
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = self.read() else { return Ok(()) };
        let gauges: [(&str, &str, ConstGauge<f64>); 2] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                ConstGauge::new(s.resident_bytes),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                ConstGauge::new(s.virtual_bytes),
            ),
        ];
        for (name, help, g) in gauges {
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let counts: [(&str, &str, ConstGauge<i64>); 3] = [
            (
                "process_threads",
                "OS threads in the process.",
                ConstGauge::new(s.threads),
            ),
            (
                "process_open_fds",
                "Open file descriptors.",
                ConstGauge::new(s.open_fds),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                ConstGauge::new(s.max_fds),
            ),
        ];
        for (name, help, g) in counts {
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_has_spaces_and_parens() {
        // Fields 3.. of a real line, with utime=250, stime=50, threads=7, vsize, rss=1000 pages.
        let line = "4242 (order (api) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 7 0 \
                    12345 104857600 1000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line, 4096.0, 100.0).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.threads, 7);
        assert_eq!(s.virtual_bytes, 104_857_600.0);
        assert_eq!(s.resident_bytes, 1000.0 * 4096.0);
    }

    #[test]
    fn garbage_gives_none() {
        assert!(parse_stat("no parens here", 4096.0, 100.0).is_none());
        assert!(parse_stat("1 (x) S 1", 4096.0, 100.0).is_none());
    }

    #[test]
    fn reads_this_process() {
        let s = ProcessCollector::new().read().unwrap();
        assert!(s.resident_bytes > 0.0);
        assert!(s.threads >= 1);
        assert!(s.open_fds >= 3);
        assert!(s.max_fds >= s.open_fds);
    }
}
