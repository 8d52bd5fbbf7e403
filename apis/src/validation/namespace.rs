//! Namespaces: DNS-label names and finalizer names in `spec.finalizers`.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::metadata::{validate_object_meta, MetaRules};
use super::names::{is_qualified_name, NameRule};
use super::path::Path;
use serde_json::Value;

const RULES: MetaRules = MetaRules {
    namespaced: false,
    name: NameRule::Dns1123Label,
    kube_finalizers: true,
};

pub fn create(obj: &Value, errs: &mut Errors) {
    validate_object_meta(obj, RULES, errs);
    let spec_path = Path::new("spec");
    let fin_path = spec_path.child("finalizers");
    let spec = access::get(obj, "spec").unwrap_or(&Value::Null);
    for f in access::string_list(spec, "finalizers", &spec_path, errs) {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(&fin_path, f, &msg));
        }
        if !f.contains('/') && f != "kubernetes" && f != "orphan" && f != "foregroundDeletion" {
            errs.push(FieldError::invalid(
                &fin_path,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}
