//! Patch application for PATCH requests: JSON patch (RFC 6902), JSON merge patch (RFC 7386)
//! and Kubernetes' strategic merge patch.

mod error;
mod go_format;
mod strategic;

pub use error::PatchError;

use go_format::json_kind;
use serde_json::Value;

/// The patch formats accepted by PATCH, named by their request content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    StrategicMerge,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value; parameters such as `charset` are
    /// ignored. `None` for any other media type (upstream answers 415).
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media_type = ct.split(';').next().unwrap_or("").trim();
        [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge]
            .into_iter()
            .find(|t| t.content_type().eq_ignore_ascii_case(media_type))
    }

    /// The media type naming this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

/// Applies `patch` to `original` and returns the patched object.
///
/// `definition` is the schema definition name of the object's type (e.g.
/// `io.k8s.api.apps.v1.Deployment`); only strategic merge uses it.
pub fn apply(
    patch_type: PatchType,
    definition: &str,
    original: &Value,
    patch: &[u8],
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => apply_json_patch(original, patch),
        PatchType::Merge => apply_merge_patch(original, patch),
        PatchType::StrategicMerge => {
            let patch: Value = serde_json::from_slice(patch)
                .map_err(|e| PatchError::MalformedPatch(e.to_string()))?;
            strategic::apply(definition, original, patch)
        }
    }
}

/// A body that is not a list of objects is rejected up front (400); an operation that cannot
/// be understood or applied fails the patch (422), as upstream only inspects operations when
/// applying them.
fn apply_json_patch(original: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let operations: Vec<Value> =
        serde_json::from_slice(patch).map_err(|e| PatchError::MalformedPatch(e.to_string()))?;
    if let Some(bad) = operations.iter().find(|op| !op.is_object()) {
        return Err(PatchError::MalformedPatch(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
            json_kind(bad)
        )));
    }
    let operations: json_patch::Patch = serde_json::from_value(Value::Array(operations))
        .map_err(|e| PatchError::JsonPatchFailed(e.to_string()))?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &operations)
        .map_err(|e| PatchError::JsonPatchFailed(e.to_string()))?;
    Ok(doc)
}

fn apply_merge_patch(original: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(patch).map_err(|_| PatchError::InvalidMergePatch)?;
    match patch {
        Value::Null => Ok(original.clone()),
        Value::Object(_) => {
            let mut doc = original.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        _ => Err(PatchError::InvalidMergePatch),
    }
}

#[cfg(test)]
mod tests;
