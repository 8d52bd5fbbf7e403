//! Nodes: pod CIDRs and taints.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::metadata::{immutable, validate_object_meta, validate_object_meta_update, MetaRules};
use super::names::{is_qualified_name, is_valid_label_value, NameRule};
use super::path::Path;
use super::toleration::validate_taint_effect;
use serde_json::Value;
use std::net::IpAddr;

const RULES: MetaRules = MetaRules {
    namespaced: false,
    name: NameRule::Dns1123Subdomain,
    kube_finalizers: true,
};

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    bits.parse::<u8>().is_ok_and(|b| b <= max) && !bits.starts_with('+')
}

fn validate_node_spec(spec: &Value, path: &Path, errs: &mut Errors) {
    let cidrs_path = path.child("podCIDRs");
    let cidrs = access::string_list(spec, "podCIDRs", path, errs);
    for (i, c) in cidrs.iter().enumerate() {
        if !is_cidr(c) {
            errs.push(FieldError::invalid(
                &cidrs_path.index(i),
                *c,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
    if cidrs.len() > 2 {
        errs.push(FieldError::invalid(
            &cidrs_path,
            Value::from(cidrs.clone()),
            "may specify no more than one CIDR for each IP family",
        ));
    }
    let taints_path = path.child("taints");
    let mut seen: Vec<(String, String)> = Vec::new();
    for (i, t) in access::array(spec, "taints", path, errs).iter().enumerate() {
        let p = taints_path.index(i);
        let key = access::str_or_empty(t, "key", &p, errs);
        for msg in is_qualified_name(key) {
            errs.push(FieldError::invalid(&p.child("key"), key, &msg));
        }
        let value = access::str_or_empty(t, "value", &p, errs);
        for msg in is_valid_label_value(value) {
            errs.push(FieldError::invalid(&p.child("value"), value, &msg));
        }
        let effect = access::str_or_empty(t, "effect", &p, errs);
        validate_taint_effect(effect, false, &p.child("effect"), errs);
        let id = (key.to_string(), effect.to_string());
        if seen.contains(&id) {
            errs.push(FieldError::duplicate(
                &p,
                serde_json::json!({"key": key, "effect": effect}),
            ));
        }
        seen.push(id);
    }
}

pub fn create(obj: &Value, errs: &mut Errors) {
    validate_object_meta(obj, RULES, errs);
    let spec = access::get(obj, "spec").unwrap_or(&Value::Null);
    validate_node_spec(spec, &Path::new("spec"), errs);
}

/// Upstream `ValidateNodeUpdate`: pod CIDRs and the provider ID are set once.
pub fn update(new: &Value, old: &Value, errs: &mut Errors) {
    validate_object_meta_update(new, old, true, errs);
    let path = Path::new("spec");
    let (ns, os) = (
        access::get(new, "spec").unwrap_or(&Value::Null),
        access::get(old, "spec").unwrap_or(&Value::Null),
    );
    validate_node_spec(ns, &path, errs);
    for key in ["podCIDRs", "providerID"] {
        let was_set = access::get(os, key)
            .is_some_and(|v| v != "" && v.as_array().is_none_or(|a| !a.is_empty()));
        if was_set {
            let p = path.child(key);
            let mut local = Errors::new();
            immutable(access::get(ns, key), access::get(os, key), &p, &mut local);
            if !local.is_empty() {
                let msg = if key == "podCIDRs" {
                    "node updates may not change podCIDR except from \"\" to valid"
                } else {
                    "node updates may not change providerID except from \"\" to valid"
                };
                errs.push(FieldError::forbidden(&p, msg));
            }
        }
    }
}
