//! Resource names and quantities: container `resources`, LimitRange and ResourceQuota entries.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::names::is_qualified_name;
use super::path::Path;
use super::quantity::{Quantity, QUANTITY_SYNTAX_ERROR};
use crate::quota::COMPUTE_RESOURCES;
use serde_json::Value;
use std::cmp::Ordering;

const INTEGER_RESOURCES: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

pub fn is_standard_resource(name: &str) -> bool {
    COMPUTE_RESOURCES.contains(&name)
        || matches!(name, "storage" | "requests.storage")
        || INTEGER_RESOURCES.contains(&name)
        || is_hugepages(name)
        || name.starts_with("requests.hugepages-")
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_hugepages(name)
}

fn is_extended(name: &str) -> bool {
    !is_native(name)
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn is_integer_resource(name: &str) -> bool {
    INTEGER_RESOURCES.contains(&name) || is_extended(name)
}

/// Upstream `validateResourceName`: a qualified name, standard unless domain-prefixed.
pub fn validate_resource_name(name: &str, path: &Path, errs: &mut Errors) -> bool {
    let msgs = is_qualified_name(name);
    let ok = msgs.is_empty();
    for msg in msgs {
        errs.push(FieldError::invalid(path, name, &msg));
    }
    if ok && !name.contains('/') && !is_standard_resource(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        ));
        return false;
    }
    ok
}

fn validate_container_resource_name(name: &str, path: &Path, errs: &mut Errors) {
    validate_resource_name(name, path, errs);
    if !name.contains('/') {
        if !is_standard_container_resource(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
}

/// Parses a quantity, reporting bad syntax.
pub fn parse_quantity(value: &Value, path: &Path, errs: &mut Errors) -> Option<Quantity> {
    let q = Quantity::from_json(value);
    if q.is_none() {
        errs.push(FieldError::invalid(
            path,
            value.clone(),
            QUANTITY_SYNTAX_ERROR,
        ));
    }
    q
}

/// Upstream `ValidateResourceQuantityValue`: non-negative, whole for countable resources.
pub fn validate_quantity_value(name: &str, q: &Quantity, path: &Path, errs: &mut Errors) {
    if q.is_negative() {
        errs.push(FieldError::invalid(
            path,
            q.text.as_str(),
            "must be greater than or equal to 0",
        ));
    }
    if is_integer_resource(name) && !q.is_integer() {
        errs.push(FieldError::invalid(
            path,
            q.text.as_str(),
            "must be an integer",
        ));
    }
}

/// Upstream `ValidateContainerResourceRequirements` (limits, requests, requests ≤ limits).
pub fn validate_container_resources(res: &Value, path: &Path, errs: &mut Errors) {
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let mut limits: Vec<(&str, Quantity)> = Vec::new();
    for (name, value) in access::entries(res, "limits", path, errs) {
        let p = lim_path.key(name);
        validate_container_resource_name(name, &p, errs);
        if let Some(q) = parse_quantity(value, &p, errs) {
            validate_quantity_value(name, &q, &p, errs);
            limits.push((name, q));
        }
    }
    for (name, value) in access::entries(res, "requests", path, errs) {
        let p = req_path.key(name);
        validate_container_resource_name(name, &p, errs);
        let Some(q) = parse_quantity(value, &p, errs) else {
            continue;
        };
        validate_quantity_value(name, &q, &p, errs);
        let overcommit = is_native(name) && !is_hugepages(name);
        match limits.iter().find(|(n, _)| *n == name) {
            Some((_, limit)) => {
                let ord = q.cmp_value(limit);
                if ord != Ordering::Equal && !overcommit {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.text.as_str(),
                        &format!("must be equal to {name} limit of {}", limit.text),
                    ));
                } else if ord == Ordering::Greater {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.text.as_str(),
                        &format!(
                            "must be less than or equal to {name} limit of {}",
                            limit.text
                        ),
                    ));
                }
            }
            None if !overcommit => errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
}
