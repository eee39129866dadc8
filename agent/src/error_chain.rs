//! An error with its causes as one line of text, for logs and `/ready`.

/// An error and its sources, `a: b: c`; a source whose text already ends the line is not
/// repeated (many errors print their cause themselves).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
