//! The `/scale` subresource: an `autoscaling/v1 Scale` view of a workload's replicas.

use serde_json::{json, Map, Value};

use super::{meta, ResourceDef};

/// The Scale view of a workload.
pub fn view(obj: &Value) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or_default();
    let mut metadata = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            metadata.insert(k.into(), v.clone());
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": { "replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0) },
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": obj.pointer("/spec/selector").map(selector_string).unwrap_or_default(),
        },
    })
}

/// Applies a Scale's replicas to the workload.
pub fn apply(def: &ResourceDef, obj: &mut Value, scale: &Value) -> Result<(), String> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        return Err(format!(
            "{} \"{}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0",
            def.kind,
            meta::name(obj)
        ));
    }
    obj["spec"]["replicas"] = json!(replicas);
    Ok(())
}

/// A label selector (`matchLabels` and `matchExpressions`, or a ReplicationController's plain
/// label map) in its query-string form.
pub fn selector_string(selector: &Value) -> String {
    let mut parts = Vec::new();
    let structured =
        selector.get("matchLabels").is_some() || selector.get("matchExpressions").is_some();
    if let (false, Some(labels)) = (structured, selector.as_object()) {
        for (k, v) in labels {
            if let Some(v) = v.as_str() {
                parts.push(format!("{k}={v}"));
            }
        }
    }
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let part = match e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default()
            {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                _ => continue,
            };
            parts.push(part);
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_and_selector() {
        let d = json!({"metadata": {"name": "a", "namespace": "n", "resourceVersion": "5"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "a"},
            "matchExpressions": [{"key": "t", "operator": "In", "values": ["x", "y"]}]}},
            "status": {"replicas": 2}});
        let s = view(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=a,t in (x,y)");
        assert_eq!(s["metadata"]["resourceVersion"], "5");
    }
}
