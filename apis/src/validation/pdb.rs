//! PodDisruptionBudgets (`policy`): minAvailable xor maxUnavailable, each a count or percent.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::int_or_percent::{validate_not_more_than_100_percent, validate_positive_int_or_percent};
use super::path::Path;
use super::selector::validate_label_selector;
use serde_json::Value;

const EVICTION_POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];

/// Upstream `ValidatePodDisruptionBudgetSpec`.
pub fn validate_spec(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = access::get(obj, "spec").unwrap_or(&Value::Null);
    let min = access::get(spec, "minAvailable");
    let max = access::get(spec, "maxUnavailable");
    if min.is_some() && max.is_some() {
        errs.push(FieldError::invalid(
            &path,
            spec.clone(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (key, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        if v.is_some() {
            validate_positive_int_or_percent(v, &path.child(key), errs);
            validate_not_more_than_100_percent(v, &path.child(key), errs);
        }
    }
    if let Some(sel) = access::object(spec, "selector", &path, errs) {
        validate_label_selector(sel, &path.child("selector"), errs);
    }
    if let Some(policy) = access::string(spec, "unhealthyPodEvictionPolicy", &path, errs) {
        if !EVICTION_POLICIES.contains(&policy) {
            errs.push(FieldError::not_supported(
                &path.child("unhealthyPodEvictionPolicy"),
                policy,
                EVICTION_POLICIES,
            ));
        }
    }
}
