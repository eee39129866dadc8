//! The error for a line that is not a valid JSON object: what was wrong and where.

/// What was wrong with a line that is not a valid JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonErrorKind {
    /// The line's first non-whitespace byte is not `{`.
    #[error("not a JSON object")]
    NotAnObject,
    /// The line ended inside a value.
    #[error("unexpected end of line")]
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    #[error("unexpected byte")]
    UnexpectedByte,
    /// An object member does not start with a string key.
    #[error("expected a string key")]
    ExpectedKey,
    /// A key is not followed by `:`.
    #[error("expected ':' after key")]
    ExpectedColon,
    /// An object member is not followed by `,` or `}`.
    #[error("expected ',' or '}}'")]
    ExpectedCommaOrObjectEnd,
    /// An array element is not followed by `,` or `]`.
    #[error("expected ',' or ']'")]
    ExpectedCommaOrArrayEnd,
    /// A raw control character (below U+0020) inside a string.
    #[error("control character in string")]
    ControlCharacter,
    /// A backslash escape that JSON does not define, or a malformed `\u` escape.
    #[error("invalid escape")]
    InvalidEscape,
    /// A `\u` escape of a UTF-16 surrogate without its pair.
    #[error("unpaired surrogate in \\u escape")]
    LoneSurrogate,
    /// String contents that are not valid UTF-8.
    #[error("invalid UTF-8 in string")]
    InvalidUtf8,
    /// A number that does not follow the JSON grammar.
    #[error("invalid number")]
    InvalidNumber,
    /// Something that starts like `true`, `false` or `null` but is not.
    #[error("invalid literal")]
    InvalidLiteral,
    /// Objects and arrays nested deeper than 127 levels.
    #[error("nesting too deep")]
    TooDeep,
    /// Non-whitespace after the closing `}` of the object.
    #[error("trailing characters after the object")]
    TrailingCharacters,
}

/// A line that is not a valid JSON object: what was wrong and at which byte of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {kind}")]
pub struct JsonError {
    /// What was wrong.
    pub kind: JsonErrorKind,
    /// Byte offset in the line where the problem was detected.
    pub offset: usize,
}
