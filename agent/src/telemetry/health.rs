//! Readiness: components report problems that stop delivery; `/ready` fails while any stands.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus::IntGauge;

/// Shared readiness state. A component calls [`Health::set_problem`] when it cannot deliver
/// (Loki says 401, the Docker socket is gone) and [`Health::clear_problem`] once it can again.
pub struct Health {
    problems: Mutex<BTreeMap<String, String>>,
    ready_gauge: IntGauge,
}

impl Health {
    /// Starts ready; `ready_gauge` mirrors the state for `/metrics`.
    pub fn new(ready_gauge: IntGauge) -> Self {
        ready_gauge.set(1);
        Self {
            problems: Mutex::new(BTreeMap::new()),
            ready_gauge,
        }
    }

    /// Records why `component` cannot deliver.
    pub fn set_problem(&self, component: &str, reason: impl Into<String>) {
        let mut p = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        p.insert(component.to_owned(), reason.into());
        self.ready_gauge.set(0);
    }

    /// `component` delivers again.
    pub fn clear_problem(&self, component: &str) {
        let mut p = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        if p.remove(component).is_some() && p.is_empty() {
            self.ready_gauge.set(1);
        }
    }

    /// The standing problems, `component: reason`, or empty when ready.
    pub fn problems(&self) -> Vec<String> {
        let p = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        p.iter().map(|(c, r)| format!("{c}: {r}")).collect()
    }
}
