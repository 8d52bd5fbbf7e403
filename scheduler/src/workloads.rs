//! The label selectors of Services, ReplicationControllers, ReplicaSets and StatefulSets: all
//! PodTopologySpread needs to build a default constraint's selector for a pod that sets none,
//! as upstream's `helper.DefaultSelector`. Only the selectors are kept.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::{framework::PodInfo, selectors::Labels};

/// The workload kinds whose selectors are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Service,
    ReplicationController,
    ReplicaSet,
    StatefulSet,
}

/// A workload's selector: a plain label set (Services, ReplicationControllers) or a
/// `LabelSelector` (ReplicaSets, StatefulSets).
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    Set(Labels),
    LabelSelector(LabelSelector),
}

#[derive(Debug, Default)]
pub struct Workloads {
    /// Namespace -> Service name -> selector (Services without a selector are not kept).
    services: HashMap<String, HashMap<String, Labels>>,
    /// `namespace/name` -> selector, per controller kind.
    replication_controllers: HashMap<String, Labels>,
    replica_sets: HashMap<String, LabelSelector>,
    stateful_sets: HashMap<String, LabelSelector>,
}

/// Shared between the informers that fill it and the plugins that read it.
pub type SharedWorkloads = Arc<RwLock<Workloads>>;

fn set_matches(set: &Labels, labels: &Labels) -> bool {
    set.iter().all(|(k, v)| labels.get(k) == Some(v))
}

impl Workloads {
    /// Records (`Some`) or forgets (`None`) the selector of `namespace/name`.
    pub fn set(&mut self, kind: Kind, namespace: &str, name: &str, selector: Option<Selector>) {
        let key = format!("{namespace}/{name}");
        match (kind, selector) {
            (Kind::Service, Some(Selector::Set(s))) => {
                self.services
                    .entry(namespace.to_string())
                    .or_default()
                    .insert(name.to_string(), s);
            }
            (Kind::Service, _) => {
                if let Some(m) = self.services.get_mut(namespace) {
                    m.remove(name);
                    if m.is_empty() {
                        self.services.remove(namespace);
                    }
                }
            }
            (Kind::ReplicationController, Some(Selector::Set(s))) => {
                self.replication_controllers.insert(key, s);
            }
            (Kind::ReplicationController, _) => {
                self.replication_controllers.remove(&key);
            }
            (Kind::ReplicaSet, Some(Selector::LabelSelector(s))) => {
                self.replica_sets.insert(key, s);
            }
            (Kind::ReplicaSet, _) => {
                self.replica_sets.remove(&key);
            }
            (Kind::StatefulSet, Some(Selector::LabelSelector(s))) => {
                self.stateful_sets.insert(key, s);
            }
            (Kind::StatefulSet, _) => {
                self.stateful_sets.remove(&key);
            }
        }
    }

    /// `namespace/name` of every object of `kind` kept, for reconciling after a relist.
    pub fn keys(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::Service => self
                .services
                .iter()
                .flat_map(|(ns, m)| m.keys().map(move |n| format!("{ns}/{n}")))
                .collect(),
            Kind::ReplicationController => self.replication_controllers.keys().cloned().collect(),
            Kind::ReplicaSet => self.replica_sets.keys().cloned().collect(),
            Kind::StatefulSet => self.stateful_sets.keys().cloned().collect(),
        }
    }

    /// The selector default spread constraints use for `pod`: the selectors of the Services
    /// selecting it merged, plus those of its controlling ReplicationController, ReplicaSet or
    /// StatefulSet; `None` when that selects nothing in particular (no defaults then).
    pub fn default_selector(&self, pod: &PodInfo) -> Option<LabelSelector> {
        let mut set = Labels::new();
        for selector in self.services.get(&pod.namespace).into_iter().flatten() {
            if set_matches(selector.1, &pod.labels) {
                set.extend(selector.1.clone());
            }
        }
        let mut expressions = Vec::new();
        let owner = pod
            .object
            .iter()
            .flat_map(|p| p.metadata.owner_references.iter().flatten())
            .find(|o| o.controller == Some(true));
        if let Some(owner) = owner {
            let key = format!("{}/{}", pod.namespace, owner.name);
            let from_selector = |s: &LabelSelector, out: &mut Vec<LabelSelectorRequirement>| {
                for (k, v) in s.match_labels.iter().flatten() {
                    out.push(LabelSelectorRequirement {
                        key: k.clone(),
                        operator: "In".into(),
                        values: Some(vec![v.clone()]),
                    });
                }
                out.extend(s.match_expressions.iter().flatten().cloned());
            };
            match (owner.api_version.as_str(), owner.kind.as_str()) {
                ("v1", "ReplicationController") => {
                    if let Some(s) = self.replication_controllers.get(&key) {
                        set.extend(s.clone());
                    }
                }
                ("apps/v1", "ReplicaSet") => {
                    if let Some(s) = self.replica_sets.get(&key) {
                        from_selector(s, &mut expressions);
                    }
                }
                ("apps/v1", "StatefulSet") => {
                    if let Some(s) = self.stateful_sets.get(&key) {
                        from_selector(s, &mut expressions);
                    }
                }
                _ => {}
            }
        }
        if set.is_empty() && expressions.is_empty() {
            return None;
        }
        Some(LabelSelector {
            match_labels: (!set.is_empty()).then_some(set),
            match_expressions: (!expressions.is_empty()).then_some(expressions),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(owner: serde_json::Value) -> PodInfo {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d", "labels": {"app": "web", "tier": "fe"},
                "ownerReferences": owner},
            "spec": {"containers": [{"name": "c"}]}
        }))
        .unwrap();
        PodInfo::new(Arc::new(p))
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_selector_merges_services_and_the_controller() {
        let mut w = Workloads::default();
        let none = pod(json!([]));
        assert_eq!(w.default_selector(&none), None);
        let svc = |w: &mut Workloads, ns: &str, name: &str, sel: &[(&str, &str)]| {
            w.set(Kind::Service, ns, name, Some(Selector::Set(labels(sel))))
        };
        svc(&mut w, "d", "web", &[("app", "web")]);
        svc(&mut w, "d", "other", &[("app", "db")]);
        svc(&mut w, "e", "elsewhere", &[("tier", "fe")]);
        let sel = w.default_selector(&none).unwrap();
        assert_eq!(sel.match_labels, Some(labels(&[("app", "web")])));
        assert_eq!(sel.match_expressions, None);

        w.set(
            Kind::ReplicaSet,
            "d",
            "rs",
            Some(Selector::LabelSelector(
                serde_json::from_value(json!({"matchLabels": {"tier": "fe"}})).unwrap(),
            )),
        );
        let owned = pod(
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
            "uid": "u", "controller": true}]),
        );
        let sel = w.default_selector(&owned).unwrap();
        assert_eq!(sel.match_labels, Some(labels(&[("app", "web")])));
        let exprs = sel.match_expressions.unwrap();
        assert_eq!(exprs.len(), 1);
        assert_eq!(exprs[0].key, "tier");

        w.set(Kind::Service, "d", "web", None);
        let sel = w.default_selector(&owned).unwrap();
        assert_eq!(sel.match_labels, None);
        let mut keys = w.keys(Kind::Service);
        keys.sort();
        assert_eq!(keys, ["d/other", "e/elsewhere"]);
    }
}
