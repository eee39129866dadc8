//! Helpers shared by the tests.

use logship_config::{ConfigError, LoadedConfig, Problem, ProblemKind, load_str};

/// A fake environment: only `SET_VAR=value` and `MAX=2048` are set.
pub fn env(name: &str) -> Option<String> {
    match name {
        "SET_VAR" => Some("value".to_owned()),
        "MAX" => Some("2048".to_owned()),
        _ => None,
    }
}

/// Loads `text` named `test.toml` with the fake environment.
pub fn load(text: &str) -> Result<LoadedConfig, ConfigError> {
    load_str(text, "test.toml", &env)
}

/// The problems of a config that must fail.
pub fn problems(text: &str) -> Vec<Problem> {
    match load(text) {
        Ok(_) => panic!("config loaded but should have failed:\n{text}"),
        Err(e) => e.problems().to_vec(),
    }
}

/// Asserts that `text` fails with exactly one problem, of `kind`, at `line`:`column`, and
/// returns it.
#[track_caller]
pub fn only_problem(text: &str, kind: ProblemKind, line: usize, column: usize) -> Problem {
    let all = problems(text);
    assert_eq!(all.len(), 1, "expected one problem, got {all:#?}\n{text}");
    let p = all.into_iter().next().unwrap();
    assert_eq!(p.kind(), kind, "{p:?}");
    assert_eq!((p.line(), p.column()), (line, column), "{p:?}\n{text}");
    assert!(
        p.to_string()
            .starts_with(&format!("error: test.toml:{line}:{column}: ")),
        "{p}"
    );
    p
}

/// A stdin source `app` and a console sink `out` reading it: the smallest valid pipeline.
/// Tests append or prepend components; this is 5 lines long.
pub const MINIMAL: &str =
    "[sources.app]\ntype = \"stdin\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"app\"]\n";
