//! LimitRanger: new pods get the default requests and limits of their namespace's LimitRanges
//! (`Container` items), and pods and claims outside an item's min, max or
//! maxLimitRequestRatio are refused with upstream's messages.
//!
//! Pods are only seen on create (their resources cannot change afterwards); claims on create
//! and update.

use std::{cmp::Ordering, collections::BTreeSet};

use apimachinery::quantity::Quantity;
use apis::quota::{pod_resources, ResourceList};
use serde_json::{json, Map, Value};

use super::{Attributes, Operation, Plugin};
use crate::{
    errors::{ApiError, ApiResult},
    registry::{catalog, meta, pod},
    server::ApiServer,
};

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

pub struct LimitRanger;

/// The LimitRanges of a namespace, by name.
fn limit_ranges(server: &ApiServer, ns: &str) -> Vec<Value> {
    let Some(def) = catalog::find("", "v1", "limitranges") else {
        return Vec::new();
    };
    let mut ranges: Vec<Value> = server
        .cache(def)
        .snapshot(&format!("{ns}/"))
        .objects
        .iter()
        .filter_map(|o| o.value().ok())
        .collect();
    ranges.sort_by(|a, b| meta::name(a).cmp(meta::name(b)));
    ranges
}

fn items<'v>(range: &'v Value, kind: &'v str) -> impl Iterator<Item = &'v Value> {
    range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |i| i.get("type").and_then(Value::as_str) == Some(kind))
}

fn list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Quantity::parse(v.as_str()?)?)))
        .collect()
}

/// The resource the plugin acts on for this write: pods on create, claims on create and update.
fn applies(attrs: &Attributes<'_>) -> Option<&'static str> {
    match (attrs.def.group, attrs.def.plural, attrs.operation) {
        ("", "pods", Operation::Create) => Some("pods"),
        ("", "persistentvolumeclaims", Operation::Create | Operation::Update) => {
            Some("persistentvolumeclaims")
        }
        _ => None,
    }
}

/// Fills the container's unset requests and limits from the defaults; returns the annotation
/// parts (`cpu, memory request for container app`).
fn merge_container(
    container: &mut Map<String, Value>,
    requests: &Map<String, Value>,
    limits: &Map<String, Value>,
    kind: &str,
) -> Vec<String> {
    let name = container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let resources = container.entry("resources").or_insert_with(|| json!({}));
    let Some(resources) = resources.as_object_mut() else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for (field, defaults, label) in [
        ("requests", requests, "request"),
        ("limits", limits, "limit"),
    ] {
        if defaults.is_empty() {
            continue;
        }
        let current = resources.entry(field).or_insert_with(|| json!({}));
        let Some(current) = current.as_object_mut() else {
            continue;
        };
        let mut set: Vec<&str> = Vec::new();
        for (k, v) in defaults {
            if !current.contains_key(k) {
                current.insert(k.clone(), v.clone());
                set.push(k);
            }
        }
        if current.is_empty() {
            resources.remove(field);
        }
        if !set.is_empty() {
            set.sort();
            notes.push(format!("{} {label} for {kind} {name}", set.join(", ")));
        }
    }
    notes
}

/// Which side of a bound an amount must stay on.
#[derive(Clone, Copy)]
enum Bound {
    Min,
    Max,
}

/// Upstream's `minConstraint` (amounts: request, limit), `maxConstraint` (limit, request) and
/// `maxRequestConstraint` (request alone, for claims): the first amount must be specified, and
/// every specified amount must be within the bound.
fn bound_constraint(
    bound: Bound,
    kind: &str,
    res: &str,
    enforced: &Quantity,
    amounts: &[(&str, &ResourceList)],
) -> Option<String> {
    let (word, outside) = match bound {
        Bound::Min => ("minimum", Ordering::Less),
        Bound::Max => ("maximum", Ordering::Greater),
    };
    let (&(first, list), _) = amounts.split_first()?;
    if !list.contains_key(res) {
        return Some(format!(
            "{word} {res} usage per {kind} is {enforced}.  No {first} is specified"
        ));
    }
    amounts.iter().find_map(|&(label, list)| {
        let q = list.get(res)?;
        (q.value.cmp_value(&enforced.value) == outside)
            .then(|| format!("{word} {res} usage per {kind} is {enforced}, but {label} is {q}"))
    })
}

/// Upstream's `limitRequestRatioConstraint`.
fn ratio_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
    lim: &ResourceList,
) -> Option<String> {
    let amount = |q: Option<&Quantity>| q.map_or(0.0, |q| q.value.as_f64());
    let (r, l) = (amount(req.get(res)), amount(lim.get(res)));
    if r == 0.0 {
        return Some(format!("{res} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"));
    }
    if l == 0.0 {
        return Some(format!("{res} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"));
    }
    let observed = l / r;
    (observed > enforced.value.as_f64()).then(|| {
        format!("{res} max limit to request ratio per {kind} is {enforced}, but provided ratio is {observed:.6}")
    })
}

