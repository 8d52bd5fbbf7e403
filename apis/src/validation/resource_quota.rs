//! ResourceQuotas: hard limits on standard or qualified resources, and known scopes.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::path::Path;
use super::resources::{parse_quantity, validate_quantity_value, validate_resource_name};
use serde_json::Value;

const SCOPES: &[&str] = &[
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
    "VolumeAttributesClass",
];

/// Upstream `ValidateResourceQuotaSpec` (hard and scopes).
pub fn validate_spec(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = access::get(obj, "spec").unwrap_or(&Value::Null);
    let hard_path = path.child("hard");
    for (name, value) in access::entries(spec, "hard", &path, errs) {
        let p = hard_path.key(name);
        validate_resource_name(name, &p, errs);
        if let Some(q) = parse_quantity(value, &p, errs) {
            validate_quantity_value(name, &q, &p, errs);
        }
    }
    let scopes_path = path.child("scopes");
    for scope in access::string_list(spec, "scopes", &path, errs) {
        if !SCOPES.contains(&scope) {
            errs.push(FieldError::not_supported(&scopes_path, scope, SCOPES));
        }
    }
}
