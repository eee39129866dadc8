//! Support for the benches: the workload generator and a handle on the agent process.
//!
//! The criterion micro-benches live in `benches/benches/`; the end-to-end bench is the `e2e`
//! binary (`cargo run --release -p logship-benches --bin e2e`).

pub mod agent;
pub mod workload;

/// The value of `--lines N` on the command line, if given and a number.
pub fn lines_arg() -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--lines")?;
    args.get(i + 1)?.parse().ok()
}
