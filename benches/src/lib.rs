//! Support for the benches: the workload generator and a handle on the agent process.
//!
//! The criterion micro-benches live in `benches/benches/`; the end-to-end bench is the `e2e`
//! binary (`cargo run --release -p logship-benches --bin e2e`).

pub mod agent;
pub mod workload;