/// Checks one set of requests and limits against an item's min, max and ratio.
fn check(item: &Value, kind: &str, req: &ResourceList, lim: &ResourceList, errs: &mut Vec<String>) {
    for (res, q) in list(item.get("min")) {
        let amounts = [("request", req), ("limit", lim)];
        errs.extend(bound_constraint(Bound::Min, kind, &res, &q, &amounts));
    }
    for (res, q) in list(item.get("max")) {
        let amounts = [("limit", lim), ("request", req)];
        errs.extend(bound_constraint(Bound::Max, kind, &res, &q, &amounts));
    }
    for (res, q) in list(item.get("maxLimitRequestRatio")) {
        errs.extend(ratio_constraint(kind, &res, &q, req, lim));
    }
}

fn validate_pod(range: &Value, pod: &Value, errs: &mut Vec<String>) {
    for item in items(range, "Container") {
        for field in ["containers", "initContainers"] {
            let containers = pod
                .pointer(&format!("/spec/{field}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for c in containers {
                let req = list(c.pointer("/resources/requests"));
                let lim = list(c.pointer("/resources/limits"));
                check(item, "Container", &req, &lim, errs);
            }
        }
    }
    for item in items(range, "Pod") {
        let req = pod_resources(pod, "requests");
        let lim = pod_resources(pod, "limits");
        check(item, "Pod", &req, &lim, errs);
    }
}

fn validate_claim(range: &Value, claim: &Value, errs: &mut Vec<String>) {
    let req = list(claim.pointer("/spec/resources/requests"));
    let amounts = [("request", &req)];
    for item in items(range, "PersistentVolumeClaim") {
        for (bound, field) in [(Bound::Min, "min"), (Bound::Max, "max")] {
            for (res, q) in list(item.get(field)) {
                errs.extend(bound_constraint(
                    bound,
                    "PersistentVolumeClaim",
                    &res,
                    &q,
                    &amounts,
                ));
            }
        }
    }
}

/// Upstream's aggregate error text: one message alone, several deduplicated in brackets.
fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut seen = BTreeSet::new();
    let unique: Vec<String> = errs
        .into_iter()
        .filter(|e| seen.insert(e.clone()))
        .collect();
    match unique.len() {
        0 => None,
        1 => unique.into_iter().next(),
        _ => Some(format!("[{}]", unique.join(", "))),
    }
}

