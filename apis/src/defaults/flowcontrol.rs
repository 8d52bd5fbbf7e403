//! Defaulting of the `flowcontrol.apiserver.k8s.io` group (API priority and fairness).

use serde_json::Value;

use super::fields::{api_version, default_int, default_unset, object_mut, struct_mut, Object};

/// Defaults a flow-control object of `kind`; kinds without defaults are left untouched.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    match kind {
        "FlowSchema" => {
            if let Some(spec) = struct_mut(obj, "spec") {
                default_int(spec, "matchingPrecedence", 1000);
            }
        }
        "PriorityLevelConfiguration" => priority_level(obj),
        _ => {}
    }
}

/// Exempt levels lend and claim nothing; limited levels get 30 shares, lend nothing, and queue
/// with 64 queues, hands of 8 and 50 requests per queue.
fn priority_level(obj: &mut Object) {
    // v1 made the share count a pointer so 0 can be asked for; v1beta3 still reads 0 as unset.
    let shares_pointer = api_version(obj) == "flowcontrol.apiserver.k8s.io/v1";
    let Some(spec) = object_mut(obj, "spec") else {
        return;
    };
    if let Some(exempt) = object_mut(spec, "exempt") {
        default_unset(exempt, "nominalConcurrencyShares", Value::from(0));
        default_unset(exempt, "lendablePercent", Value::from(0));
    }
    let Some(limited) = object_mut(spec, "limited") else {
        return;
    };
    if shares_pointer {
        default_unset(limited, "nominalConcurrencyShares", Value::from(30));
    } else {
        default_int(limited, "nominalConcurrencyShares", 30);
    }
    default_unset(limited, "lendablePercent", Value::from(0));
    let queuing = object_mut(limited, "limitResponse").and_then(|r| object_mut(r, "queuing"));
    if let Some(queuing) = queuing {
        default_int(queuing, "handSize", 8);
        default_int(queuing, "queues", 64);
        default_int(queuing, "queueLengthLimit", 50);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaulted(kind: &str, mut obj: Value) -> Value {
        apply(kind, obj.as_object_mut().unwrap());
        obj
    }

    #[test]
    fn flow_schema_precedence() {
        let out = defaulted(
            "FlowSchema",
            json!({"spec": {"priorityLevelConfiguration": {"name": "global-default"}}}),
        );
        assert_eq!(out["spec"]["matchingPrecedence"], json!(1000));
    }

    #[test]
    fn limited_priority_level() {
        let out = defaulted(
            "PriorityLevelConfiguration",
            json!({
                "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
                "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 0, "limitResponse": {"type": "Queue", "queuing": {"queues": 16}}}}
            }),
        );
        assert_eq!(
            out["spec"]["limited"],
            json!({"nominalConcurrencyShares": 0, "lendablePercent": 0,
                   "limitResponse": {"type": "Queue", "queuing": {"queues": 16, "handSize": 8, "queueLengthLimit": 50}}})
        );
        let beta = defaulted(
            "PriorityLevelConfiguration",
            json!({
                "apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3",
                "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 0, "limitResponse": {"type": "Reject"}}}
            }),
        );
        assert_eq!(
            beta["spec"]["limited"]["nominalConcurrencyShares"],
            json!(30)
        );
    }

    #[test]
    fn exempt_priority_level() {
        let out = defaulted(
            "PriorityLevelConfiguration",
            json!({"spec": {"type": "Exempt", "exempt": {}}}),
        );
        assert_eq!(
            out["spec"]["exempt"],
            json!({"nominalConcurrencyShares": 0, "lendablePercent": 0})
        );
    }
}
