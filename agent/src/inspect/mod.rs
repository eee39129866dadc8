//! Looking into a running agent from the command line: `logship tap` and `logship top`.
//!
//! Both are clients of the agent's telemetry endpoint, found from the same config file the
//! agent runs with (`[telemetry] address`): `tap` streams `/tap/<component>`, `top` scrapes
//! `/metrics` and shows rates. Neither changes anything in the agent.

pub mod tap;
pub mod top;

use std::net::SocketAddr;

use logship_config::LoadedConfig;

/// Why the agent cannot be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// `[telemetry] enabled = false`: there is no endpoint.
    #[error(
        "telemetry is disabled in this config ([telemetry] enabled = false); tap and top need it"
    )]
    TelemetryDisabled,
    /// The component is not in the config, or is a sink (sinks emit nothing).
    #[error("{0}")]
    Component(String),
    /// Nothing answers at the address.
    #[error("no logship answers at {address} (is it running with this config?): {reason}")]
    Unreachable {
        /// The telemetry address.
        address: SocketAddr,
        /// What the connection said.
        reason: String,
    },
    /// The agent answered with an error.
    #[error("the agent at {address} answered {status}: {body}")]
    Refused {
        /// The telemetry address.
        address: SocketAddr,
        /// The HTTP status.
        status: u16,
        /// Its text.
        body: String,
    },
    /// Writing to standard output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Where to reach the agent's telemetry: its address, with an unspecified IP (`0.0.0.0`,
/// `[::]`) replaced by loopback.
pub fn telemetry_address(loaded: &LoadedConfig) -> Result<SocketAddr, InspectError> {
    let telemetry = &loaded.config.telemetry;
    if !telemetry.enabled {
        return Err(InspectError::TelemetryDisabled);
    }
    let mut address = telemetry.address;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(address)
}

/// A plain HTTP client for the telemetry endpoint (no proxy: it is the local agent).
fn client() -> Result<reqwest::Client, InspectError> {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| InspectError::Component(format!("cannot build an HTTP client: {e}")))
}

/// Turns a failed request into [`InspectError::Unreachable`].
fn unreachable(address: SocketAddr, e: reqwest::Error) -> InspectError {
    InspectError::Unreachable {
        address,
        reason: crate::error_chain::error_chain(&e.without_url()),
    }
}
