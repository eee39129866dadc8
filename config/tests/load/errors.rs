//! Every kind of mistake is an error at the right line and column.

use logship_config::ProblemKind as K;

use crate::common::{MINIMAL, load, only_problem, problems};

/// `MINIMAL` plus a loki sink `loki` reading `app` with extra lines; the sink's table header
/// is line 6, `endpoint` line 9, and the extra lines start at line 10.
fn loki(extra: &str) -> String {
    format!(
        "{MINIMAL}[sinks.loki]\ntype = \"loki\"\ninputs = [\"app\"]\nendpoint = \"http://127.0.0.1:3100\"\n{extra}"
    )
}

/// `MINIMAL` plus a transform `t` of `type_name` reading `app` with extra lines (header on
/// line 6, extra lines from line 9), and a sink reading it.
fn transform(type_name: &str, extra: &str) -> String {
    format!(
        "{MINIMAL}[transforms.t]\ntype = \"{type_name}\"\ninputs = [\"app\"]\n{extra}\n[sinks.t_out]\ntype = \"blackhole\"\ninputs = [\"t\"]\n"
    )
}

/// A file source `f` with extra lines (header on line 1, extra lines from line 4), read by
/// a sink.
fn file_source(extra: &str) -> String {
    format!(
        "[sources.f]\ntype = \"file\"\ninclude = [\"/var/log/*.log\"]\n{extra}\n[sinks.out]\ntype = \"console\"\ninputs = [\"f\"]\n"
    )
}

// --- syntax and types --------------------------------------------------------------------

#[test]
fn toml_syntax_error() {
    let p = only_problem("data_dir = \"/x\nfoo = 1\n", K::Syntax, 1, 15);
    assert!(p.message().contains("string"), "{p}");
}

#[test]
fn duplicate_table_is_a_syntax_error_at_the_second() {
    let text = format!("{MINIMAL}[sources.app]\ntype = \"stdin\"\n");
    let p = only_problem(&text, K::Syntax, 6, 10);
    assert!(p.message().contains("duplicate key `app`"), "{p}");
}

#[test]
fn unknown_field_in_a_source_is_rejected_at_the_key() {
    let text = "[sources.app]\ntype = \"file\"\nincude = [\"/var/log/*.log\"]\n[sinks.out]\ntype = \"console\"\ninputs = [\"app\"]\n";
    let p = only_problem(text, K::UnknownField, 3, 1);
    assert!(
        p.message()
            .starts_with("unknown field `incude`, expected one of `include`"),
        "{p}"
    );
    assert_eq!(p.help_text(), Some("did you mean `include`?"));
}

#[test]
fn unknown_field_at_top_level_and_in_nested_tables() {
    let p = only_problem(
        &format!("dat_dir = \"/x\"\n{MINIMAL}"),
        K::UnknownField,
        1,
        1,
    );
    assert!(p.message().contains("`data_dir`"), "{p}");
    let p = only_problem(
        &format!("[telemetry]\naddres = \"127.0.0.1:1\"\n{MINIMAL}"),
        K::UnknownField,
        2,
        1,
    );
    assert_eq!(p.help_text(), Some("did you mean `address`?"));
    let p = only_problem(&loki("batch = { max_byte = 10 }"), K::UnknownField, 10, 11);
    assert_eq!(p.help_text(), Some("did you mean `max_bytes`?"));
    only_problem(
        &loki("[sinks.loki.tls]\nca = \"x\""),
        K::UnknownField,
        11,
        1,
    );
    only_problem(
        &file_source("multiline = { start_pattern = 'x', lines = 3 }"),
        K::UnknownField,
        4,
        36,
    );
}

#[test]
fn wrong_type_is_reported_at_the_value() {
    let p = only_problem(
        &file_source("max_line_bytes = \"big\""),
        K::InvalidType,
        4,
        18,
    );
    assert_eq!(
        p.message(),
        r#"expected a whole number (0 or more), found the string "big""#
    );
    only_problem(
        &format!("[telemetry]\naddress = \"not-an-address\"\n{MINIMAL}"),
        K::InvalidType,
        2,
        11,
    );
    only_problem(&loki("batch = { timeout_ms = -1 }"), K::InvalidType, 10, 24);
}

