//! RBAC (`rbac.authorization.k8s.io`): rules need verbs and targets; bindings need a valid,
//! unchangeable roleRef and well-formed subjects.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::names::{is_dns1123_subdomain, is_path_segment_name};
use super::path::Path;
use super::selector::validate_label_selector;
use serde_json::Value;

const GROUP: &str = "rbac.authorization.k8s.io";

fn validate_rule(rule: &Value, namespaced: bool, path: &Path, errs: &mut Errors) {
    let list_len = |key: &str, errs: &mut Errors| access::array(rule, key, path, errs).len();
    if list_len("verbs", errs) == 0 {
        errs.push(FieldError::required(
            &path.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = access::string_list(rule, "nonResourceURLs", path, errs);
    if !urls.is_empty() {
        let urls_value = Value::from(urls.clone());
        if namespaced {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                urls_value.clone(),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if list_len("apiGroups", errs)
            + list_len("resources", errs)
            + list_len("resourceNames", errs)
            > 0
        {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                urls_value,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if list_len("apiGroups", errs) == 0 {
        errs.push(FieldError::required(
            &path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if list_len("resources", errs) == 0 {
        errs.push(FieldError::required(
            &path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
}

/// Rules of a Role or ClusterRole, and a ClusterRole's aggregation rule.
pub fn validate_role(obj: &Value, namespaced: bool, errs: &mut Errors) {
    let rules_path = Path::new("rules");
    for (i, rule) in access::array(obj, "rules", &Path::default(), errs)
        .iter()
        .enumerate()
    {
        validate_rule(rule, namespaced, &rules_path.index(i), errs);
    }
    if let Some(agg) = access::object(obj, "aggregationRule", &Path::default(), errs) {
        let sel_path = Path::new("aggregationRule").child("clusterRoleSelectors");
        let selectors = access::array(
            agg,
            "clusterRoleSelectors",
            &Path::new("aggregationRule"),
            errs,
        );
        if selectors.is_empty() {
            errs.push(FieldError::required(
                &sel_path,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            validate_label_selector(sel, &sel_path.index(i), errs);
        }
    }
}

fn validate_subject(subject: &Value, namespaced: bool, path: &Path, errs: &mut Errors) {
    let name = access::str_or_empty(subject, "name", path, errs);
    let kind = access::str_or_empty(subject, "kind", path, errs);
    let api_group = access::str_or_empty(subject, "apiGroup", path, errs);
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    match kind {
        "ServiceAccount" => {
            if !name.is_empty() {
                for msg in is_dns1123_subdomain(name) {
                    errs.push(FieldError::invalid(&path.child("name"), name, &msg));
                }
            }
            if !api_group.is_empty() {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    api_group,
                    &[""],
                ));
            }
            if !namespaced && access::str_or_empty(subject, "namespace", path, errs).is_empty() {
                errs.push(FieldError::required(&path.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    api_group,
                    &[GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
}

/// RoleBinding / ClusterRoleBinding body: roleRef and subjects.
pub fn validate_binding(obj: &Value, namespaced: bool, errs: &mut Errors) {
    let ref_path = Path::new("roleRef");
    let role_ref = access::object(obj, "roleRef", &Path::default(), errs).unwrap_or(&Value::Null);
    let api_group = access::str_or_empty(role_ref, "apiGroup", &ref_path, errs);
    if api_group != GROUP {
        errs.push(FieldError::not_supported(
            &ref_path.child("apiGroup"),
            api_group,
            &[GROUP],
        ));
    }
    let kind = access::str_or_empty(role_ref, "kind", &ref_path, errs);
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported(
            &ref_path.child("kind"),
            kind,
            kinds,
        ));
    }
    let name = access::str_or_empty(role_ref, "name", &ref_path, errs);
    if name.is_empty() {
        errs.push(FieldError::required(&ref_path.child("name"), ""));
    } else {
        for msg in is_path_segment_name(name, false) {
            errs.push(FieldError::invalid(&ref_path.child("name"), name, &msg));
        }
    }
    let subjects_path = Path::new("subjects");
    for (i, s) in access::array(obj, "subjects", &Path::default(), errs)
        .iter()
        .enumerate()
    {
        validate_subject(s, namespaced, &subjects_path.index(i), errs);
    }
}

/// Bindings cannot be repointed at another role.
pub fn validate_binding_update(new: &Value, old: &Value, errs: &mut Errors) {
    let (n, o) = (access::get(new, "roleRef"), access::get(old, "roleRef"));
    if !access::same(n, o) {
        errs.push(FieldError::invalid(
            &Path::new("roleRef"),
            n.cloned().unwrap_or(Value::Null),
            "cannot change roleRef",
        ));
    }
}
