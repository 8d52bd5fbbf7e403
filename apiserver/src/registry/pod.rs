//! Pod-specific behaviour: the status a new pod starts with, graceful deletion, binding and
//! eviction.

use serde_json::{json, Value};

use super::meta;

/// A new pod is Pending with its QoS class computed from its containers' resources.
pub fn prepare_for_create(pod: &mut Value) {
    let qos = qos_class(pod);
    if let Some(o) = pod.as_object_mut() {
        o.insert(
            "status".into(),
            json!({ "phase": "Pending", "qosClass": qos }),
        );
    }
}

/// Upstream's QoS classes: Guaranteed when every container limits cpu and memory with equal
/// requests, BestEffort when no container requests or limits anything, else Burstable.
pub fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        let has = |m: Option<&serde_json::Map<String, Value>>, k: &str| {
            m.is_some_and(|m| m.contains_key(k))
        };
        for res in ["cpu", "memory"] {
            if has(requests, res) || has(limits, res) {
                any = true;
            }
            let limited = has(limits, res);
            let equal = !has(requests, res)
                || requests.and_then(|r| r.get(res)) == limits.and_then(|l| l.get(res));
            if !limited || !equal {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed && !containers.is_empty() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The grace period of a pod deletion: immediate for pods never scheduled or already
/// finished, else the requested period or the pod's `terminationGracePeriodSeconds`.
pub fn grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let phase = meta::str_at(pod, "/status/phase");
    if meta::str_at(pod, "/spec/nodeName").is_empty() || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    let grace = requested.unwrap_or_else(|| {
        pod.pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
    });
    let grace = grace.max(0);
    // A deletion already under way can only be shortened.
    match pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
    {
        Some(current) if current < grace => current,
        _ => grace,
    }
}

/// Applies a Binding: sets the node and the PodScheduled condition. Errors with the message
/// upstream uses when the pod is already bound.
pub fn bind(pod: &mut Value, node: &str) -> Result<(), String> {
    let current = meta::str_at(pod, "/spec/nodeName");
    if !current.is_empty() {
        return Err(format!(
            "pod {} is already assigned to node \"{current}\"",
            meta::name(pod)
        ));
    }
    if meta::is_deleting(pod) {
        return Err(format!(
            "pod {} is being deleted, cannot be assigned to a host",
            meta::name(pod)
        ));
    }
    pod["spec"]["nodeName"] = json!(node);
    let condition = json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": meta::now(),
    });
    let status = pod
        .as_object_mut()
        .map(|o| o.entry("status").or_insert_with(|| json!({})));
    if let Some(status) = status {
        let conditions = status
            .as_object_mut()
            .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
        if let Some(Value::Array(list)) = conditions {
            list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            list.push(condition);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes() {
        let best = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(qos_class(&best), "BestEffort");
        let guaranteed = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
        let burst = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(qos_class(&burst), "Burstable");
    }

    #[test]
    fn grace_period_rules() {
        let unscheduled = json!({"spec": {}});
        assert_eq!(grace_period(&unscheduled, None), 0);
        let bound = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 12}});
        assert_eq!(grace_period(&bound, None), 12);
        assert_eq!(grace_period(&bound, Some(0)), 0);
        let done = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}});
        assert_eq!(grace_period(&done, None), 0);
    }

    #[test]
    fn binding_sets_node_once() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {}});
        bind(&mut pod, "n1").unwrap();
        assert_eq!(pod["spec"]["nodeName"], "n1");
        assert_eq!(pod["status"]["conditions"][0]["type"], "PodScheduled");
        assert!(bind(&mut pod, "n2")
            .unwrap_err()
            .contains("already assigned"));
    }
}