#[test]
fn misspelt_enum_value_suggests_the_right_one() {
    let p = only_problem(
        &file_source("read_from = \"begining\""),
        K::InvalidType,
        4,
        13,
    );
    assert!(p.message().contains("unknown variant `begining`"), "{p}");
    assert_eq!(p.help_text(), Some("did you mean `beginning`?"));
}

#[test]
fn unknown_component_type() {
    let text =
        "[sources.app]\ntype = \"fle\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"app\"]\n";
    let p = only_problem(text, K::UnknownComponentType, 2, 8);
    assert_eq!(
        p.message(),
        "unknown source type `fle`, expected one of `file`, `stdin`, `docker`, `kubernetes_logs`"
    );
    assert_eq!(p.help_text(), Some("did you mean `file`?"));
    only_problem(&transform("jsn", ""), K::UnknownComponentType, 7, 8);
    only_problem(
        &format!("{MINIMAL}[sinks.x]\ntype = \"lokki\"\ninputs = [\"app\"]\n"),
        K::UnknownComponentType,
        7,
        8,
    );
}

#[test]
fn missing_type_and_missing_required_keys() {
    let p = only_problem(
        "[sources.app]\ninclude = []\n[sinks.out]\ntype = \"console\"\ninputs = [\"app\"]\n",
        K::MissingField,
        1,
        1,
    );
    assert!(p.message().contains("missing field `type`"), "{p}");
    let p = only_problem(
        "[sources.app]\ntype = \"file\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"app\"]\n",
        K::MissingField,
        1,
        1,
    );
    assert!(p.message().contains("missing field `include`"), "{p}");
    let p = only_problem(
        &format!("{MINIMAL}[sinks.loki]\ntype = \"loki\"\ninputs = [\"app\"]\n"),
        K::MissingField,
        6,
        1,
    );
    assert!(p.message().contains("`endpoint`"), "{p}");
    let p = only_problem(
        &file_source("multiline = { timeout_ms = 5 }"),
        K::MissingField,
        4,
        13,
    );
    assert!(p.message().contains("`start_pattern`"), "{p}");
}

#[test]
fn every_component_with_a_mistake_is_reported() {
    let text = "[sources.a]\ntype = \"file\"\nincude = []\n[sources.b]\ntype = \"nope\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"a\"]\nformat = \"yaml\"\n";
    let all = problems(text);
    let at: Vec<(usize, usize)> = all.iter().map(|p| (p.line(), p.column())).collect();
    assert_eq!(at, [(3, 1), (5, 8), (9, 10)], "{all:#?}");
}

// --- interpolation -----------------------------------------------------------------------

#[test]
fn missing_env_var_points_at_it() {
    let p = only_problem(
        &loki("tenant_id = \"team-${TEAM}\""),
        K::MissingEnvVar,
        10,
        19,
    );
    assert_eq!(p.message(), "environment variable `TEAM` is not set");
    assert_eq!(p.span().len(), "${TEAM}".len());
}

#[test]
fn later_positions_on_a_line_account_for_substitutions() {
    // `${SET_VAR}` (10 bytes) becomes `value` (5 bytes); the bad label must still be
    // reported at its column in the file as written.
    let p = only_problem(
        &loki("labels = { a = \"${SET_VAR}\", __bad = \"x\" }"),
        K::InvalidLabelName,
        10,
        30,
    );
    assert!(p.message().contains("`__bad`"), "{p}");
    // A value that is wrong once substituted is reported at its `${...}`.
    let p = only_problem(
        &loki("batch = { max_events = ${SET_VAR} }"),
        K::Syntax,
        10,
        24,
    );
    assert_eq!(p.span().len(), "${SET_VAR}".len());
}

