//! The error as the user sees it: Display lines and miette reports.

use logship_config::ConfigError;
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};

use crate::common::{load, problems};

fn render(err: &ConfigError) -> String {
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, err)
        .unwrap();
    out
}

const TWO_DANGLING: &str = "[sources.app]\ntype = \"stdin\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"nope\", \"app\", \"gone\"]\n";

#[test]
fn display_names_the_first_problem_and_counts_the_rest() {
    let err = load(TWO_DANGLING).unwrap_err();
    assert_eq!(
        err.to_string(),
        "error: test.toml:5:11: input `nope` is not a defined source or transform (and 1 more error)"
    );
    assert_eq!(err.problems().len(), 2);
    assert_eq!(
        err.problems()[1].to_string(),
        "error: test.toml:5:26: input `gone` is not a defined source or transform"
    );
}

#[test]
fn the_diagnostic_has_a_labelled_span_a_code_and_related_problems() {
    let err = load(TWO_DANGLING).unwrap_err();
    assert_eq!(
        err.code().map(|c| c.to_string()).as_deref(),
        Some("logship::config::dangling_input")
    );
    let labels: Vec<_> = err.labels().unwrap().collect();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].offset(), TWO_DANGLING.find("\"nope\"").unwrap());
    assert_eq!(labels[0].len(), "\"nope\"".len());
    assert_eq!(err.related().unwrap().count(), 1);
    assert!(err.source_code().is_some());

    let report = render(&err);
    assert!(report.contains("test.toml:5:11"), "{report}");
    assert!(report.contains("no component has this id"), "{report}");
    assert!(report.contains("test.toml:5:26"), "{report}");
    assert!(
        report.contains("inputs = [\"nope\", \"app\", \"gone\"]"),
        "{report}"
    );
}

#[test]
fn a_report_never_shows_an_inline_secret() {
    let text = "[sources.app]\ntype = \"stdin\"\n[sinks.loki]\ntype = \"loki\"\ninputs = [\"app\"]\nendpoint = \"http://x\"\n\
                auth = { user = \"u\", password = \"hunter2-password\", bogus = 1 }\n";
    let err = load(text).unwrap_err();
    let report = render(&err);
    assert!(report.contains("bogus"), "{report}");
    assert!(!report.contains("hunter2"), "{report}");
    assert!(!format!("{err:?} {err}").contains("hunter2"));
}

#[test]
fn all_graph_and_validation_errors_are_reported_together() {
    let text = "[sources.app]\ntype = \"stdin\"\nlabels = { __x = \"y\" }\n\
                [sinks.out]\ntype = \"console\"\ninputs = [\"nope\"]\n\
                [sinks.loki]\ntype = \"loki\"\ninputs = []\nendpoint = \"ftp://x\"\n";
    let at: Vec<(usize, usize, String)> = problems(text)
        .iter()
        .map(|p| (p.line(), p.column(), p.kind().as_str().to_owned()))
        .collect();
    assert_eq!(
        at,
        [
            (3, 12, "invalid_label_name".to_owned()),
            (6, 11, "dangling_input".to_owned()),
            (9, 10, "empty_inputs".to_owned()),
            (10, 12, "invalid_url".to_owned()),
        ]
    );
}

#[test]
fn the_error_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<ConfigError>();
    assert_send_sync::<logship_config::LoadedConfig>();
}
