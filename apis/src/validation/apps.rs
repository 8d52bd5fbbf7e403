//! The `apps` group: Deployments, ReplicaSets, StatefulSets and DaemonSets.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::int_or_percent::{
    int_or_percent_value, validate_not_more_than_100_percent, validate_positive_int_or_percent,
};
use super::metadata::{immutable, validate_object_meta, validate_object_meta_update, MetaRules};
use super::names::NameRule;
use super::path::Path;
use super::pod_spec::validate_pod_template_spec;
use super::selector::validate_label_selector;
use super::workload::{
    check_selector_matches, non_negative, restart_always_only,
    restart_always_only_without_deadline, selector_of, spec_of, template_spec_field,
    validate_required_selector, validate_template_for_replica_set,
};
use serde_json::{Map, Value};

fn rules(name: NameRule) -> MetaRules {
    MetaRules {
        namespaced: true,
        name,
        kube_finalizers: true,
    }
}

fn validate_rolling_update_deployment(ru: &Value, path: &Path, errs: &mut Errors) {
    let (mu, ms) = (
        access::get(ru, "maxUnavailable"),
        access::get(ru, "maxSurge"),
    );
    validate_positive_int_or_percent(mu, &path.child("maxUnavailable"), errs);
    validate_positive_int_or_percent(ms, &path.child("maxSurge"), errs);
    if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
        errs.push(FieldError::invalid(
            &path.child("maxUnavailable"),
            mu.cloned().unwrap_or(Value::from(0)),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    validate_not_more_than_100_percent(mu, &path.child("maxUnavailable"), errs);
}

fn validate_deployment_strategy(spec: &Value, path: &Path, errs: &mut Errors) {
    let spath = path.child("strategy");
    let strategy = access::object(spec, "strategy", path, errs).unwrap_or(&Value::Null);
    let kind = access::str_or_empty(strategy, "type", &spath, errs);
    let rolling = access::object(strategy, "rollingUpdate", &spath, errs);
    match kind {
        "Recreate" => {
            if rolling.is_some() {
                errs.push(FieldError::forbidden(
                    &spath.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match rolling {
            None => errs.push(FieldError::required(
                &spath.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => validate_rolling_update_deployment(ru, &spath.child("rollingUpdate"), errs),
        },
        other => errs.push(FieldError::not_supported(
            &spath.child("type"),
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
}

fn validate_replicated_spec(spec: &Value, what: &str, path: &Path, errs: &mut Errors) {
    non_negative(spec, "replicas", path, errs);
    validate_required_selector(spec, what, path, errs);
    match selector_of(spec) {
        None => unparsable_selector(spec, path, "invalid label selector", errs),
        Some(sel) => validate_template_for_replica_set(spec, &sel, path, errs),
    }
}

/// The error for a `spec.selector` that `selector_of` cannot read.
fn unparsable_selector(spec: &Value, path: &Path, detail: &str, errs: &mut Errors) {
    errs.push(FieldError::invalid(
        &path.child("selector"),
        access::get(spec, "selector")
            .cloned()
            .unwrap_or(Value::Null),
        detail,
    ));
}

fn deployment_spec(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = spec_of(obj);
    validate_replicated_spec(spec, "deployment", &path, errs);
    validate_deployment_strategy(spec, &path, errs);
    non_negative(spec, "minReadySeconds", &path, errs);
    non_negative(spec, "revisionHistoryLimit", &path, errs);
    if let Some(pds) = access::integer(spec, "progressDeadlineSeconds", &path, errs) {
        non_negative(spec, "progressDeadlineSeconds", &path, errs);
        let min_ready = access::get(spec, "minReadySeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if pds <= min_ready {
            errs.push(FieldError::invalid(
                &path.child("progressDeadlineSeconds"),
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
}

fn replica_set_spec(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = spec_of(obj);
    non_negative(spec, "minReadySeconds", &path, errs);
    validate_replicated_spec(spec, "deployment", &path, errs);
}

fn validate_rolling_update_stateful_set(ru: &Value, path: &Path, errs: &mut Errors) {
    non_negative(ru, "partition", path, errs);
    let mu = access::get(ru, "maxUnavailable");
    if mu.is_some() {
        validate_positive_int_or_percent(mu, &path.child("maxUnavailable"), errs);
        if int_or_percent_value(mu) == 0 {
            errs.push(FieldError::invalid(
                &path.child("maxUnavailable"),
                mu.cloned().unwrap_or(Value::Null),
                "cannot be 0",
            ));
        }
        validate_not_more_than_100_percent(mu, &path.child("maxUnavailable"), errs);
    }
}

fn stateful_set_spec(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = spec_of(obj);
    let policy = access::str_or_empty(spec, "podManagementPolicy", &path, errs);
    match policy {
        "" => errs.push(FieldError::required(&path.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            &path.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let upath = path.child("updateStrategy");
    let strategy = access::object(spec, "updateStrategy", &path, errs).unwrap_or(&Value::Null);
    let rolling = access::object(strategy, "rollingUpdate", &upath, errs);
    match access::str_or_empty(strategy, "type", &upath, errs) {
        "" => errs.push(FieldError::required(&upath, "")),
        "OnDelete" => {
            if let Some(ru) = rolling {
                errs.push(FieldError::invalid(
                    &upath.child("rollingUpdate"),
                    ru.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = rolling {
                validate_rolling_update_stateful_set(ru, &upath.child("rollingUpdate"), errs);
            }
        }
        _ => errs.push(FieldError::invalid(
            &upath,
            strategy.clone(),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(ordinals) = access::object(spec, "ordinals", &path, errs) {
        non_negative(ordinals, "start", &path.child("ordinals"), errs);
    }
    non_negative(spec, "replicas", &path, errs);
    non_negative(spec, "minReadySeconds", &path, errs);
    validate_required_selector(spec, "statefulset", &path, errs);
    let tpath = path.child("template");
    let template = access::object(spec, "template", &path, errs).unwrap_or(&Value::Null);
    match selector_of(spec) {
        None => unparsable_selector(spec, &path, "", errs),
        Some(sel) => {
            if !sel.is_everything() {
                check_selector_matches(&sel, template, &tpath, errs);
            }
            validate_pod_template_spec(template, &tpath, errs);
        }
    }
    restart_always_only(template, &tpath, errs);
    if template_spec_field(template, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            &tpath.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
}

fn validate_daemon_set_strategy(spec: &Value, path: &Path, errs: &mut Errors) {
    let upath = path.child("updateStrategy");
    let strategy = access::object(spec, "updateStrategy", path, errs).unwrap_or(&Value::Null);
    match access::str_or_empty(strategy, "type", &upath, errs) {
        "OnDelete" => {}
        "RollingUpdate" => {
            let rpath = upath.child("rollingUpdate");
            let Some(ru) = access::object(strategy, "rollingUpdate", &upath, errs) else {
                errs.push(FieldError::required(&rpath, ""));
                return;
            };
            let (mu, ms) = (
                access::get(ru, "maxUnavailable"),
                access::get(ru, "maxSurge"),
            );
            validate_positive_int_or_percent(mu, &rpath.child("maxUnavailable"), errs);
            validate_positive_int_or_percent(ms, &rpath.child("maxSurge"), errs);
            validate_not_more_than_100_percent(mu, &rpath.child("maxUnavailable"), errs);
            validate_not_more_than_100_percent(ms, &rpath.child("maxSurge"), errs);
            let has_unavailable = int_or_percent_value(mu) != 0;
            let has_surge = int_or_percent_value(ms) != 0;
            if has_unavailable && has_surge {
                errs.push(FieldError::invalid(
                    &rpath.child("maxSurge"),
                    ms.cloned().unwrap_or(Value::Null),
                    "may not be set when maxUnavailable is non-zero",
                ));
            } else if !has_unavailable && !has_surge {
                errs.push(FieldError::required(
                    &rpath.child("maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &upath,
            other,
            &["RollingUpdate", "OnDelete"],
        )),
    }
}

fn daemon_set_spec(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = spec_of(obj);
    let tpath = path.child("template");
    let template = access::object(spec, "template", &path, errs).unwrap_or(&Value::Null);
    if let Some(sel) = access::object(spec, "selector", &path, errs) {
        validate_label_selector(sel, &path.child("selector"), errs);
    }
    if let Some(sel) = selector_of(spec) {
        check_selector_matches(&sel, template, &tpath, errs);
    }
    if let Some(sel) = access::get(spec, "selector") {
        if super::selector::is_empty_selector(sel) {
            errs.push(FieldError::invalid(
                &path.child("selector"),
                sel.clone(),
                "empty selector is invalid for daemonset",
            ));
        }
    }
    validate_pod_template_spec(template, &tpath, errs);
    restart_always_only_without_deadline(template, &tpath, "DaemonSet", errs);
    non_negative(spec, "minReadySeconds", &path, errs);
    non_negative(spec, "templateGeneration", &path, errs);
    validate_daemon_set_strategy(spec, &path, errs);
    non_negative(spec, "revisionHistoryLimit", &path, errs);
}

/// Validates the spec of one workload kind.
type SpecFn = fn(&Value, &mut Errors);

fn spec_validator(kind: &str) -> Option<(NameRule, SpecFn)> {
    match kind {
        "Deployment" => Some((NameRule::Dns1123Subdomain, deployment_spec)),
        "ReplicaSet" => Some((NameRule::Dns1123Subdomain, replica_set_spec)),
        "StatefulSet" => Some((NameRule::Dns1123Label, stateful_set_spec)),
        "DaemonSet" => Some((NameRule::Dns1123Subdomain, daemon_set_spec)),
        _ => None,
    }
}

/// Whether this module validates `kind`.
pub fn handles(kind: &str) -> bool {
    spec_validator(kind).is_some()
}

pub fn create(kind: &str, obj: &Value, errs: &mut Errors) {
    if let Some((name, spec)) = spec_validator(kind) {
        validate_object_meta(obj, rules(name), errs);
        spec(obj, errs);
    }
}

/// StatefulSet spec fields an update may change; every other field is frozen.
const STATEFUL_SET_MUTABLE: &[&str] = &[
    "replicas",
    "template",
    "updateStrategy",
    "minReadySeconds",
    "ordinals",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
];

fn frozen_part(spec: &Value) -> Map<String, Value> {
    let mut m = spec.as_object().cloned().unwrap_or_default();
    m.retain(|k, v| !STATEFUL_SET_MUTABLE.contains(&k.as_str()) && !v.is_null());
    m
}

pub fn update(kind: &str, new: &Value, old: &Value, errs: &mut Errors) {
    let Some((_, spec)) = spec_validator(kind) else {
        return;
    };
    validate_object_meta_update(new, old, true, errs);
    spec(new, errs);
    let (ns, os) = (spec_of(new), spec_of(old));
    if kind == "StatefulSet" {
        if frozen_part(ns) != frozen_part(os) {
            errs.push(FieldError::forbidden(
                &Path::new("spec"),
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    } else {
        immutable(
            access::get(ns, "selector"),
            access::get(os, "selector"),
            &Path::new("spec").child("selector"),
            errs,
        );
    }
}