#[test]
fn malformed_interpolation() {
    only_problem(&loki("tenant_id = \"${}\""), K::BadInterpolation, 10, 14);
}

// --- graph ------------------------------------------------------------------------------

#[test]
fn dangling_input_points_at_the_string() {
    let text = "[sources.app]\ntype = \"stdin\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"app\", \"ap\"]\n";
    let p = only_problem(text, K::DanglingInput, 5, 18);
    assert_eq!(
        p.message(),
        "input `ap` is not a defined source or transform"
    );
    assert_eq!(p.help_text(), Some("did you mean `app`?"));
}

#[test]
fn input_naming_a_sink_is_an_error() {
    let text = format!("{MINIMAL}[sinks.second]\ntype = \"console\"\ninputs = [\"out\"]\n");
    only_problem(&text, K::InputIsSink, 8, 11);
}

#[test]
fn input_listed_twice_is_an_error() {
    let text = "[sources.app]\ntype = \"stdin\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"app\", \"app\"]\n";
    only_problem(text, K::DuplicateInput, 5, 18);
}

#[test]
fn cycle_points_at_an_input_involved() {
    let text = "[sources.app]\ntype = \"stdin\"\n\
                [transforms.a]\ntype = \"json\"\ninputs = [\"app\", \"b\"]\n\
                [transforms.b]\ntype = \"json\"\ninputs = [\"a\"]\n\
                [sinks.out]\ntype = \"console\"\ninputs = [\"b\"]\n";
    let p = only_problem(text, K::Cycle, 5, 18);
    assert_eq!(
        p.message(),
        "transforms read from each other in a cycle: `a` reads `b`, `b` reads `a`"
    );
}

#[test]
fn self_loop_is_a_cycle() {
    let p = only_problem(
        &transform("json", "").replace("inputs = [\"app\"]", "inputs = [\"t\"]"),
        K::Cycle,
        8,
        11,
    );
    assert!(p.message().ends_with("cycle: `t` reads itself"), "{p}");
}

#[test]
fn sink_with_empty_inputs() {
    let text = "[sources.app]\ntype = \"stdin\"\n[sinks.out]\ntype = \"console\"\ninputs = []\n";
    only_problem(text, K::EmptyInputs, 5, 10);
}

#[test]
fn ids_are_unique_across_sections() {
    let text = format!("{MINIMAL}[transforms.out]\ntype = \"json\"\ninputs = [\"app\"]\n");
    let p = only_problem(&text, K::DuplicateId, 6, 13);
    assert!(p.message().contains("already used by a sink"), "{p}");
}

#[test]
fn ids_use_only_safe_characters() {
    let text = "[sources.\"my app\"]\ntype = \"stdin\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"my app\"]\n";
    let p = only_problem(text, K::InvalidId, 1, 10);
    assert!(p.message().contains("`my app`"), "{p}");
}

#[test]
fn at_least_one_source_and_one_sink() {
    // With no source, the sink's input dangles too; both are reported.
    let all = problems("[sinks.out]\ntype = \"console\"\ninputs = [\"x\"]\n");
    let found: Vec<(K, usize, usize)> = all
        .iter()
        .map(|p| (p.kind(), p.line(), p.column()))
        .collect();
    assert_eq!(
        found,
        [(K::MissingComponent, 1, 1), (K::DanglingInput, 3, 11)]
    );
    assert_eq!(all[0].message(), "no source is defined");
    let p = only_problem(
        "data_dir = \"/x\"\n[sources.app]\ntype = \"stdin\"\n",
        K::MissingComponent,
        1,
        1,
    );
    assert_eq!(p.message(), "no sink is defined");
}

// --- labels -----------------------------------------------------------------------------

