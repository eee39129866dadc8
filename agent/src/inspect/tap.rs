//! `logship tap COMPONENT`: prints the events leaving a source or transform of the running
//! agent, one JSON object per line (`timestamp`, `labels`, `metadata`, `line`: what the console
//! sink's `json` format prints), as they happen.
//!
//! The agent copies events only while someone taps, into a bounded buffer: a tap that reads
//! too slowly loses tap events (a `{"tap_dropped":N}` line says how many), never pipeline
//! events, and the component never waits for it.

use std::io::Write;

use logship_config::ComponentKind;
use logship_config::LoadedConfig;

use super::{InspectError, client, telemetry_address, unreachable};

/// Streams what `component` emits to `out` until `limit` events (or forever), the agent
/// stops, or `out` is closed (a closed pipe, as with `| head`, ends it quietly).
pub async fn tap(
    loaded: &LoadedConfig,
    component: &str,
    limit: Option<u64>,
    out: &mut impl Write,
) -> Result<(), InspectError> {
    match loaded.graph.kind_of(component) {
        Some(ComponentKind::Source | ComponentKind::Transform) => {}
        Some(ComponentKind::Sink) => {
            return Err(InspectError::Component(format!(
                "`{component}` is a sink, which emits nothing; tap one of its inputs: {}",
                loaded.graph.inputs_of(component).join(", ")
            )));
        }
        None => {
            return Err(InspectError::Component(format!(
                "there is no component `{component}` in this config"
            )));
        }
    }
    let address = telemetry_address(loaded)?;
    let mut url = format!("http://{address}/tap/{component}");
    if let Some(n) = limit {
        url.push_str(&format!("?limit={n}"));
    }
    let mut response = client()?
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable(address, e))?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        return Err(InspectError::Refused {
            address,
            status,
            body: body.trim().to_owned(),
        });
    }
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => {
                let written = out.write_all(&bytes).and_then(|()| out.flush());
                if let Err(e) = written {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(());
                    }
                    return Err(e.into());
                }
            }
            // The limit was reached or the agent stopped.
            Ok(None) => return Ok(()),
            Err(e) => return Err(unreachable(address, e)),
        }
    }
}
