//! Pod tolerations and node taints.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::names::{is_qualified_name, is_valid_label_value};
use super::path::Path;
use serde_json::Value;

const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// Upstream `validateTaintEffect`.
pub fn validate_taint_effect(effect: &str, allow_empty: bool, path: &Path, errs: &mut Errors) {
    if effect.is_empty() {
        if !allow_empty {
            errs.push(FieldError::required(path, ""));
        }
        return;
    }
    if !EFFECTS.contains(&effect) {
        errs.push(FieldError::not_supported(path, effect, EFFECTS));
    }
}

/// Upstream `ValidateTolerations`.
pub fn validate_tolerations(list: &[Value], path: &Path, errs: &mut Errors) {
    for (i, t) in list.iter().enumerate() {
        let p = path.index(i);
        let key = access::str_or_empty(t, "key", &p, errs);
        let op = access::str_or_empty(t, "operator", &p, errs);
        let value = access::str_or_empty(t, "value", &p, errs);
        let effect = access::str_or_empty(t, "effect", &p, errs);
        if !key.is_empty() {
            for msg in is_qualified_name(key) {
                errs.push(FieldError::invalid(&p.child("key"), key, &msg));
            }
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if access::get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        &msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        t.clone(),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            validate_taint_effect(effect, true, &p.child("effect"), errs);
        }
    }
}
