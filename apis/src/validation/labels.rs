//! Label and annotation maps as upstream validates them in object metadata, pod templates,
//! selectors and node selectors.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::names::{is_qualified_name, is_valid_label_value};
use super::path::Path;
use serde_json::Value;

/// Upper bound on the summed size of all annotation keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Validates the labels map at `obj[key]`: keys are qualified names, values label values. Causes
/// are reported on the map's path, with the offending key or value as the bad value.
pub fn validate_labels(obj: &Value, key: &str, parent: &Path, errs: &mut Errors) {
    let path = parent.child(key);
    for (k, v) in access::string_map(obj, key, parent, errs) {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(&path, k, &msg));
        }
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(&path, v, &msg));
        }
    }
}

/// Validates the annotations map at `obj[key]`: keys are case-insensitive qualified names and
/// the whole map is at most 256 KiB.
pub fn validate_annotations(obj: &Value, key: &str, parent: &Path, errs: &mut Errors) {
    let path = parent.child(key);
    let mut total = 0usize;
    for (k, v) in access::string_map(obj, key, parent, errs) {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(&path, k, &msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(&path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}
