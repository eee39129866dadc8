//! Arbitrary input never panics the loader.

use proptest::prelude::*;

use crate::common::load;

/// Pieces of config text, so random sequences often come close to valid configs.
const PIECES: &[&str] = &[
    "[sources.a]\n",
    "[sinks.s]\n",
    "[transforms.t]\n",
    "type = \"file\"\n",
    "type = \"loki\"\n",
    "type = \"json\"\n",
    "type = \"regex\"\n",
    "inputs = [\"a\", \"t\"]\n",
    "include = [\"/x/*\"]\n",
    "endpoint = \"${SET_VAR:-http://x}\"\n",
    "pattern = '(?P<a>'\n",
    "labels = { __x = \"${NOPE}\" }\n",
    "batch = { max_bytes = ${MAX} }\n",
    "\"",
    "'",
    "$",
    "${",
    "}",
    "#",
    "=",
    "é",
    "\n",
];

proptest! {
    #[test]
    fn any_sequence_of_config_pieces_loads_or_fails_cleanly(
        picks in proptest::collection::vec(0..PIECES.len(), 0..40)
    ) {
        let text: String = picks.iter().map(|&i| PIECES[i]).collect();
        if let Err(e) = load(&text) {
            for p in e.problems() {
                prop_assert!(p.line() >= 1 && p.column() >= 1);
                prop_assert!(p.span().end <= text.len());
                prop_assert!(text.is_char_boundary(p.span().start));
                prop_assert!(text.is_char_boundary(p.span().end));
            }
            // Rendering must not panic either.
            let shown = format!("{e} {e:?}");
            let report = format!("{:?}", miette::Report::new(e));
            prop_assert!(!shown.is_empty() && !report.is_empty());
        }
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        let _ = load(&text);
    }
}
