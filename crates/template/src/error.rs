//! The one error type of this crate.

use std::fmt;

/// Which phase of templating failed; callers map it to a condition reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The template text is not a valid template (Go's `template: NAME:LINE: ...` parse errors),
    /// including calls to undefined functions and uses of undeclared variables.
    Parse,
    /// Executing the template failed: missing key, wrong argument type, a function's error.
    Exec,
    /// A resource bound (output size, nesting depth, iteration count) was hit.
    Limit,
}

impl ErrorKind {
    /// PascalCase code for condition reasons, event reasons and metric labels.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::Parse => "TemplateParseError",
            ErrorKind::Exec => "TemplateExecError",
            ErrorKind::Limit => "TemplateLimitExceeded",
        }
    }
}

/// A parse, execution or limit error, with the template name and the position in its text.
///
/// `Display` follows Go's layout (`template: NAME:LINE:COL: CAUSE`) so messages read the
/// same as upstream's; the caller adds the ExternalSecret, field and key around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    kind: ErrorKind,
    name: String,
    line: usize,
    column: usize,
    message: String,
}

impl TemplateError {
    pub(crate) fn new(
        kind: ErrorKind,
        name: &str,
        line: usize,
        column: usize,
        message: String,
    ) -> Self {
        TemplateError {
            kind,
            name: name.to_string(),
            line,
            column,
            message,
        }
    }

    /// Parse, Exec or Limit.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Name of the template (or `define`d sub-template) where the error happened.
    #[must_use]
    pub fn template_name(&self) -> &str {
        &self.name
    }

    /// 1-based line in the template text.
    #[must_use]
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column (in bytes) in the template text.
    #[must_use]
    pub fn column(&self) -> usize {
        self.column
    }

    /// The cause, without the name/position prefix.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "template: {}:{}:{}: {}",
            self.name, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for TemplateError {}