#[test]
fn invalid_label_names_everywhere_they_are_written() {
    // Transform labels and structured metadata.
    only_problem(
        &transform("json", "labels = { \"1abc\" = \"level\" }"),
        K::InvalidLabelName,
        9,
        12,
    );
    only_problem(
        &transform("json", "labels = { __name__ = \"level\" }"),
        K::InvalidLabelName,
        9,
        12,
    );
    only_problem(
        &transform(
            "json",
            "structured_metadata = { \"trace-id\" = \"trace_id\" }",
        ),
        K::InvalidLabelName,
        9,
        25,
    );
    // Loki sink static labels.
    only_problem(
        &loki("labels = { \"a.b\" = \"x\" }"),
        K::InvalidLabelName,
        10,
        12,
    );
    // File, stdin and docker sources.
    only_problem(
        &file_source("labels = { \"é\" = \"x\" }"),
        K::InvalidLabelName,
        4,
        12,
    );
    only_problem(
        &file_source("filename_label = \"file-name\""),
        K::InvalidLabelName,
        4,
        18,
    );
    only_problem(
        "[sources.app]\ntype = \"stdin\"\nlabels = { __x = \"y\" }\n[sinks.out]\ntype = \"console\"\ninputs = [\"app\"]\n",
        K::InvalidLabelName,
        3,
        12,
    );
    let docker = |extra: &str| {
        format!(
            "[sources.d]\ntype = \"docker\"\n{extra}\n[sinks.out]\ntype = \"console\"\ninputs = [\"d\"]\n"
        )
    };
    only_problem(
        &docker("labels = { \"c-name\" = \"container\" }"),
        K::InvalidLabelName,
        3,
        12,
    );
    only_problem(
        &docker("static_labels = { __a = \"b\" }"),
        K::InvalidLabelName,
        3,
        19,
    );
    only_problem(
        &docker("structured_metadata = { \"1x\" = \"image\" }"),
        K::InvalidLabelName,
        3,
        25,
    );
    let p = only_problem(
        &docker("labels = { c = \"containr\" }"),
        K::InvalidValue,
        3,
        16,
    );
    assert_eq!(p.help_text(), Some("did you mean `container`?"));
}

#[test]
fn empty_static_label_value() {
    only_problem(&loki("labels = { env = \"\" }"), K::InvalidValue, 10, 18);
}

// --- regex ------------------------------------------------------------------------------

#[test]
fn invalid_regex_points_at_the_pattern() {
    let p = only_problem(
        &transform("regex", "pattern = '(?P<level>\\w+'"),
        K::InvalidRegex,
        9,
        11,
    );
    assert!(p.message().starts_with("invalid regex: "), "{p}");
    only_problem(
        &file_source("multiline = { start_pattern = '[a-' }"),
        K::InvalidRegex,
        4,
        31,
    );
    only_problem(
        "[sources.app]\ntype = \"stdin\"\n[sources.app.multiline]\nstart_pattern = \"(\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"app\"]\n",
        K::InvalidRegex,
        4,
        17,
    );
}

#[test]
fn pattern_is_required_for_regex_and_refused_elsewhere() {
    let p = only_problem(&transform("regex", ""), K::MissingField, 6, 1);
    assert!(p.message().contains("`pattern`"), "{p}");
    only_problem(
        &transform("json", "pattern = '(?P<a>.)'"),
        K::Conflict,
        9,
        1,
    );
    only_problem(
        &transform("logfmt", "pattern = '(?P<a>.)'"),
        K::Conflict,
        9,
        1,
    );
}

#[test]
fn regex_fields_must_be_captured() {
    let p = only_problem(
        &transform(
            "regex",
            "pattern = '(?P<level>\\w+)'\nlabels = { lvl = \"lvl\" }",
        ),
        K::InvalidValue,
        10,
        18,
    );
    assert!(p.message().contains("`lvl` is not a named capture"), "{p}");
    only_problem(
        &transform("regex", "pattern = '\\w+'"),
        K::InvalidRegex,
        9,
        11,
    );
}

// --- loki sink ----------------------------------------------------------------------------

