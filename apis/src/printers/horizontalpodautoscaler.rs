//! `kubectl get horizontalpodautoscalers`: scale target, "current/target" per metric, and
//! replica bounds. Reads the autoscaling/v2 shape, and the CPU target of autoscaling/v1.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Reference",
        "string",
        "The scaled workload, as Kind/name.",
        0,
    ),
    col(
        "Targets",
        "string",
        "Current and target value of each metric.",
        0,
    ),
    col("MinPods", "string", "Lower bound on replicas.", 0),
    col("MaxPods", "string", "Upper bound on replicas.", 0),
    col("Replicas", "string", "Current number of replicas.", 0),
    AGE,
];

/// How many metrics are listed before the rest are summarised as a count.
const SHOWN: usize = 2;

pub(super) fn cells(hpa: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        fields::str(hpa, &["spec", "scaleTargetRef", "kind"]),
        fields::str(hpa, &["spec", "scaleTargetRef", "name"])
    );
    let min_pods = fields::opt_int(hpa, &["spec", "minReplicas"])
        .map_or_else(|| "<unset>".to_owned(), |n| n.to_string());
    vec![
        fields::name(hpa).into(),
        reference.into(),
        targets(hpa).into(),
        min_pods.into(),
        fields::int(hpa, &["spec", "maxReplicas"]).into(),
        fields::int(hpa, &["status", "currentReplicas"]).into(),
        fields::age(hpa, now).into(),
    ]
}

/// The TARGETS cell. Each spec metric is paired with the status metric at the same index.
fn targets(hpa: &Value) -> String {
    let (specs, statuses) = metrics(hpa);
    if specs.is_empty() {
        return "<none>".to_owned();
    }
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| format_metric(spec, statuses.get(i)))
        .collect();
    if list.len() > SHOWN {
        format!(
            "{} + {} more...",
            list[..SHOWN].join(", "),
            list.len() - SHOWN
        )
    } else {
        list.join(", ")
    }
}

/// Spec and status metrics in the v2 shape; a v1 object's CPU target is expressed as one
/// Resource metric, as upstream's conversion does.
fn metrics(hpa: &Value) -> (Vec<Value>, Vec<Value>) {
    if !fields::str(hpa, &["apiVersion"]).starts_with("autoscaling/v1") {
        return (
            fields::array(hpa, &["spec", "metrics"]).to_vec(),
            fields::array(hpa, &["status", "currentMetrics"]).to_vec(),
        );
    }
    let Some(target) = fields::opt_int(hpa, &["spec", "targetCPUUtilizationPercentage"]) else {
        return (Vec::new(), Vec::new());
    };
    let spec = json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": target}}});
    let status =
        fields::opt_int(hpa, &["status", "currentCPUUtilizationPercentage"]).map(|current| {
            json!({"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": current}}})
        });
    (vec![spec], status.into_iter().collect())
}

/// One metric as "current/target", prefixed by the resource name for resource metrics.
fn format_metric(spec: &Value, status: Option<&Value>) -> String {
    let source = |key: &str| status.and_then(|s| fields::get(s, &[key]));
    match fields::str(spec, &["type"]) {
        "External" => value_or_average(spec, "external", source("external")),
        "Object" => value_or_average(spec, "object", source("object")),
        "Pods" => {
            let current = source("pods").map_or_else(
                || "<unknown>".to_owned(),
                |s| quantity(s, &["current", "averageValue"]),
            );
            let target = quantity(spec, &["pods", "target", "averageValue"]);
            format!("{current}/{target}")
        }
        "Resource" => resource(spec, "resource", source("resource")),
        "ContainerResource" => resource(spec, "containerResource", source("containerResource")),
        _ => "<unknown type>".to_owned(),
    }
}

/// Object and External metrics: an average-value target gets an " (avg)" suffix.
fn value_or_average(spec: &Value, key: &str, status: Option<&Value>) -> String {
    if let Some(target) = fields::get(spec, &[key, "target", "averageValue"]) {
        let current = status
            .and_then(|s| fields::get(s, &["current", "averageValue"]))
            .map_or_else(|| "<unknown>".to_owned(), |q| fields::quantity(Some(q)));
        return format!("{current}/{} (avg)", fields::quantity(Some(target)));
    }
    let current = status.map_or_else(
        || "<unknown>".to_owned(),
        |s| quantity(s, &["current", "value"]),
    );
    format!("{current}/{}", quantity(spec, &[key, "target", "value"]))
}

/// Resource and ContainerResource metrics: "name: current/target", by average value or as a
/// utilisation percentage ("<auto>" when no target is given).
fn resource(spec: &Value, key: &str, status: Option<&Value>) -> String {
    let name = fields::str(spec, &[key, "name"]);
    if fields::is_set(spec, &[key, "target", "averageValue"]) {
        let current = status.map_or_else(
            || "<unknown>".to_owned(),
            |s| quantity(s, &["current", "averageValue"]),
        );
        let target = quantity(spec, &[key, "target", "averageValue"]);
        return format!("{name}: {current}/{target}");
    }
    let current = status
        .and_then(|s| fields::opt_int(s, &["current", "averageUtilization"]))
        .map_or_else(|| "<unknown>".to_owned(), |n| format!("{n}%"));
    let target = fields::opt_int(spec, &[key, "target", "averageUtilization"])
        .map_or_else(|| "<auto>".to_owned(), |n| format!("{n}%"));
    format!("{name}: {current}/{target}")
}

/// A quantity pointer as Go prints it: "<nil>" when unset.
fn quantity(obj: &Value, path: &[&str]) -> String {
    match fields::get(obj, path) {
        Some(q) => fields::quantity(Some(q)),
        None => "<nil>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;

    #[test]
    fn v2_hpa_row() {
        let hpa = json!({
            "apiVersion": "autoscaling/v2",
            "metadata": {"name": "web", "creationTimestamp": ago(600)},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 10,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Resource", "resource": {"name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "rps"},
                        "target": {"type": "AverageValue", "averageValue": "100"}}}
                ]
            },
            "status": {"currentReplicas": 3, "desiredReplicas": 3, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": 45, "averageValue": "90m"}}}
            ]}
        });
        assert_eq!(
            cells(&hpa, now()),
            vec![
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: 45%/60%, memory: <unknown>/500Mi + 1 more..."),
                json!("2"),
                json!(10),
                json!(3),
                json!("10m")
            ]
        );
    }

    #[test]
    fn object_external_and_v1() {
        let spec = json!({"type": "External", "external": {"metric": {"name": "queue"},
            "target": {"type": "AverageValue", "averageValue": "30"}}});
        let status = json!({"type": "External", "external": {"current": {"averageValue": "12"}}});
        assert_eq!(format_metric(&spec, Some(&status)), "12/30 (avg)");
        let object = json!({"type": "Object", "object": {"target": {"value": "2k"}}});
        assert_eq!(format_metric(&object, None), "<unknown>/2k");
        assert_eq!(
            format_metric(&json!({"type": "Weird"}), None),
            "<unknown type>"
        );

        let v1 = json!({"apiVersion": "autoscaling/v1", "metadata": {"name": "a"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "maxReplicas": 5,
                     "targetCPUUtilizationPercentage": 80},
            "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 12}});
        let c = cells(&v1, now());
        assert_eq!(c[2], json!("cpu: 12%/80%"));
        assert_eq!(c[3], json!("<unset>"));
        let none = json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "b"}}});
        assert_eq!(targets(&none), "<none>");
    }
}
