//! Leases (`coordination.k8s.io`).

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::path::Path;
use serde_json::Value;

/// Upstream `ValidateLeaseSpec`.
pub fn validate_spec(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = access::get(obj, "spec").unwrap_or(&Value::Null);
    if let Some(d) = access::integer(spec, "leaseDurationSeconds", &path, errs) {
        if d <= 0 {
            errs.push(FieldError::invalid(
                &path.child("leaseDurationSeconds"),
                d,
                "must be greater than 0",
            ));
        }
    }
    if let Some(t) = access::integer(spec, "leaseTransitions", &path, errs) {
        if t < 0 {
            errs.push(FieldError::invalid(
                &path.child("leaseTransitions"),
                t,
                "must be greater than or equal to 0",
            ));
        }
    }
    let strategy = access::string(spec, "strategy", &path, errs);
    if let Some(s) = strategy {
        if s != "OldestEmulationVersion" {
            errs.push(FieldError::not_supported(
                &path.child("strategy"),
                s,
                &["OldestEmulationVersion"],
            ));
        }
    }
    if access::get(spec, "preferredHolder").is_some() && strategy.is_none() {
        errs.push(FieldError::forbidden(
            &path.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
}
