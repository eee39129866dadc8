//! The end-of-run summary: printed for people, and written as `summary.json` in the run
//! directory for scripts and tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::feed::SharedTrace;

/// Everything the run found out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Seconds the load generator ran.
    pub duration_s: f64,
    /// Orders the API accepted.
    pub orders_created: u64,
    /// Invalid orders the API refused with a 4xx.
    pub orders_rejected: u64,
    /// Requests that failed otherwise.
    pub request_errors: u64,
    /// Orders paid.
    pub paid: u64,
    /// Orders whose payment failed.
    pub failed: u64,
    /// Orders still pending at the end.
    pub pending: u64,
    /// Lines each service wrote (from its log file).
    pub lines_written: BTreeMap<String, u64>,
    /// Lines logship shipped, by `service` label (from its console sink).
    pub lines_shipped: BTreeMap<String, u64>,
    /// Lines the Loki sink delivered, when shipping to Loki.
    pub loki_delivered: Option<u64>,
    /// Shipped lines that carried `trace_id` structured metadata.
    pub lines_with_trace_id: u64,
    /// Orders whose API and worker lines share one trace id.
    pub orders_with_one_trace: u64,
    /// A few of them.
    pub trace_examples: Vec<SharedTrace>,
    /// Whether every check passed.
    pub ok: bool,
    /// What did not.
    pub problems: Vec<String>,
}

impl Summary {
    /// Fills `ok` and `problems` from the numbers.
    pub fn check(&mut self) {
        let mut p = Vec::new();
        if self.orders_created == 0 {
            p.push("no order was created".to_owned());
        }
        if self.pending > 0 {
            p.push(format!(
                "{} orders were still pending at the end",
                self.pending
            ));
        }
        if self.paid + self.failed + self.pending != self.orders_created {
            p.push("paid + failed + pending does not add up to the orders created".to_owned());
        }
        for (service, written) in &self.lines_written {
            let shipped = self.lines_shipped.get(service).copied().unwrap_or(0);
            if shipped < *written {
                p.push(format!("{service}: {shipped} of {written} lines shipped"));
            }
        }
        let total: u64 = self.lines_written.values().sum();
        if let Some(delivered) = self.loki_delivered
            && delivered < total
        {
            p.push(format!("Loki got {delivered} of {total} lines"));
        }
        if self.orders_created > 0 && self.orders_with_one_trace == 0 {
            p.push("no order had its API and worker lines in one trace".to_owned());
        }
        self.ok = p.is_empty();
        self.problems = p;
    }

    /// The human-readable form.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\n== logship demo: summary ==");
        let _ = writeln!(s, "ran for              {:.1} s", self.duration_s);
        let _ = writeln!(
            s,
            "orders created       {}   (invalid ones refused with 4xx: {})",
            self.orders_created, self.orders_rejected
        );
        let _ = writeln!(s, "  paid               {}", self.paid);
        let _ = writeln!(s, "  failed             {}", self.failed);
        if self.pending > 0 {
            let _ = writeln!(s, "  still pending      {}", self.pending);
        }
        let _ = writeln!(s, "lines shipped by logship, per service:");
        for (service, written) in &self.lines_written {
            let shipped = self.lines_shipped.get(service).copied().unwrap_or(0);
            let _ = writeln!(s, "  {service:<18} {shipped} (of {written} written)");
        }
        if let Some(n) = self.loki_delivered {
            let _ = writeln!(s, "  delivered to Loki  {n}");
        }
        let _ = writeln!(
            s,
            "lines with trace_id metadata: {}",
            self.lines_with_trace_id
        );
        let _ = writeln!(
            s,
            "orders whose API and worker lines share one trace_id: {} of {}",
            self.orders_with_one_trace, self.orders_created
        );
        for t in &self.trace_examples {
            let _ = writeln!(
                s,
                "  order {}  trace_id {}  ({} api + {} worker lines)",
                t.order_id, t.trace_id, t.api_lines, t.worker_lines
            );
        }
        if self.ok {
            let _ = writeln!(s, "all checks passed");
        } else {
            for p in &self.problems {
                let _ = writeln!(s, "PROBLEM: {p}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Summary {
        Summary {
            orders_created: 10,
            paid: 9,
            failed: 1,
            lines_written: [("order-api".to_owned(), 40)].into(),
            lines_shipped: [("order-api".to_owned(), 40)].into(),
            orders_with_one_trace: 10,
            ..Summary::default()
        }
    }

    #[test]
    fn a_complete_run_passes() {
        let mut s = good();
        s.check();
        assert!(s.ok, "{:?}", s.problems);
        assert!(s.render().contains("all checks passed"));
    }

    #[test]
    fn missing_lines_and_pending_orders_are_problems() {
        let mut s = good();
        s.lines_shipped.insert("order-api".to_owned(), 39);
        s.paid = 8;
        s.pending = 1;
        s.check();
        assert!(!s.ok);
        assert_eq!(s.problems.len(), 2, "{:?}", s.problems);
        let mut s = good();
        s.loki_delivered = Some(3);
        s.check();
        assert!(s.problems[0].contains("Loki got 3 of 40"));
    }
}
