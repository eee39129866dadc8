//! The fuzz targets on the stable toolchain, as CI runs them: every file of
//! `fuzz/corpus/<target>/` (seeds and the crashers fuzzing once found), then random mutations
//! of them for `LOGSHIP_FUZZ_SECS` seconds per target (2 by default). An input that breaks an
//! invariant is written to `target/fuzz-smoke/<target>-<hash>` and the test fails naming it;
//! copy it into the corpus once fixed, so it stays a regression test.
//!
//! This finds shallow bugs only; `scripts/fuzz.sh` runs the same targets under libFuzzer.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use logship_fuzz::TARGETS;

/// Bytes that matter to some parser, inserted by the mutator.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"\\u00",
    b"\\ud800",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\n",
    b"\r\n",
    b" ",
    b"=",
    b"'",
    b"0",
    b"9",
    b"-",
    b".",
    b"e",
    b"T",
    b"Z",
    b"+01:00",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"null",
    b"true",
    b"${",
    b"}'",
    b"[sources.",
    b"type = ",
    b"F ",
    b"P ",
    b"stdout",
    b"for stream: ",
    b"'{a=\"b\"}'",
    b"total ignored: ",
];

/// xorshift64*: deterministic per target, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(6) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            2 if !data.is_empty() => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            3 if !data.is_empty() => {
                let start = rng.below(data.len());
                let end = (start + rng.below(32)).min(data.len());
                let copy = data[start..end].to_vec();
                data.splice(at..at, copy);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => data.insert(at, rng.next() as u8),
        }
    }
    data
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

/// Runs `f` on `data`; on a panic saves the input and fails naming it.
fn run(name: &str, f: fn(&[u8]), data: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| f(data))).is_err() {
        let mut h = DefaultHasher::new();
        data.hash(&mut h);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-smoke");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}-{:016x}", h.finish()));
        let _ = std::fs::write(&path, data);
        // The quiet hook was for the caught panics; this one must be seen.
        let _ = std::panic::take_hook();
        panic!(
            "fuzz target {name} failed on {} bytes, saved to {}: {:?}",
            data.len(),
            path.display(),
            String::from_utf8_lossy(&data[..data.len().min(200)])
        );
    }
}

#[test]
fn every_target_survives_its_corpus_and_random_mutations() {
    let secs: f64 = std::env::var("LOGSHIP_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    // Panics are expected and caught; keep their messages out of the way.
    std::panic::set_hook(Box::new(|_| {}));
    for &(name, f) in TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ has no seeds");
        for seed in &seeds {
            run(name, f, seed);
        }
        let mut h = DefaultHasher::new();
        name.hash(&mut h);
        let mut rng = Rng(h.finish() | 1);
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut runs = 0u64;
        while Instant::now() < deadline {
            let data = mutate(&mut rng, &seeds);
            run(name, f, &data);
            runs += 1;
        }
        println!("{name}: {} corpus files, {runs} mutations", seeds.len());
    }
    let _ = std::panic::take_hook();
}
