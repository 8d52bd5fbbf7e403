//! PriorityClasses (`scheduling.k8s.io`): user classes are capped at one billion and the
//! `system-` prefix is reserved for the two built-in classes.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::metadata::immutable;
use super::path::Path;
use serde_json::Value;

/// Highest priority a user-defined class may have.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;

const SYSTEM_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

/// Why a `system-` class is not one of the known ones (upstream `IsKnownSystemPriorityClass`).
fn system_class_error(name: &str, value: i64, global_default: bool) -> Option<String> {
    let Some((_, want)) = SYSTEM_CLASSES.iter().find(|(n, _)| *n == name) else {
        return Some(format!("{name} is not a known system priority class"));
    };
    if *want != value {
        return Some(format!("value of {name} PriorityClass must be {want}"));
    }
    if global_default {
        return Some(format!(
            "globalDefault of {name} PriorityClass must be false"
        ));
    }
    None
}

fn validate_preemption_policy(obj: &Value, errs: &mut Errors) {
    if let Some(policy) = access::string(obj, "preemptionPolicy", &Path::default(), errs) {
        let valid = ["Never", "PreemptLowerPriority"];
        if !valid.contains(&policy) {
            errs.push(FieldError::not_supported(
                &Path::new("preemptionPolicy"),
                policy,
                &valid,
            ));
        }
    }
}

/// Upstream `ValidatePriorityClass` beyond metadata.
pub fn validate_body(obj: &Value, errs: &mut Errors) {
    let name = access::get(obj, "metadata")
        .and_then(|m| access::get(m, "name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = access::integer(obj, "value", &Path::default(), errs).unwrap_or(0);
    let global_default =
        access::boolean(obj, "globalDefault", &Path::default(), errs).unwrap_or(false);
    if name.starts_with("system-") {
        if let Some(err) = system_class_error(name, value, global_default) {
            errs.push(FieldError::forbidden(
                &Path::new("metadata").child("name"),
                &format!("priority class names with 'system-' prefix are reserved for system use only. error: {err}"),
            ));
        }
    } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(FieldError::forbidden(
            &Path::new("value"),
            &format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        ));
    }
    validate_preemption_policy(obj, errs);
}

/// Upstream `ValidatePriorityClassUpdate`: value and preemptionPolicy are fixed.
pub fn validate_update(new: &Value, old: &Value, errs: &mut Errors) {
    validate_preemption_policy(new, errs);
    if !access::same(access::get(new, "value"), access::get(old, "value")) {
        errs.push(FieldError::forbidden(
            &Path::new("value"),
            "may not be changed in an update.",
        ));
    }
    immutable(
        access::get(new, "preemptionPolicy"),
        access::get(old, "preemptionPolicy"),
        &Path::new("preemptionPolicy"),
        errs,
    );
}
