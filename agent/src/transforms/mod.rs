//! Transforms: components that extract labels, structured metadata and timestamps from lines,
//! or drop lines, without ever changing the line itself.
//!
//! Every transform here is an [`ExtractTransform`] with a different [`FieldExtractor`]: JSON,
//! logfmt or a regex finds the fields; the shared code maps them to labels and metadata.

mod extract;
mod fields;
mod json;
mod label_cache;
mod logfmt;
mod regex;
#[cfg(test)]
mod tests;

pub use extract::{ExtractTransform, TransformBuildError};
pub use fields::{FieldExtractor, FieldValue};
pub use json::JsonExtractor;
pub use logfmt::LogfmtExtractor;
pub use regex::RegexExtractor;

use logship_config::schema::TransformConfig;

use crate::context::ComponentContext;

/// Builds the transform a config describes.
pub fn build(
    config: &TransformConfig,
    ctx: &ComponentContext,
) -> Result<ExtractTransform, TransformBuildError> {
    match config {
        TransformConfig::Json(c) => {
            ExtractTransform::new(c, ctx, |names| Ok(Box::new(JsonExtractor::new(names))))
        }
        TransformConfig::Logfmt(c) => {
            ExtractTransform::new(c, ctx, |names| Ok(Box::new(LogfmtExtractor::new(names))))
        }
        TransformConfig::Regex(c) => {
            let pattern = c.pattern.clone().unwrap_or_default();
            ExtractTransform::new(c, ctx, move |names| {
                Ok(Box::new(RegexExtractor::new(&pattern, names)?))
            })
        }
    }
}
