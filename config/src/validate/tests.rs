//! Checks for `[[tests]]`: every id they name is a transform.

use crate::error::ProblemKind;
use crate::report::Issue;
use crate::schema::Config;

use super::Checker;

/// Checks every test of `config`.
pub(crate) fn check(c: &mut Checker<'_, '_, '_>, config: &Config) {
    for (i, test) in config.tests.iter().enumerate() {
        let named = test
            .inputs
            .iter()
            .map(|input| ("insert_at", &input.insert_at))
            .chain(
                test.outputs
                    .iter()
                    .map(|o| ("extract_from", &o.extract_from)),
            )
            .chain(
                test.no_outputs_from
                    .iter()
                    .map(|id| ("no_outputs_from", id)),
            );
        for (key, id) in named {
            if config.transforms.contains_key(id.as_str()) {
                continue;
            }
            let span = c.loc.item(&["tests"], i);
            let what = if config.sources.contains_key(id.as_str())
                || config.sinks.contains_key(id.as_str())
            {
                "is not a transform (tests feed and read transforms)"
            } else {
                "names no transform"
            };
            c.error(Issue::new(
                ProblemKind::DanglingInput,
                span,
                format!("test `{}`: `{key} = \"{id}\"` {what}", test.name),
                "in this test",
            ));
        }
        if test.inputs.is_empty() {
            let span = c.loc.item(&["tests"], i);
            c.error(Issue::new(
                ProblemKind::InvalidValue,
                span,
                format!("test `{}` has no `[[tests.inputs]]`", test.name),
                "in this test",
            ));
        }
    }
}
