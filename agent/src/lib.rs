//! The logship agent. (Overview written once the pipeline is assembled.)

pub mod acks;
pub mod checkpoints;
pub mod cli;
pub mod context;
pub mod event;
pub mod logging;
pub mod sinks;
pub mod sources;
pub mod telemetry;
pub mod topology;
pub mod transforms;
