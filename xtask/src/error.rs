//! The one error type of the pipeline: every failure names the spec file and a JSON pointer.

use std::fmt;

/// A problem with one spec, located by file and JSON pointer (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The spec file, as given (usually `openapi/<name>.yaml`).
    pub file: String,
    /// JSON pointer into the document; empty for the whole document.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl SpecError {
    pub fn new(file: &str, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self { file: file.to_owned(), pointer: pointer.into(), message: message.into() }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}: {}", self.file, self.pointer, self.message)
    }
}

impl std::error::Error for SpecError {}

/// Escapes one reference token of a JSON pointer (`~` and `/`).
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Builds a JSON pointer from unescaped tokens.
pub fn pointer<I, S>(tokens: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    tokens.into_iter().map(|t| format!("/{}", escape(t.as_ref()))).collect()
}
