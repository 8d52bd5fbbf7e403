//! DefaultTolerationSeconds: pods tolerate a not-ready or unreachable node for 300 seconds
//! before taint-based eviction, unless they say otherwise.

use serde_json::{json, Value};

use super::{new_pod_spec, Attributes, Plugin};
use crate::{errors::ApiResult, server::ApiServer};

pub struct DefaultTolerationSeconds;

const TAINTS: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];
const SECONDS: i64 = 300;

impl Plugin for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    fn mutate(
        &self,
        _: &ApiServer,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _: Option<&Value>,
    ) -> ApiResult<()> {
        let Some(spec) = new_pod_spec(attrs, obj) else {
            return Ok(());
        };
        let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
        let Some(list) = tolerations.as_array_mut() else {
            return Ok(());
        };
        for taint in TAINTS {
            let covered = list.iter().any(|t| {
                let key = t.get("key").and_then(Value::as_str).unwrap_or("");
                let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
                let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
                (key == *taint || (key.is_empty() && op == "Exists"))
                    && (effect.is_empty() || effect == "NoExecute")
            });
            if !covered {
                list.push(json!({
                    "key": taint,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": SECONDS,
                }));
            }
        }
        Ok(())
    }
}
