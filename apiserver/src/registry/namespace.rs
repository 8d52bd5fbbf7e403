//! Namespace-specific behaviour: the `kubernetes` finalizer, the Terminating phase, and the
//! namespaces that may never be deleted.

use serde_json::{json, Value};

use super::{meta, store::UpdateStep};
use crate::errors::{ApiError, ApiResult};

/// Namespaces that exist from start-up and cannot be deleted.
pub const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

/// A new namespace is Active and carries the `kubernetes` finalizer the namespace controller
/// removes once it has emptied the namespace.
pub fn prepare_for_create(ns: &mut Value) {
    if let Some(o) = ns.as_object_mut() {
        o.insert("status".into(), json!({ "phase": "Active" }));
        let spec = o.entry("spec").or_insert_with(|| json!({}));
        if let Some(spec) = spec.as_object_mut() {
            spec.insert("finalizers".into(), json!(["kubernetes"]));
        }
    }
}

/// Whether spec finalizers still hold the namespace.
pub fn has_spec_finalizers(ns: &Value) -> bool {
    ns.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// Deleting a namespace marks it Terminating; it goes once every finalizer is gone.
pub fn delete_step(old: &Value) -> ApiResult<UpdateStep> {
    let name = meta::name(old);
    if IMMORTAL.contains(&name) {
        return Err(ApiError::forbidden(format!(
            "namespace {name} is forbidden: this namespace may not be deleted"
        )));
    }
    if !has_spec_finalizers(old) && meta::finalizers(old).is_empty() {
        return Ok(UpdateStep::Delete);
    }
    if meta::is_deleting(old) {
        return Ok(UpdateStep::Unchanged(old.clone()));
    }
    let mut new = old.clone();
    new["metadata"]["deletionTimestamp"] = json!(meta::now());
    new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    new["status"]["phase"] = json!("Terminating");
    Ok(UpdateStep::Write {
        object: new,
        retry: true,
    })
}

/// Whether a namespace accepts new content.
pub fn is_terminating(ns: &Value) -> bool {
    meta::is_deleting(ns) || meta::str_at(ns, "/status/phase") == "Terminating"
}