/// Sets the defaults of every `Container` item on a new pod, and notes what it set.
fn default_pod(range: &Value, pod: &mut Value) -> Vec<String> {
    let mut requests = Map::new();
    let mut limits = Map::new();
    for item in items(range, "Container") {
        for (field, target) in [("defaultRequest", &mut requests), ("default", &mut limits)] {
            if let Some(m) = item.get(field).and_then(Value::as_object) {
                target.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    let mut notes = Vec::new();
    if requests.is_empty() && limits.is_empty() {
        return notes;
    }
    for (field, kind) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let containers = pod
            .pointer_mut(&format!("/spec/{field}"))
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut);
        for c in containers {
            notes.extend(merge_container(c, &requests, &limits, kind));
        }
    }
    notes
}

impl Plugin for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    fn mutate(
        &self,
        server: &ApiServer,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _: Option<&Value>,
    ) -> ApiResult<()> {
        if applies(attrs) != Some("pods") {
            return Ok(());
        }
        let mut notes = Vec::new();
        for range in limit_ranges(server, attrs.namespace) {
            notes.extend(default_pod(&range, obj));
        }
        if notes.is_empty() {
            return Ok(());
        }
        // The QoS class the registry computed changes with the defaults.
        let qos = pod::qos_class(obj);
        if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
            status.insert("qosClass".into(), json!(qos));
        }
        if let Some(m) = meta::meta_mut(obj) {
            let annotations = m.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = annotations.as_object_mut() {
                a.insert(
                    ANNOTATION.into(),
                    json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
                );
            }
        }
        Ok(())
    }

    fn validate(
        &self,
        server: &ApiServer,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let Some(resource) = applies(attrs) else {
            return Ok(());
        };
        if old.is_some_and(meta::is_deleting) {
            return Ok(());
        }
        let mut errs = Vec::new();
        for range in limit_ranges(server, attrs.namespace) {
            if resource == "pods" {
                validate_pod(&range, obj, &mut errs);
            } else {
                validate_claim(&range, obj, &mut errs);
            }
        }
        match aggregate(errs) {
            Some(why) => Err(ApiError::forbidden_object(attrs.def, &attrs.name, &why)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> Value {
        json!({"spec": {"limits": [
            {"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
             "defaultRequest": {"cpu": "100m"}, "max": {"cpu": "1"}, "min": {"cpu": "50m"},
             "maxLimitRequestRatio": {"cpu": "5"}},
            {"type": "Pod", "max": {"memory": "1Gi"}}
        ]}})
    }

    #[test]
    fn defaults_unset_requests_and_limits_and_notes_them() {
        let mut p = json!({"spec": {"containers": [
            {"name": "app"},
            {"name": "side", "resources": {"limits": {"cpu": "200m"}, "requests": {"cpu": "200m"}}}
        ]}});
        let notes = default_pod(&range(), &mut p);
        assert_eq!(
            notes,
            vec![
                "cpu request for container app",
                "cpu, memory limit for container app",
                "memory limit for container side"
            ]
        );
        assert_eq!(
            p["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "500m", "memory": "256Mi"}})
        );
        let mut errs = Vec::new();
        validate_pod(&range(), &p, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn refuses_with_upstream_messages() {
        let p = json!({"spec": {"containers": [
            {"name": "big", "resources": {"limits": {"cpu": "2", "memory": "2Gi"}, "requests": {"cpu": "100m", "memory": "2Gi"}}}
        ]}});
        let mut errs = Vec::new();
        validate_pod(&range(), &p, &mut errs);
        assert_eq!(
            aggregate(errs).unwrap(),
            "[maximum cpu usage per Container is 1, but limit is 2, cpu max limit to request ratio per Container is 5, but provided ratio is 20.000000, maximum memory usage per Pod is 1Gi, but limit is 2Gi]"
        );
        let mut errs = Vec::new();
        let no_request = json!({"spec": {"containers": [{"name": "c"}]}});
        validate_pod(&range(), &no_request, &mut errs);
        assert_eq!(
            aggregate(errs).unwrap(),
            "[minimum cpu usage per Container is 50m.  No request is specified, maximum cpu usage per Container is 1.  No limit is specified, cpu max limit to request ratio per Container is 5, but no request is specified or request is 0, maximum memory usage per Pod is 1Gi.  No limit is specified]"
        );
    }

    #[test]
    fn claims_are_bounded_by_storage_min_and_max() {
        let r = json!({"spec": {"limits": [{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}]}});
        let claim = |s: &str| json!({"spec": {"resources": {"requests": {"storage": s}}}});
        let mut errs = Vec::new();
        validate_claim(&r, &claim("20Gi"), &mut errs);
        validate_claim(&r, &claim("500Mi"), &mut errs);
        validate_claim(&r, &claim("5Gi"), &mut errs);
        assert_eq!(
            errs,
            vec![
                "maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi",
                "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"
            ]
        );
    }
}
