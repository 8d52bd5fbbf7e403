//! Events. Core `v1` Events keep upstream's lenient legacy checks (no metadata validation);
//! `events.k8s.io` Events get the strict ones. Fields are reported under the internal names
//! (`involvedObject`, `message`, ...), as upstream does for both groups.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::metadata::{immutable, validate_object_meta, validate_object_meta_update, MetaRules};
use super::names::{is_dns1123_subdomain, is_qualified_name, NameRule};
use super::path::Path;
use serde_json::Value;

const RULES: MetaRules = MetaRules {
    namespaced: true,
    name: NameRule::Dns1123Subdomain,
    kube_finalizers: true,
};

const REPORTING_INSTANCE_MAX: usize = 128;
const ACTION_MAX: usize = 128;
const REASON_MAX: usize = 128;
const NOTE_MAX: usize = 1024;

/// An Event's fields under their internal names, read from either group's JSON.
struct EventView<'a> {
    namespace: &'a str,
    involved_namespace: &'a str,
    event_time: bool,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
    action: &'a str,
    reason: &'a str,
    message: &'a str,
    event_type: &'a str,
}

fn str_at<'a>(obj: &'a Value, keys: &[&str]) -> &'a str {
    let mut cur = obj;
    for k in keys {
        match access::get(cur, k) {
            Some(v) => cur = v,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

fn view<'a>(obj: &'a Value, events_group: bool) -> EventView<'a> {
    let (involved, message, controller) = if events_group {
        ("regarding", "note", "reportingController")
    } else {
        ("involvedObject", "message", "reportingComponent")
    };
    EventView {
        namespace: str_at(obj, &["metadata", "namespace"]),
        involved_namespace: str_at(obj, &[involved, "namespace"]),
        event_time: access::get(obj, "eventTime").is_some(),
        reporting_controller: str_at(obj, &[controller]),
        reporting_instance: str_at(obj, &["reportingInstance"]),
        action: str_at(obj, &["action"]),
        reason: str_at(obj, &["reason"]),
        message: str_at(obj, &[message]),
        event_type: str_at(obj, &["type"]),
    }
}

/// Upstream `legacyValidateEvent`.
fn legacy(e: &EventView, controller_field: &str, errs: &mut Errors) {
    let involved_ns = Path::new("involvedObject").child("namespace");
    if !e.event_time {
        let ok = if e.involved_namespace.is_empty() {
            e.namespace.is_empty() || e.namespace == "default"
        } else {
            e.namespace == e.involved_namespace
        };
        if !ok {
            errs.push(FieldError::invalid(
                &involved_ns,
                e.involved_namespace,
                "does not match event.namespace",
            ));
        }
    } else {
        if e.involved_namespace.is_empty()
            && e.namespace != "default"
            && e.namespace != "kube-system"
        {
            errs.push(FieldError::invalid(
                &involved_ns,
                e.involved_namespace,
                "does not match event.namespace",
            ));
        }
        let cpath = Path::new(controller_field);
        if e.reporting_controller.is_empty() {
            errs.push(FieldError::required(&cpath, ""));
        }
        for msg in is_qualified_name(e.reporting_controller) {
            errs.push(FieldError::invalid(&cpath, e.reporting_controller, &msg));
        }
        for (field, value, max) in [
            (
                "reportingInstance",
                e.reporting_instance,
                REPORTING_INSTANCE_MAX,
            ),
            ("action", e.action, ACTION_MAX),
            ("reason", e.reason, REASON_MAX),
        ] {
            if value.is_empty() {
                errs.push(FieldError::required(&Path::new(field), ""));
            }
            if value.len() > max {
                errs.push(FieldError::invalid(
                    &Path::new(field),
                    "",
                    &format!("can have at most {max} characters"),
                ));
            }
        }
        if e.message.len() > NOTE_MAX {
            errs.push(FieldError::invalid(
                &Path::new("message"),
                "",
                &format!("can have at most {NOTE_MAX} characters"),
            ));
        }
    }
    for msg in is_dns1123_subdomain(e.namespace) {
        errs.push(FieldError::invalid(
            &Path::new("namespace"),
            e.namespace,
            &msg,
        ));
    }
}

fn strict(obj: &Value, e: &EventView, errs: &mut Errors) {
    if !e.event_time {
        errs.push(FieldError::required(&Path::new("eventTime"), ""));
    }
    if e.event_type != "Normal" && e.event_type != "Warning" {
        errs.push(FieldError::invalid(
            &Path::new("type"),
            "",
            &format!("has invalid value: {}", e.event_type),
        ));
    }
    for (json, internal) in [
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
    ] {
        let set = access::get(obj, json).is_some_and(|v| v.as_i64() != Some(0));
        if set {
            errs.push(FieldError::invalid(
                &Path::new(internal),
                "",
                "needs to be unset",
            ));
        }
    }
    let source = access::get(obj, "deprecatedSource");
    let source_set = ["component", "host"]
        .iter()
        .any(|k| !str_at(source.unwrap_or(&Value::Null), &[k]).is_empty());
    if source_set {
        errs.push(FieldError::invalid(
            &Path::new("source"),
            "",
            "needs to be unset",
        ));
    }
}

pub fn create(group: &str, obj: &Value, errs: &mut Errors) {
    let events_group = group == "events.k8s.io";
    let e = view(obj, events_group);
    let controller_field = if events_group {
        "reportingController"
    } else {
        "reportingComponent"
    };
    legacy(&e, controller_field, errs);
    if events_group {
        validate_object_meta(obj, RULES, errs);
        strict(obj, &e, errs);
    }
}

/// Fields of an `events.k8s.io` Event that never change, with their internal names.
const IMMUTABLE_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("reason", "reason"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("type", "type"),
    ("eventTime", "eventTime"),
    ("action", "action"),
    ("related", "related"),
    ("reportingController", "reportingController"),
    ("reportingInstance", "reportingInstance"),
];

pub fn update(group: &str, new: &Value, old: &Value, errs: &mut Errors) {
    let events_group = group == "events.k8s.io";
    let e = view(new, events_group);
    let controller_field = if events_group {
        "reportingController"
    } else {
        "reportingComponent"
    };
    legacy(&e, controller_field, errs);
    if !events_group {
        return;
    }
    validate_object_meta_update(new, old, true, errs);
    for (json, internal) in IMMUTABLE_FIELDS {
        immutable(
            access::get(new, json),
            access::get(old, json),
            &Path::new(internal),
            errs,
        );
    }
}
