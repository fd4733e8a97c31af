//! Validation errors: which rule a value broke, and (once the caller knows it) which
//! field of a request carried it.

use std::fmt;

/// A value that broke a validation rule. `rule` is a stable machine-readable code
/// (e.g. `label_too_long`); `message` explains it to a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// Stable code of the rule, snake_case.
    pub rule: &'static str,
    /// Human explanation, including what to do instead where that helps.
    pub message: String,
}

impl Invalid {
    /// A new validation failure.
    pub fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
        }
    }

    /// Attach the name of the request field that carried the bad value.
    pub fn at(self, field: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            rule: self.rule,
            message: self.message,
        }
    }
}

/// A validation failure tied to a request field: what the API returns as
/// `{"error":"invalid", "field": ..., "rule": ..., "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `aliases[2]` or `data.target`.
    pub field: String,
    /// Stable code of the rule.
    pub rule: &'static str,
    /// Human explanation.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Adds `.field("name")` to results of validating constructors.
pub trait WithField<T> {
    /// Name the field whose value failed validation.
    fn field(self, field: &str) -> Result<T, FieldError>;
}

impl<T> WithField<T> for Result<T, Invalid> {
    fn field(self, field: &str) -> Result<T, FieldError> {
        self.map_err(|e| e.at(field))
    }
}
