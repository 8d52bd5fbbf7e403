//! RuntimeClass: a new pod naming a RuntimeClass must name one that exists; it takes the
//! class's pod overhead and scheduling constraints (node selector, tolerations), and a pod may
//! not bring an overhead of its own that differs from the class's.

use serde_json::{Map, Value};

use super::{Attributes, Operation, Plugin};
use crate::{
    errors::{ApiError, ApiResult},
    registry::{catalog, Behaviour},
    server::ApiServer,
};

pub struct RuntimeClass;

fn is_new_pod(attrs: &Attributes<'_>) -> bool {
    attrs.operation == Operation::Create && attrs.def.behaviour == Behaviour::Pod
}

/// The RuntimeClass a pod names, from the watch cache; `Ok(None)` when it names none.
fn class_of(server: &ApiServer, attrs: &Attributes<'_>, pod: &Value) -> ApiResult<Option<Value>> {
    let name = pod
        .pointer("/spec/runtimeClassName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(def) = catalog::find("node.k8s.io", "v1", "runtimeclasses") else {
        return Ok(None);
    };
    if name.is_empty() {
        return Ok(None);
    }
    match server.cache(def).get(name).0.and_then(|o| o.value().ok()) {
        Some(class) => Ok(Some(class)),
        None => Err(ApiError::forbidden_object(
            attrs.def,
            &attrs.name,
            &format!("pod rejected: RuntimeClass \"{name}\" not found"),
        )),
    }
}

fn overhead_of(class: Option<&Value>) -> Option<&Value> {
    class
        .and_then(|c| c.pointer("/overhead/podFixed"))
        .filter(|o| !o.is_null())
}

/// Upstream compares overheads semantically: the same quantities, however written.
fn same_overhead(a: &Value, b: &Value) -> bool {
    let parse = |v: &Value| -> Option<Vec<(String, apimachinery::quantity::ParsedQuantity)>> {
        v.as_object()?
            .iter()
            .map(|(k, q)| {
                Some((
                    k.clone(),
                    apimachinery::quantity::ParsedQuantity::parse(q.as_str()?.trim())?,
                ))
            })
            .collect()
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => {
            x.len() == y.len()
                && x.iter().zip(&y).all(|((ka, qa), (kb, qb))| {
                    ka == kb && qa.cmp_value(qb) == std::cmp::Ordering::Equal
                })
        }
        _ => a == b,
    }
}

fn merge_scheduling(
    attrs: &Attributes<'_>,
    spec: &mut Map<String, Value>,
    scheduling: &Value,
) -> ApiResult<()> {
    if let Some(selector) = scheduling.get("nodeSelector").and_then(Value::as_object) {
        let current = spec
            .entry("nodeSelector")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(current) = current.as_object_mut() {
            for (key, value) in selector {
                let wanted = value.as_str().unwrap_or_default();
                if let Some(have) = current.get(key).and_then(Value::as_str) {
                    if have != wanted {
                        return Err(ApiError::forbidden_object(
                            attrs.def,
                            &attrs.name,
                            &format!("conflict: runtimeClass.scheduling.nodeSelector[{key}] = {wanted}; pod.spec.nodeSelector[{key}] = {have}"),
                        ));
                    }
                }
                current.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(tolerations) = scheduling.get("tolerations").and_then(Value::as_array) {
        let current = spec
            .entry("tolerations")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(current) = current.as_array_mut() {
            for t in tolerations {
                if !current.contains(t) {
                    current.push(t.clone());
                }
            }
        }
    }
    Ok(())
}

impl Plugin for RuntimeClass {
    fn name(&self) -> &'static str {
        "RuntimeClass"
    }

    fn mutate(
        &self,
        server: &ApiServer,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _: Option<&Value>,
    ) -> ApiResult<()> {
        if !is_new_pod(attrs) {
            return Ok(());
        }
        let Some(class) = class_of(server, attrs, obj)? else {
            return Ok(());
        };
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        if let Some(fixed) = overhead_of(Some(&class)) {
            let own = spec
                .get("overhead")
                .filter(|o| !o.is_null() && o.as_object().is_none_or(|m| !m.is_empty()));
            if own.is_some_and(|o| !same_overhead(o, fixed)) {
                return Err(ApiError::forbidden_object(
                    attrs.def,
                    &attrs.name,
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
                ));
            }
            spec.insert("overhead".into(), fixed.clone());
        }
        if let Some(scheduling) = class.get("scheduling").filter(|s| !s.is_null()) {
            merge_scheduling(attrs, spec, scheduling)?;
        }
        Ok(())
    }

    fn validate(
        &self,
        server: &ApiServer,
        attrs: &Attributes<'_>,
        obj: &Value,
        _: Option<&Value>,
    ) -> ApiResult<()> {
        if !is_new_pod(attrs) {
            return Ok(());
        }
        let class = class_of(server, attrs, obj)?;
        let own = obj.pointer("/spec/overhead").filter(|o| !o.is_null());
        let refuse = |why: &str| Err(ApiError::forbidden_object(attrs.def, &attrs.name, why));
        match (overhead_of(class.as_ref()), own) {
            (Some(fixed), Some(own)) if same_overhead(fixed, own) => Ok(()),
            (Some(_), _) => {
                refuse("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
            }
            (None, Some(_)) => refuse(
                "pod rejected: Overhead set without corresponding RuntimeClass defined Overhead",
            ),
            (None, None) => Ok(()),
        }
    }
}
