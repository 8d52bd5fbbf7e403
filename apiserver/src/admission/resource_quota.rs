//! ResourceQuota: refuses a write that would take a namespace's quota past its `status.hard`,
//! and charges the write to `status.used` before it is stored, as upstream's admission does
//! (the quota controller recomputes usage later, freeing what deleted objects held).
//!
//! Charging is a compare-and-swap of each quota through the store, so two creates racing
//! against one quota, on this apiserver or another, cannot both pass its last unit. Charges in
//! one namespace are also serialised within this process so that racing creates wait rather
//! than exhaust their conflict retries.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use apimachinery::quantity::Quantity;
use apis::quota::{Evaluator, ResourceList};
use serde_json::{json, Value};

use super::{Attributes, Operation};
use crate::{
    errors::{ApiError, ApiResult},
    registry::{
        catalog, meta,
        store::{ListOptions, Store},
    },
    server::ApiServer,
};

/// The plugin, with one lock per namespace.
#[derive(Default)]
pub struct ResourceQuota {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn list_at(quota: &Value, pointer: &str) -> ResourceList {
    quota
        .pointer(pointer)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Quantity::parse(v.as_str()?)?)))
        .collect()
}

/// `pods=1,requests.cpu=500m`, sorted by resource name.
fn pretty(list: &ResourceList, keys: &BTreeSet<&String>) -> String {
    list.iter()
        .filter(|(k, _)| keys.contains(k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `quota` with `usage` added to `status.used`, or upstream's "exceeded quota" message.
fn charge(quota: &Value, usage: &ResourceList) -> Result<Value, String> {
    let hard = list_at(quota, "/status/hard");
    let used = list_at(quota, "/status/used");
    let requested: ResourceList = usage
        .iter()
        .filter(|(k, _)| hard.contains_key(*k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    if requested.is_empty() {
        return Ok(quota.clone());
    }
    let mut new_used = ResourceList::new();
    for (k, v) in &requested {
        let before = used.get(k).copied().unwrap_or_else(Quantity::zero);
        let after = before
            .checked_add(v)
            .ok_or_else(|| format!("quota usage of {k} overflows"))?;
        new_used.insert(k.clone(), after);
    }
    let exceeded: BTreeSet<&String> = new_used
        .iter()
        .filter(|(k, v)| {
            hard.get(*k)
                .is_some_and(|h| v.value.cmp_value(&h.value).is_gt())
        })
        .map(|(k, _)| k)
        .collect();
    if !exceeded.is_empty() {
        return Err(format!(
            "exceeded quota: {}, requested: {}, used: {}, limited: {}",
            meta::name(quota),
            pretty(&requested, &exceeded),
            pretty(&used, &exceeded),
            pretty(&hard, &exceeded)
        ));
    }
    let mut out = quota.clone();
    if let Some(status) = out.get_mut("status").and_then(Value::as_object_mut) {
        let used = status.entry("used").or_insert_with(|| json!({}));
        if let Some(used) = used.as_object_mut() {
            for (k, v) in new_used {
                used.insert(k, json!(v.to_string()));
            }
        }
    }
    Ok(out)
}

/// What a write adds: the new object's usage, less the old object's on updates.
fn delta(evaluator: Evaluator, obj: &Value, old: Option<&Value>) -> ResourceList {
    let mut usage = evaluator.usage(obj);
    if let Some(old) = old.filter(|o| !meta::resource_version(o).is_empty()) {
        let before = evaluator.usage(old);
        for (k, v) in usage.iter_mut() {
            if let Some(b) = before.get(k) {
                let d = v.checked_sub(b).unwrap_or(*v);
                *v = if d.value.is_negative() {
                    Quantity::zero()
                } else {
                    d
                };
            }
        }
    }
    usage.retain(|_, v| !v.is_zero());
    usage
}

impl ResourceQuota {
    fn namespace_lock(&self, ns: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.locks.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        locks.entry(ns.to_string()).or_default().clone()
    }

    /// Checks a create or update against every quota of its namespace and charges it.
    pub async fn admit(
        &self,
        server: &ApiServer,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
        dry_run: bool,
    ) -> ApiResult<()> {
        let def = attrs.def;
        let evaluator = Evaluator::of(def.group, def.plural);
        let applies = match attrs.operation {
            Operation::Create => true,
            Operation::Update => evaluator.handles_update(),
            Operation::Delete => false,
        };
        let Some(quota_def) = catalog::find("", "v1", "resourcequotas") else {
            return Ok(());
        };
        if !def.namespaced || !applies || attrs.namespace.is_empty() {
            return Ok(());
        }
        // Most namespaces have no quota: the watch cache answers that without a read of etcd
        // (a quota created a moment ago may be missed, as with upstream's informer).
        let prefix = format!("{}/", attrs.namespace);
        if server.cache(quota_def).snapshot(&prefix).objects.is_empty() {
            return Ok(());
        }
        let store = Store::new(server, quota_def);
        let lock = self.namespace_lock(attrs.namespace);
        let _serialised = lock.lock().await;
        let listed = store
            .list(attrs.namespace, &ListOptions::default())
            .await?
            .objects;
        if listed.is_empty() {
            return Ok(());
        }
        let refuse = |why: String| ApiError::forbidden_object(def, &attrs.name, &why);
        let mut quotas = Vec::new();
        for quota in listed.iter().filter_map(|o| o.value().ok()) {
            let name = meta::name(&quota).to_string();
            let restricted: BTreeSet<String> = list_at(&quota, "/status/hard")
                .into_keys()
                .filter(|r| evaluator.handles_resource(r))
                .collect();
            if restricted.is_empty() || !evaluator.matches_scopes(&quota, obj) {
                continue;
            }
            evaluator
                .constraints(&restricted, obj)
                .map_err(|e| refuse(format!("failed quota: {name}: {e}")))?;
            let used = list_at(&quota, "/status/used");
            if restricted.iter().any(|r| !used.contains_key(r)) {
                let names: Vec<&str> = restricted.iter().map(String::as_str).collect();
                return Err(refuse(format!(
                    "status unknown for quota: {name}, resources: {}",
                    names.join(",")
                )));
            }
            quotas.push((name, quota));
        }
        let usage = delta(evaluator, obj, old);
        if usage.is_empty() || quotas.is_empty() {
            return Ok(());
        }
        // Refuse before charging anything if any quota is already exhausted.
        for (_, quota) in &quotas {
            charge(quota, &usage).map_err(refuse)?;
        }
        if dry_run {
            return Ok(());
        }
        for (name, _) in &quotas {
            let charged = store
                .mutate(attrs.namespace, name, |current| {
                    charge(current, &usage).map_err(refuse)
                })
                .await;
            match charged {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
            tracing::debug!(namespace = attrs.namespace, quota = %name, object = %attrs.name, "charged quota");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": "q"}, "status": {"hard": hard, "used": used}})
    }

    fn list(v: Value) -> ResourceList {
        list_at(&json!({ "l": v }), "/l")
    }

    #[test]
    fn charges_only_what_the_quota_limits() {
        let q = quota(
            json!({"pods": "2", "requests.memory": "1Gi"}),
            json!({"pods": "1", "requests.memory": "512Mi"}),
        );
        let usage = list(json!({"pods": "1", "requests.memory": "256Mi", "requests.cpu": "1"}));
        let charged = charge(&q, &usage).unwrap();
        assert_eq!(
            charged["status"]["used"],
            json!({"pods": "2", "requests.memory": "768Mi"})
        );
    }

    #[test]
    fn refuses_with_upstream_message() {
        let q = quota(
            json!({"pods": "2", "requests.cpu": "1"}),
            json!({"pods": "2", "requests.cpu": "500m"}),
        );
        let usage = list(json!({"pods": "1", "requests.cpu": "250m"}));
        assert_eq!(
            charge(&q, &usage).unwrap_err(),
            "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
        );
    }

    #[test]
    fn updates_charge_only_the_increase() {
        let e = Evaluator::of("", "services");
        let old = json!({"metadata": {"resourceVersion": "5"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
        let new = json!({"metadata": {"resourceVersion": "6"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        let d = delta(e, &new, Some(&old));
        assert_eq!(d.keys().collect::<Vec<_>>(), vec!["services.nodeports"]);
        assert!(delta(e, &old, Some(&new)).is_empty());
        // Create on update (no previous version) is charged in full.
        assert_eq!(delta(e, &new, Some(&json!({}))).len(), 3);
    }
}
