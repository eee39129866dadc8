//! Test support for logship's end-to-end tests.
//!
//! - [`loki`]: a Loki receiver that decodes and refuses exactly what Loki does, records what
//!   it stored, and injects faults.
//! - [`harness`]: builds and runs the real `logship` binary as a process.
//! - [`logwriter`]: writes numbered JSON log lines at a rate, with rotation.
//! - [`seqs`]: counts lost and duplicated lines by their `seq`.
//! - [`pods`]: container logs in CRI format, as the kubelet writes them.
//! - [`pipeline`]: the file → json → Loki test config as a value.
//! - [`prom`]: reads values out of Prometheus text.
//! - [`http`]: a tiny blocking HTTP client.
//! - [`kube_api`]: a Kubernetes API server (HTTPS, bearer token, pods: list, watch, 410, 403).
//! - [`otlp`]: an OTLP/HTTP trace receiver that decodes the protobuf export requests.
//! - [`timefmt`]: RFC 3339 and Go time formatting without a date crate.

pub mod harness;
pub mod http;
pub mod kube_api;
mod listen;
pub mod logwriter;
pub mod loki;
pub mod otlp;
pub mod pipeline;
pub mod pods;
pub mod prom;
pub mod seqs;
pub mod timefmt;
