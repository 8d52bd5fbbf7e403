//! Defaulting of the `autoscaling` group: HorizontalPodAutoscaler, whose defaults depend on
//! the version the client wrote.

use serde_json::{json, Value};

use super::fields::{api_version, default_unset, is_empty, object_mut, struct_mut, Object};

/// Defaults an `autoscaling` object of `kind`; only HorizontalPodAutoscaler has defaults.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    if kind != "HorizontalPodAutoscaler" {
        return;
    }
    let v1 = api_version(obj) == "autoscaling/v1";
    let Some(spec) = struct_mut(obj, "spec") else {
        return;
    };
    default_unset(spec, "minReplicas", Value::from(1));
    if v1 {
        return;
    }
    if is_empty(spec, "metrics") {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    if let Some(behavior) = object_mut(spec, "behavior") {
        scaling_rules(
            behavior,
            "scaleUp",
            Some(0),
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
        // The scale-down window stays unset: the controller's command-line flag decides it.
        scaling_rules(
            behavior,
            "scaleDown",
            None,
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }
}

/// Once any behavior is given, both directions get a complete rule set, the client's fields
/// winning over the historical defaults.
fn scaling_rules(behavior: &mut Object, key: &str, window: Option<i64>, policies: Value) {
    let Some(rules) = struct_mut(behavior, key) else {
        return;
    };
    if let Some(window) = window {
        default_unset(rules, "stabilizationWindowSeconds", Value::from(window));
    }
    default_unset(rules, "selectPolicy", Value::from("Max"));
    default_unset(rules, "policies", policies);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(mut obj: Value) -> Value {
        apply("HorizontalPodAutoscaler", obj.as_object_mut().unwrap());
        obj
    }

    #[test]
    fn v2_min_replicas_and_cpu_metric() {
        let out = defaulted(
            json!({"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}}}),
        );
        assert_eq!(
            out["spec"],
            json!({
                "maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                "minReplicas": 1,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
            })
        );
    }

    #[test]
    fn v2_behavior_is_completed() {
        let out = defaulted(
            json!({"apiVersion": "autoscaling/v2", "spec": {"minReplicas": 2, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
        );
        assert_eq!(
            out["spec"]["behavior"],
            json!({
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]}
            })
        );
        assert_eq!(out["spec"]["minReplicas"], json!(2));
    }

    #[test]
    fn v1_gets_only_min_replicas() {
        let out = defaulted(json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 5}}));
        assert_eq!(out["spec"], json!({"maxReplicas": 5, "minReplicas": 1}));
    }
}
