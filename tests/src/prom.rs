//! Reading the agent's `/metrics` (Prometheus text format) in assertions.

use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with `_bucket`/`_sum`/`_count` suffixes as written).
    pub name: String,
    /// Label pairs.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Every sample in `text`; comments and lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        loop {
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    end = Some(*i + 1);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut val = String::new();
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => val.push('\n'),
                        Some(o) => val.push(o),
                        None => return None,
                    },
                    c => val.push(c),
                }
            }
            labels.insert(key.trim().to_owned(), val);
        }
        body.get(end?..)?
    } else {
        rest
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn matches(s: &Sample, name: &str, want: &[(&str, &str)]) -> bool {
    s.name == name
        && want
            .iter()
            .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
}

/// Sum of the samples named `name` whose labels include every pair in `labels` (other
/// labels are summed over); 0 when none match.
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    parse(text)
        .iter()
        .filter(|s| matches(s, name, labels))
        .map(|s| s.value)
        .sum()
}

/// Like [`sum`] but `None` when no series matches, to tell "0" from "missing".
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let all = parse(text);
    let found: Vec<f64> = all
        .iter()
        .filter(|s| matches(s, name, labels))
        .map(|s| s.value)
        .collect();
    if found.is_empty() {
        None
    } else {
        Some(found.iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP logship_x help
# TYPE logship_x counter
logship_x{component="loki",reason="loki_rejected"} 3
logship_x{component="loki",reason="filtered"} 4
logship_x{component="app",reason="a\"b,c}"} 1
logship_ready 1
logship_h_bucket{component="loki",le="+Inf"} 7
"#;

    #[test]
    fn parses_and_sums() {
        assert_eq!(sum(TEXT, "logship_x", &[("component", "loki")]), 7.0);
        assert_eq!(
            sum(
                TEXT,
                "logship_x",
                &[("component", "loki"), ("reason", "filtered")]
            ),
            4.0
        );
        assert_eq!(value(TEXT, "logship_ready", &[]), Some(1.0));
        assert_eq!(value(TEXT, "logship_nope", &[]), None);
        assert_eq!(sum(TEXT, "logship_x", &[("reason", "a\"b,c}")]), 1.0);
        assert_eq!(sum(TEXT, "logship_h_bucket", &[("le", "+Inf")]), 7.0);
        assert_eq!(parse(TEXT).len(), 5);
    }
}