#[test]
fn compression_must_fit_the_encoding() {
    let p = only_problem(&loki("compression = \"gzip\""), K::Conflict, 10, 15);
    assert!(p.message().contains("protobuf"), "{p}");
    only_problem(
        &loki("encoding = \"protobuf\"\ncompression = \"none\""),
        K::Conflict,
        11,
        15,
    );
    only_problem(
        &loki("encoding = \"json\"\ncompression = \"snappy\""),
        K::Conflict,
        11,
        15,
    );
    // The allowed combinations load.
    for ok in [
        "compression = \"snappy\"",
        "encoding = \"json\"",
        "encoding = \"json\"\ncompression = \"gzip\"",
        "encoding = \"json\"\ncompression = \"none\"",
    ] {
        crate::common::load(&loki(ok)).unwrap();
    }
}

#[test]
fn auth_must_be_one_complete_kind() {
    only_problem(
        &loki("auth = { user = \"u\", password = \"p\", token = \"t\" }"),
        K::Conflict,
        10,
        1,
    );
    let p = only_problem(&loki("auth = { user = \"u\" }"), K::Conflict, 10, 10);
    assert!(p.message().contains("`user` needs `password`"), "{p}");
    only_problem(&loki("auth = { password = \"p\" }"), K::Conflict, 10, 10);
    only_problem(
        &loki("auth = { user = \"u\", password = \"p\", password_file = \"/f\" }"),
        K::Conflict,
        10,
        38,
    );
    only_problem(
        &loki("auth = { token = \"t\", token_file = \"/f\" }"),
        K::Conflict,
        10,
        23,
    );
    only_problem(&loki("auth = {}"), K::MissingField, 10, 8);
    for ok in [
        "auth = { user = \"u\", password = \"p\" }",
        "auth = { user = \"u\", password_file = \"/p\" }",
        "auth = { token = \"t\" }",
        "auth = { token_file = \"/t\" }",
    ] {
        crate::common::load(&loki(ok)).unwrap();
    }
}

#[test]
fn tls_key_needs_a_certificate() {
    let p = only_problem(&loki("tls = { key_file = \"/k.pem\" }"), K::Conflict, 10, 9);
    assert!(p.message().contains("`key_file` needs `crt_file`"), "{p}");
    only_problem(
        &loki("[sinks.loki.tls]\ncrt_file = \"/c.pem\""),
        K::Conflict,
        11,
        1,
    );
}

#[test]
fn endpoint_must_be_an_http_url() {
    let text = format!(
        "{MINIMAL}[sinks.loki]\ntype = \"loki\"\ninputs = [\"app\"]\nendpoint = \"loki:3100\"\n"
    );
    let p = only_problem(&text, K::InvalidUrl, 9, 12);
    assert!(p.message().contains("http://"), "{p}");
    let text = text.replace("loki:3100", "http://user:pw@loki:3100");
    let p = only_problem(&text, K::InvalidUrl, 9, 12);
    assert!(!p.to_string().contains("pw@"), "{p}");
}

#[test]
fn batch_and_request_limits_must_be_positive() {
    for (extra, column) in [
        ("batch = { max_bytes = 0 }", 23),
        ("batch = { max_events = 0 }", 24),
        ("batch = { timeout_ms = 0 }", 24),
        ("request = { concurrency = 0 }", 27),
        ("request = { timeout_ms = 0 }", 26),
        ("request = { retry_initial_backoff_ms = 0 }", 40),
        ("label_cardinality_limit = 0", 27),
    ] {
        let p = only_problem(&loki(extra), K::InvalidValue, 10, column);
        assert!(p.message().ends_with("must be greater than 0"), "{p}");
    }
    only_problem(
        &loki("[sinks.loki.request]\nretry_initial_backoff_ms = 1000\nretry_max_backoff_ms = 10"),
        K::Conflict,
        12,
        24,
    );
}

// --- file source ---------------------------------------------------------------------------

