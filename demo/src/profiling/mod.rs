//! CPU profiles in pprof format: `GET /debug/pprof/profile?seconds=N` samples the process for
//! N seconds and answers with a gzipped `profile.proto`, the same as Go's `net/http/pprof`, so
//! `go tool pprof` and Grafana Pyroscope read it.

pub mod proto;

use std::collections::HashMap;
use std::io::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use prost::Message as _;

/// Why a profile could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Another profile is being taken; the sampler is process-wide.
    #[error("a profile is already being taken")]
    Busy,
    /// The sampler failed.
    #[error("profiler error: {0}")]
    Profiler(#[from] pprof::Error),
    /// Compressing the result failed.
    #[error("compressing the profile failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The sampling frequency: a prime, so sampling does not beat with periodic work.
const FREQUENCY_HZ: i32 = 99;

/// Samples the whole process for `duration` and returns the gzipped pprof protobuf.
pub async fn cpu_profile(duration: Duration) -> Result<Vec<u8>, ProfileError> {
    static BUSY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = BUSY.try_lock().map_err(|_| ProfileError::Busy)?;
    let profiler = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY_HZ)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()?;
    tokio::time::sleep(duration).await;
    let report = profiler.report().build()?;
    drop(profiler);
    let profile = to_profile(&report);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&profile.encode_to_vec())?;
    Ok(gz.finish()?)
}

/// Interns strings into the profile's string table.
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        Self {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }

    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// Converts a report into pprof's message: one location and function per distinct symbol.
pub fn to_profile(report: &pprof::Report) -> proto::Profile {
    let mut strings = Strings::new();
    let samples_t = proto::ValueType {
        r#type: strings.id("samples"),
        unit: strings.id("count"),
    };
    let cpu_t = proto::ValueType {
        r#type: strings.id("cpu"),
        unit: strings.id("nanoseconds"),
    };
    let thread_key = strings.id("thread");
    let frequency = i64::from(report.timing.frequency.max(1));
    let period = 1_000_000_000 / frequency;
    let mut functions: HashMap<String, u64> = HashMap::new();
    let mut profile = proto::Profile {
        sample_type: vec![samples_t, cpu_t.clone()],
        period_type: Some(cpu_t),
        period,
        time_nanos: report
            .timing
            .start_time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0),
        duration_nanos: report.timing.duration.as_nanos() as i64,
        ..proto::Profile::default()
    };
    for (frames, &count) in &report.data {
        let mut location_id = Vec::new();
        for frame in &frames.frames {
            for symbol in frame {
                let name = symbol.name();
                let id = match functions.get(&name) {
                    Some(&id) => id,
                    None => {
                        let id = functions.len() as u64 + 1;
                        profile.function.push(proto::Function {
                            id,
                            name: strings.id(&name),
                            system_name: strings.id(&symbol.sys_name()),
                            filename: strings.id(&symbol.filename()),
                        });
                        profile.location.push(proto::Location {
                            id,
                            line: vec![proto::Line {
                                function_id: id,
                                line: i64::from(symbol.lineno()),
                            }],
                        });
                        functions.insert(name, id);
                        id
                    }
                };
                location_id.push(id);
            }
        }
        let count = count as i64;
        profile.sample.push(proto::Sample {
            location_id,
            value: vec![count, count * period],
            label: vec![proto::Label {
                key: thread_key,
                str: strings.id(&frames.thread_name_or_id()),
            }],
        });
    }
    profile.string_table = strings.table;
    profile
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn profile_is_gzipped_pprof_with_samples_of_busy_work() {
        let busy = std::thread::spawn(|| {
            let deadline = std::time::Instant::now() + Duration::from_millis(700);
            let mut x = 0u64;
            // Arithmetic between clock reads: samples that land in the vDSO's clock code
            // are dropped by the block list.
            while std::time::Instant::now() < deadline {
                for _ in 0..100_000 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            x
        });
        let gz = cpu_profile(Duration::from_millis(500)).await.unwrap();
        busy.join().unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        let p = proto::Profile::decode(&raw[..]).unwrap();
        assert_eq!(p.string_table[0], "");
        assert_eq!(p.sample_type.len(), 2);
        assert!(!p.sample.is_empty(), "a busy thread must have been sampled");
        for s in &p.sample {
            for id in &s.location_id {
                assert!(p.location.iter().any(|l| l.id == *id));
            }
        }
    }
}
