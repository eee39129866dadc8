//! Support for the benches: the workload generator and a handle on the agent process.
//!
//! The criterion micro-benches live in `benches/benches/`; the end-to-end benches are binaries:
//! `e2e` (one big file), `files_bench` (thousands of mostly idle files), `docker_bench`.

pub mod agent;
pub mod workload;

/// The value after `name` on the command line (`--lines 1000`), if given and parsable.
pub fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

/// The value of `--lines N` on the command line, if given and a number.
pub fn lines_arg() -> Option<usize> {
    arg("--lines")
}
