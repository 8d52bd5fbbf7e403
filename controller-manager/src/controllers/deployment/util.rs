//! Deployment helpers shared by the strategies: the pod-template-hash, revisions and their
//! annotations, surge and unavailability budgets, and the replica arithmetic across ReplicaSets.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, ReplicaSet},
        core::v1::PodTemplateSpec,
    },
    apimachinery::pkg::util::intstr::IntOrString,
};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const HASH_LABEL: &str = "pod-template-hash";

/// Deployment annotations that are not copied onto its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// Drops nulls and empty objects and arrays: Go's semantic equality treats an empty
/// struct, map or slice the same as an absent one.
fn prune_empty(v: &mut serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Object(m) => {
            m.retain(|_, child| !prune_empty(child));
            m.is_empty()
        }
        serde_json::Value::Array(a) => {
            for child in a.iter_mut() {
                prune_empty(child);
            }
            a.is_empty()
        }
        _ => false,
    }
}

/// Whether two templates are the same once the hash label is ignored.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(HASH_LABEL);
        }
        let mut v = serde_json::to_value(&t).unwrap_or_default();
        prune_empty(&mut v);
        v
    };
    strip(a) == strip(b)
}

/// The revision a ReplicaSet (or Deployment) carries, 0 when none.
pub fn revision(annotations: Option<&BTreeMap<String, String>>) -> i64 {
    annotations
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub fn rs_revision(rs: &ReplicaSet) -> i64 {
    revision(rs.metadata.annotations.as_ref())
}

/// The annotations a ReplicaSet of `d` carries: the deployment's own (minus the bookkeeping
/// ones), its revision and the replica figures.
pub fn rs_annotations(
    d: &Deployment,
    current: Option<&BTreeMap<String, String>>,
    revision: i64,
) -> BTreeMap<String, String> {
    let mut out = current.cloned().unwrap_or_default();
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if !NOT_COPIED.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    let old_revision = self::revision(Some(&out));
    if old_revision < revision {
        out.insert(REVISION.into(), revision.to_string());
    }
    out.insert(DESIRED_REPLICAS.into(), replicas(d).to_string());
    out.insert(
        MAX_REPLICAS.into(),
        (replicas(d) + max_surge(d)).to_string(),
    );
    out
}

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

fn scaled(value: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match value {
        None => {
            let v = total as f64 * 0.25;
            (if round_up { v.ceil() } else { v.floor() }) as i32
        }
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(25.0);
            let v = total as f64 * pct / 100.0;
            (if round_up { v.ceil() } else { v.floor() }) as i32
        }
    }
}

fn budgets(d: &Deployment) -> (i32, i32) {
    if is_recreate(d) {
        return (0, 0);
    }
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let total = replicas(d);
    let surge = scaled(rolling.and_then(|r| r.max_surge.as_ref()), total, true);
    let unavailable = scaled(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        total,
        false,
    );
    // Both zero would deadlock a rollout: allow one unavailable pod.
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

pub fn max_surge(d: &Deployment) -> i32 {
    budgets(d).0
}

/// maxUnavailable, never more than the desired replicas.
pub fn max_unavailable(d: &Deployment) -> i32 {
    budgets(d).1.min(replicas(d))
}

pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// Sum of spec replicas over `sets`.
pub fn total_spec(sets: &[Arc<ReplicaSet>]) -> i32 {
    sets.iter().map(|rs| spec_replicas(rs)).sum()
}

/// Sum of available replicas over `sets`.
pub fn total_available(sets: &[Arc<ReplicaSet>]) -> i32 {
    sets.iter().map(|rs| available(rs)).sum()
}

/// Replicas the new ReplicaSet should have now: all of them for Recreate; for RollingUpdate as
/// many as the surge budget allows.
pub fn new_rs_replicas(d: &Deployment, all: &[Arc<ReplicaSet>], new_current: i32) -> i32 {
    if is_recreate(d) {
        return replicas(d);
    }
    let current = total_spec(all);
    let max_total = replicas(d) + max_surge(d);
    if current >= max_total {
        return new_current;
    }
    let up = (max_total - current).min(replicas(d) - new_current);
    new_current + up.max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};

    fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn surge_rounds_up_and_unavailable_rounds_down() {
        let d = deployment(
            10,
            IntOrString::String("25%".into()),
            IntOrString::String("25%".into()),
        );
        assert_eq!((max_surge(&d), max_unavailable(&d)), (3, 2));
        let d = deployment(3, IntOrString::Int(0), IntOrString::Int(0));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 1));
    }

    #[test]
    fn hash_depends_on_template_and_collisions_only() {
        let t = PodTemplateSpec::default();
        assert_eq!(
            crate::pods::template_hash(&t, None),
            crate::pods::template_hash(&t, None)
        );
        assert_ne!(
            crate::pods::template_hash(&t, None),
            crate::pods::template_hash(&t, Some(1))
        );
        assert!(crate::pods::template_hash(&t, None)
            .bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)));
        let mut labelled = t.clone();
        labelled.metadata = Some(Default::default());
        labelled.metadata.as_mut().unwrap().labels =
            Some([(HASH_LABEL.to_string(), "x".to_string())].into());
        assert!(equal_ignore_hash(&t, &labelled));
        let with_empty: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "spec": { "containers": [{ "name": "c", "resources": {} }] }
        }))
        .unwrap();
        let without: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "spec": { "containers": [{ "name": "c" }] }
        }))
        .unwrap();
        assert!(equal_ignore_hash(&with_empty, &without));
    }
}
