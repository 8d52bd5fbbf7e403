//! Defaulting of the `scheduling.k8s.io` group: PriorityClass.

use serde_json::Value;

use super::fields::{default_unset, Object};

/// Defaults a `scheduling.k8s.io` object of `kind`; a PriorityClass preempts lower priorities
/// unless it says `Never`.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    if kind == "PriorityClass" {
        default_unset(obj, "preemptionPolicy", Value::from("PreemptLowerPriority"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn preemption_policy() {
        let mut pc = json!({"metadata": {"name": "high"}, "value": 1000000});
        apply("PriorityClass", pc.as_object_mut().unwrap());
        assert_eq!(
            pc,
            json!({"metadata": {"name": "high"}, "value": 1000000, "preemptionPolicy": "PreemptLowerPriority"})
        );
        let mut never = json!({"value": 1, "preemptionPolicy": "Never"});
        apply("PriorityClass", never.as_object_mut().unwrap());
        assert_eq!(never["preemptionPolicy"], json!("Never"));
    }
}
