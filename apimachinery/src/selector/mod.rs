//! Label and field selectors as they appear in `labelSelector=` and `fieldSelector=` query
//! parameters.

pub mod fields;
pub mod labels;

pub use fields::FieldSelector;
pub use labels::LabelSelector;

/// A selector that could not be parsed; the message is what upstream-style clients show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);