#[test]
fn file_globs_must_be_valid_and_present() {
    only_problem(
        "[sources.f]\ntype = \"file\"\ninclude = []\n[sinks.out]\ntype = \"console\"\ninputs = [\"f\"]\n",
        K::InvalidValue,
        3,
        11,
    );
    only_problem(
        &file_source("exclude = [\"/ok/*\", \"/bad/[a-\"]"),
        K::InvalidGlob,
        4,
        21,
    );
    only_problem(&file_source("glob_interval_ms = 0"), K::InvalidValue, 4, 20);
}

// --- kubernetes_logs ---------------------------------------------------------------------

/// A kubernetes_logs source `k` with extra lines (header on line 1, extra lines from line 3),
/// read by a sink.
fn kubernetes_source(extra: &str) -> String {
    format!(
        "[sources.k]\ntype = \"kubernetes_logs\"\n{extra}\n[sinks.out]\ntype = \"console\"\ninputs = [\"k\"]\n"
    )
}

#[test]
fn kubernetes_logs_needs_a_node_name_to_watch_pods() {
    let p = only_problem(&kubernetes_source(""), K::MissingField, 1, 10);
    assert!(p.message().contains("node_name"), "{p}");
    // Without the API, no node name is needed.
    crate::common::load(&kubernetes_source("metadata = false")).unwrap();
    let p = only_problem(
        &kubernetes_source("node_name = \"\""),
        K::MissingField,
        3,
        13,
    );
    assert!(p.message().contains("node_name"), "{p}");
}

#[test]
fn kubernetes_logs_checks_its_dir_and_label_names() {
    let p = only_problem(
        &kubernetes_source("node_name = \"n\"\npods_dir = \"pods\""),
        K::InvalidValue,
        4,
        12,
    );
    assert!(p.message().contains("pods_dir"), "{p}");
    let p = only_problem(
        &kubernetes_source("node_name = \"n\"\npod_labels = { \"app.name\" = \"app\" }"),
        K::InvalidLabelName,
        4,
        16,
    );
    assert!(p.message().contains("app.name"), "{p}");
}

#[test]
fn kubernetes_logs_warns_about_what_it_ignores_and_high_cardinality_labels() {
    let loaded = crate::common::load(&kubernetes_source(
        "metadata = false\nkubeconfig = \"/k\"\npod_labels = { hash = \"pod-template-hash\" }\ninclude_namespaces = [\"a\"]\nexclude_namespaces = [\"a\"]",
    ))
    .unwrap();
    let text: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(text[0].contains("kubeconfig"), "{text:?}");
    assert!(text[1].contains("high-cardinality"), "{text:?}");
    assert!(text[2].contains("exclude_namespaces"), "{text:?}");
}

// --- many mistakes in one run --------------------------------------------------------------

#[test]
fn every_mistake_of_a_file_is_reported_in_file_order() {
    // Two mistakes in one source (serde stops at the first of a table), a bad regex in a
    // transform that decodes, and a misspelt key in a sink: four problems, in file order.
    let text = "[sources.app]\ntype = \"file\"\nincude = [\"/var/log/*.log\"]\nmax_line_bytes = \"big\"\n\
        [transforms.t]\ntype = \"regex\"\ninputs = [\"app\"]\npattern = \"(?P<x>\"\n\
        [sinks.out]\ntype = \"console\"\ninputs = [\"t\"]\nformatt = \"json\"\n";
    let found: Vec<(ProblemKindAt, String)> = problems(text)
        .iter()
        .map(|p| ((p.kind(), p.line()), p.message().to_owned()))
        .collect();
    let kinds: Vec<ProblemKindAt> = found.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            (K::UnknownField, 3),
            (K::InvalidType, 4),
            (K::InvalidRegex, 8),
            (K::UnknownField, 12),
        ],
        "{found:#?}"
    );
}

type ProblemKindAt = (K, usize);

#[test]
fn a_removed_required_key_is_not_reported_as_missing() {
    // `include` is required; its wrong type is the one mistake, not also "missing field".
    let p = only_problem(
        "[sources.f]\ntype = \"file\"\ninclude = \"/var/log/*.log\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"f\"]\n",
        K::InvalidType,
        3,
        11,
    );
    assert_eq!(
        p.message(),
        r#"expected a list, found the string "/var/log/*.log""#
    );
    assert!(
        p.help_text().is_some_and(|h| h.contains("brackets")),
        "{p:?}"
    );
}

