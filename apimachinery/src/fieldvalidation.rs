//! Server-side field validation (`?fieldValidation=Strict|Warn|Ignore`).
//!
//! Upstream decodes request bodies with a strict JSON decoder that reports unknown fields
//! (`unknown field "spec.foo"`) and duplicate fields (`duplicate field "spec.replicas"`),
//! with paths as `spec.template.spec.containers[0].imagee` (no leading dot). What happens
//! with them depends on the directive:
//! - `Strict`: the request fails with 400 BadRequest,
//!   `<Kind> in version "<version>" cannot be handled as a <Kind>: strict decoding error:
//!   unknown field "a", duplicate field "b"` (see [`strict_decoding_error`] and
//!   [`cannot_handle_message`]). For patches upstream reports the same text inside a 422
//!   Invalid on the `patch` field.
//! - `Warn` (the server default when the parameter is absent): each issue becomes one
//!   `Warning` header.
//! - `Ignore`: unknown fields are dropped silently.
//!
//! kubectl defaults to `--validate=strict` and sends `fieldValidation=Strict`.
//!
//! Values of the wrong JSON type (a string for an integer...) fail upstream's decoder itself,
//! whatever the directive: 400 BadRequest with Go's `json: cannot unmarshal ...` text, see
//! [`type_mismatches`].

mod ordered_json;
mod walk;

use std::fmt;

use serde_json::Value;
use thiserror::Error;

use crate::schema::definitions;
use ordered_json::Node;
use walk::Walker;

/// The `fieldValidation` directive of a write request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// A `fieldValidation` value upstream does not accept (422 Invalid on the request options).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("fieldValidation: Unsupported value: \"{0}\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"")]
pub struct UnsupportedFieldValidation(pub String);

impl FieldValidation {
    /// Reads the query parameter; absent or empty means `Warn`, the server default.
    pub fn from_query(value: Option<&str>) -> Result<Self, UnsupportedFieldValidation> {
        match value.unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(UnsupportedFieldValidation(other.to_string())),
        }
    }
}

/// A problem the strict decoder reports; governed by the `fieldValidation` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictIssue {
    UnknownField(String),
    DuplicateField(String),
}

impl fmt::Display for StrictIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictIssue::UnknownField(path) => write!(f, "unknown field \"{path}\""),
            StrictIssue::DuplicateField(path) => write!(f, "duplicate field \"{path}\""),
        }
    }
}

/// A value the decoder cannot store in its field; fails the request regardless of the
/// directive. `message` is Go's wording, e.g. `json: cannot unmarshal string into Go struct
/// field DeploymentSpec.spec.replicas of type int32`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch {
    /// Path of the value, in the strict-error format.
    pub path: String,
    pub message: String,
}

impl fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Everything field validation finds in a request body, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub strict: Vec<StrictIssue>,
    pub type_errors: Vec<TypeMismatch>,
}

/// Checks a raw request body against the schema of `definition`, reporting unknown and
/// duplicate fields and type mismatches in the order upstream's decoder meets them. Fails
/// only if the body is not JSON. Types without a schema (custom resources) only get the
/// duplicate check.
pub fn check(definition: &str, raw: &[u8]) -> Result<Report, serde_json::Error> {
    let node = Node::parse(raw)?;
    Ok(walk_node(definition, &node))
}

/// Paths of the fields in `obj` that the schema of `definition` does not know.
pub fn unknown_fields(definition: &str, obj: &Value) -> Vec<String> {
    walk_node(definition, &Node::from_value(obj))
        .strict
        .into_iter()
        .filter_map(|issue| match issue {
            StrictIssue::UnknownField(path) => Some(path),
            StrictIssue::DuplicateField(_) => None,
        })
        .collect()
}

/// Values in `obj` whose JSON type does not fit the schema of `definition`.
pub fn type_mismatches(definition: &str, obj: &Value) -> Vec<TypeMismatch> {
    walk_node(definition, &Node::from_value(obj)).type_errors
}

/// Paths of members repeated within one JSON object of `raw` (empty if `raw` is not JSON,
/// which the caller reports on its own).
pub fn duplicate_fields(raw: &[u8]) -> Vec<String> {
    let Ok(node) = Node::parse(raw) else {
        return Vec::new();
    };
    walk_node("", &node)
        .strict
        .into_iter()
        .filter_map(|issue| match issue {
            StrictIssue::DuplicateField(path) => Some(path),
            StrictIssue::UnknownField(_) => None,
        })
        .collect()
}

fn walk_node(definition: &str, node: &Node) -> Report {
    let mut walker = Walker::new(definitions());
    walker.document(definition, node);
    walker.findings
}

/// The strict decoder's error text: `strict decoding error: unknown field "a", duplicate
/// field "b"`.
pub fn strict_decoding_error(issues: &[StrictIssue]) -> String {
    let listed: Vec<String> = issues.iter().map(ToString::to_string).collect();
    format!("strict decoding error: {}", listed.join(", "))
}

/// The `Warning` header texts for `fieldValidation=Warn`, one per issue.
pub fn warnings(issues: &[StrictIssue]) -> Vec<String> {
    issues.iter().map(ToString::to_string).collect()
}

/// The 400 message upstream wraps decoding failures in:
/// `Deployment in version "v1" cannot be handled as a Deployment: <cause>`.
pub fn cannot_handle_message(kind: &str, version: &str, cause: &str) -> String {
    format!("{kind} in version \"{version}\" cannot be handled as a {kind}: {cause}")
}

#[cfg(test)]
mod tests;
