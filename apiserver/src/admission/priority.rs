//! Priority: a pod's `spec.priority` comes from its PriorityClass (or the global default
//! class, else 0), and a pod may not name a class that does not exist.

use serde_json::{json, Value};

use super::{new_pod_spec, Attributes, Plugin};
use crate::{
    errors::{ApiError, ApiResult},
    registry::catalog,
    server::ApiServer,
};

pub struct Priority;

impl Plugin for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    fn mutate(
        &self,
        server: &ApiServer,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _: Option<&Value>,
    ) -> ApiResult<()> {
        let Some(def) = catalog::find("scheduling.k8s.io", "v1", "priorityclasses") else {
            return Ok(());
        };
        let Some(spec) = new_pod_spec(attrs, obj) else {
            return Ok(());
        };
        let cache = server.cache(def);
        let class_name = spec
            .get("priorityClassName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let class = if class_name.is_empty() {
            cache
                .snapshot("")
                .objects
                .iter()
                .filter_map(|o| o.value().ok())
                .find(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
        } else {
            match cache.get(&class_name).0.and_then(|o| o.value().ok()) {
                Some(c) => Some(c),
                None => {
                    return Err(ApiError::forbidden(format!(
                    "pods \"{}\" is forbidden: no PriorityClass with name {class_name} was found",
                    attrs.name
                )))
                }
            }
        };
        let value = class
            .as_ref()
            .and_then(|c| c.get("value"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        spec.insert("priority".into(), json!(value));
        if let Some(c) = &class {
            if let Some(name) = c.pointer("/metadata/name") {
                spec.insert("priorityClassName".into(), name.clone());
            }
            if spec.get("preemptionPolicy").is_none() {
                let policy = c
                    .get("preemptionPolicy")
                    .cloned()
                    .unwrap_or(json!("PreemptLowerPriority"));
                spec.insert("preemptionPolicy".into(), policy);
            }
        }
        Ok(())
    }
}