// --- timestamps ------------------------------------------------------------------------------

#[test]
fn timestamp_format_and_timezone_are_checked() {
    let p = only_problem(
        &transform("json", "timestamp = \"time\"\ntimezone = \"Mars/Olympus\""),
        K::InvalidValue,
        10,
        12,
    );
    assert!(
        p.message().contains("unknown time zone `Mars/Olympus`"),
        "{p}"
    );
    let p = only_problem(
        &transform(
            "json",
            "timestamp = \"time\"\ntimestamp_format = \"%Y-%m-%d\"",
        ),
        K::InvalidValue,
        10,
        20,
    );
    assert!(p.message().contains("an hour"), "{p}");
    let p = only_problem(
        &transform("json", "timestamp_format = \"%Y-%m-%d %H:%M:%S\""),
        K::Conflict,
        9,
        20,
    );
    assert!(p.message().contains("needs `timestamp`"), "{p}");
    crate::common::load(&transform(
        "json",
        "timestamp = \"time\"\ntimestamp_format = \"%d/%b/%Y:%H:%M:%S %z\"\ntimezone = \"+02:00\"",
    ))
    .unwrap();
}

// --- Loki limits ---------------------------------------------------------------------------

#[test]
fn loki_limits_take_lokis_own_units_and_name_a_bad_one() {
    let loaded = load(&loki(
        "limits = { reject_old_samples_max_age = \"14d\", max_line_size = \"512KB\", creation_grace_period = 1200 }",
    ))
    .unwrap();
    let Some(logship_config::schema::SinkConfig::Loki(sink)) = loaded.config.sinks.get("loki")
    else {
        panic!("no loki sink");
    };
    assert_eq!(
        sink.limits.reject_old_samples_max_age.0,
        std::time::Duration::from_secs(14 * 86_400)
    );
    assert_eq!(sink.limits.max_line_size.0, 512 * 1024);
    assert_eq!(sink.limits.creation_grace_period.0.as_secs(), 1200);
    assert_eq!(sink.limits.max_label_names_per_series, 15, "Loki's default");

    let p = only_problem(
        &loki("limits = { max_chunk_age = \"2 hours\" }"),
        K::InvalidType,
        10,
        28,
    );
    assert!(p.message().contains("invalid duration \"2 hours\""), "{p}");
}

/// 13 labels from the line, `filename` from the source, `job` from the sink, and the
/// `service_name` Loki adds: 16, over Loki's 15.
#[test]
fn a_pipeline_that_can_make_more_labels_than_loki_accepts_is_refused() {
    let labels: String = (1..=13).map(|i| format!("l{i:02} = \"f{i}\", ")).collect();
    let text = format!(
        "[sources.f]\ntype = \"file\"\ninclude = [\"/x/*.log\"]\n\
         [transforms.t]\ntype = \"json\"\ninputs = [\"f\"]\nlabels = {{ {labels}}}\n\
         [sinks.loki]\ntype = \"loki\"\ninputs = [\"t\"]\nendpoint = \"http://127.0.0.1:3100\"\nlabels = {{ job = \"app\" }}\n"
    );
    let p = only_problem(&text, K::TooManyLabels, 8, 8);
    assert!(
        p.message().starts_with(
            "sink `loki` can receive lines with 16 labels (filename, job, l01, l02"
        ) && p.message().contains("and the `service_name` Loki adds), more than Loki's max_label_names_per_series (15)"),
        "{p}"
    );
    // Told that its Loki accepts more, it loads; one label fewer also loads.
    load(&text.replace(
        "labels = { job = \"app\" }\n",
        "labels = { job = \"app\" }\nlimits = { max_label_names_per_series = 16 }\n",
    ))
    .unwrap();
    load(&text.replace("l13 = \"f13\", ", "")).unwrap();
}
