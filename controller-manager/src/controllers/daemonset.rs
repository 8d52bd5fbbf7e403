//! DaemonSet controller: one pod per eligible node — a node whose labels satisfy the pod's
//! nodeSelector and required node affinity and whose NoSchedule/NoExecute taints the pod
//! tolerates. Each pod is pinned to its node by node affinity and left for the scheduler to
//! bind. RollingUpdate replaces pods of an old template while at most `maxUnavailable` nodes
//! lack an available pod. Each template is a ControllerRevision (`history`), so
//! `kubectl rollout history|undo daemonset` work.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use component_base::{
    informer::{key_of, split_key, Informer},
    workqueue::WorkQueue,
};
use k8s_openapi::{
    api::{
        apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus},
        core::v1::{
            Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
            Pod, Toleration,
        },
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::{
    api::{Api, DeleteParams, PostParams},
    ResourceExt,
};

use super::{changed, enqueue_changes, history, Context, ControllerError, Running};
use crate::{
    events::Recorder,
    expectations::Expectations,
    pods::{self, controller_of},
    selector,
};

struct Controller {
    ctx: Arc<Context>,
    sets: Arc<Informer<DaemonSet>>,
    nodes: Arc<Informer<Node>>,
    pods: Arc<Informer<Pod>>,
    revisions: Arc<Informer<ControllerRevision>>,
    expectations: Expectations,
    recorder: Recorder,
    queue: WorkQueue<String>,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        sets: ctx.informers.informer::<DaemonSet>(),
        nodes: ctx.informers.informer::<Node>(),
        pods: ctx.informers.informer::<Pod>(),
        revisions: ctx.informers.informer::<ControllerRevision>(),
        expectations: Expectations::default(),
        recorder: ctx.recorder("daemonset-controller"),
        queue: ctx.queue("daemonset"),
    });
    enqueue_changes(&c.sets, &c.queue);
    let weak = Arc::downgrade(&c);
    c.nodes.add_handler(move |_| {
        if let Some(c) = weak.upgrade() {
            for ds in c.sets.list() {
                c.queue.add(key_of(ds.as_ref()));
            }
        }
    });
    let weak = Arc::downgrade(&c);
    c.pods.add_handler(move |change| {
        let Some(c) = weak.upgrade() else { return };
        if let Some(k) = pods::controller_key(&changed(change).metadata, "DaemonSet") {
            c.expectations.pod_changed(&k, change);
            c.queue.add(k);
        }
    });
    Ok(Box::pin(async move {
        c.sets.wait_synced().await;
        c.nodes.wait_synced().await;
        c.pods.wait_synced().await;
        c.revisions.wait_synced().await;
        let queue = c.queue.clone();
        queue
            .run_workers(
                c.ctx.options.concurrent_daemonset_syncs,
                move |k: String| {
                    let c = c.clone();
                    async move { c.sync(&k).await }
                },
            )
            .await;
    }))
}

/// Tolerations every daemon pod gets, so that node problems do not evict or block it.
fn default_tolerations(host_network: bool) -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    let mut out = vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        out.push(t("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    out
}

fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = req.values.clone().unwrap_or_default();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if req.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let labels = node.labels();
    let name = node.name_any();
    let exprs = term
        .match_expressions
        .iter()
        .flatten()
        .all(|r| requirement_matches(r, labels.get(&r.key)));
    let fields = term
        .match_fields
        .iter()
        .flatten()
        .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(&name)));
    let empty = term.match_expressions.as_ref().is_none_or(Vec::is_empty)
        && term.match_fields.as_ref().is_none_or(Vec::is_empty);
    !empty && exprs && fields
}

/// Whether a daemon pod from `ds` belongs on `node`.
pub fn should_run(ds: &DaemonSet, node: &Node) -> bool {
    let Some(spec) = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref()) else {
        return false;
    };
    let labels = node.labels();
    if !spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(required) = required {
        if !required
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, node))
        {
            return false;
        }
    }
    let mut tolerations = spec.tolerations.clone().unwrap_or_default();
    tolerations.extend(default_tolerations(spec.host_network.unwrap_or(false)));
    node.spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|taint| tolerations.iter().any(|t| pods::tolerates(t, taint)))
}

/// The node a daemon pod is meant for: its binding, or the node its affinity pins it to.
fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = &spec.node_name {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|f| f.key == "metadata.name" && f.operator == "In")
        .and_then(|f| f.values.as_ref()?.first().cloned())
}

fn scaled(value: Option<&IntOrString>, total: i32, default: i32, round_up: bool) -> i32 {
    match value {
        None => default,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let v = f64::from(total) * pct / 100.0;
            (if round_up { v.ceil() } else { v.floor() }) as i32
        }
    }
}

impl Controller {
    fn pod_for(&self, ds: &DaemonSet, node: &str, hash: &str) -> Pod {
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let mut pod = pods::from_template(
            &template,
            pods::controller_ref(ds),
            &ds.namespace().unwrap_or_default(),
            &format!("{}-", ds.name_any()),
        );
        pod.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(history::HASH_LABEL.into(), hash.into());
        if let Some(spec) = pod.spec.as_mut() {
            let pin = NodeSelectorTerm {
                match_fields: Some(vec![NodeSelectorRequirement {
                    key: "metadata.name".into(),
                    operator: "In".into(),
                    values: Some(vec![node.to_string()]),
                }]),
                match_expressions: None,
            };
            let affinity = spec.affinity.get_or_insert_with(Affinity::default);
            let na = affinity
                .node_affinity
                .get_or_insert_with(NodeAffinity::default);
            let required = na
                .required_during_scheduling_ignored_during_execution
                .get_or_insert_with(|| NodeSelector {
                    node_selector_terms: Vec::new(),
                });
            if required.node_selector_terms.is_empty() {
                required.node_selector_terms.push(pin);
            } else {
                // Keep the label requirements, replace any field requirements by the pin.
                for term in required.node_selector_terms.iter_mut() {
                    term.match_fields = pin.match_fields.clone();
                }
            }
            let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
            for t in default_tolerations(spec.host_network.unwrap_or(false)) {
                if !tolerations.contains(&t) {
                    tolerations.push(t);
                }
            }
        }
        pod
    }

    #[tracing::instrument(skip(self), fields(daemonset = %k))]
    async fn sync(&self, k: &str) -> Result<Option<Duration>, ControllerError> {
        let Some(ds) = self.sets.get(k) else {
            self.expectations.delete(k);
            return Ok(None);
        };
        let (ns, name) = split_key(k);
        let spec = ds.spec.clone().unwrap_or_default();
        let Some(sel) = selector::from_api(Some(&spec.selector))? else {
            return Ok(None);
        };
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for pod in self.pods.list_in(ns) {
            let matches = selector::matches(&sel, pod.metadata.labels.as_ref());
            let mine = match controller_of(&pod.metadata) {
                Some(r) if r.uid == uid => {
                    if !matches {
                        pods::release(&api, pod.as_ref(), &uid).await?;
                    }
                    matches
                }
                None if matches
                    && pod.metadata.deletion_timestamp.is_none()
                    && ds.metadata.deletion_timestamp.is_none() =>
                {
                    pods::adopt(&api, pod.as_ref(), pods::controller_ref(ds.as_ref())).await?;
                    true
                }
                _ => false,
            };
            if let (true, Some(node)) = (mine, target_node(&pod)) {
                if pod.metadata.deletion_timestamp.is_none() {
                    by_node.entry(node).or_default().push(pod);
                }
            }
        }
        let hash = pods::template_hash(
            &spec.template,
            ds.status.as_ref().and_then(|s| s.collision_count),
        );
        if ds.metadata.deletion_timestamp.is_none() {
            self.record_history(&ds, &uid, &hash, &by_node).await?;
        }
        let min_ready = Duration::from_secs(spec.min_ready_seconds.unwrap_or(0).max(0) as u64);
        let now = jiff::Timestamp::now();
        let nodes = self.nodes.list();
        let eligible: Vec<String> = nodes
            .iter()
            .filter(|n| should_run(&ds, n))
            .map(|n| n.name_any())
            .collect();

        if self.expectations.satisfied(k) && ds.metadata.deletion_timestamp.is_none() {
            let mut create = Vec::new();
            let mut delete = Vec::new();
            for node in &nodes {
                let node_name = node.name_any();
                let running = by_node.get(&node_name).cloned().unwrap_or_default();
                if eligible.contains(&node_name) {
                    let (failed, mut alive): (Vec<_>, Vec<_>) =
                        running.into_iter().partition(|p| {
                            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
                        });
                    delete.extend(failed);
                    if alive.is_empty() {
                        create.push(node_name);
                    } else {
                        alive.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
                        delete.extend(alive.into_iter().skip(1));
                    }
                } else {
                    delete.extend(running);
                }
            }
            delete.extend(self.rolling_victims(&ds, &by_node, &eligible, &hash, min_ready, now));
            self.apply(&ds, k, &api, create, delete, &hash).await?;
        }

        let pods_on = |n: &String| by_node.get(n).cloned().unwrap_or_default();
        let scheduled: Vec<Arc<Pod>> = eligible.iter().flat_map(pods_on).collect();
        let updated = eligible
            .iter()
            .filter(|n| {
                pods_on(n)
                    .iter()
                    .any(|p| p.labels().get(history::HASH_LABEL) == Some(&hash))
            })
            .count() as i32;
        let available = eligible
            .iter()
            .filter(|n| {
                pods_on(n)
                    .iter()
                    .any(|p| pods::is_available(p, min_ready, now))
            })
            .count() as i32;
        let status = DaemonSetStatus {
            desired_number_scheduled: eligible.len() as i32,
            current_number_scheduled: eligible.iter().filter(|n| by_node.contains_key(*n)).count()
                as i32,
            number_misscheduled: by_node.keys().filter(|n| !eligible.contains(n)).count() as i32,
            number_ready: scheduled.iter().filter(|p| pods::is_ready(p)).count() as i32,
            number_available: Some(available),
            number_unavailable: Some((eligible.len() as i32 - available).max(0)),
            updated_number_scheduled: Some(updated),
            observed_generation: ds.metadata.generation,
            collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
            conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
        };
        if ds.status.as_ref() != Some(&status) {
            let mut updated_ds = (*ds).clone();
            updated_ds.status = Some(status);
            let ds_api: Api<DaemonSet> = Api::namespaced(self.ctx.client.clone(), ns);
            match ds_api
                .replace_status(name, &PostParams::default(), &updated_ds)
                .await
            {
                Ok(_) => {}
                Err(e) if pods::is_conflict(&e) || pods::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(scheduled
            .iter()
            .filter_map(|p| pods::until_available(p, min_ready, now))
            .min())
    }

    /// Makes the current template the newest ControllerRevision and drops revisions beyond
    /// `revisionHistoryLimit` that no pod runs.
    async fn record_history(
        &self,
        ds: &DaemonSet,
        uid: &str,
        hash: &str,
        by_node: &HashMap<String, Vec<Arc<Pod>>>,
    ) -> Result<(), ControllerError> {
        let spec = ds.spec.as_ref().cloned().unwrap_or_default();
        let owned = history::owned_by(
            self.revisions.list_in(&ds.namespace().unwrap_or_default()),
            uid,
        );
        let current = history::ensure(&self.ctx.client, ds, &owned, &spec.template, hash).await?;
        let mut live: HashSet<String> = by_node
            .values()
            .flatten()
            .filter_map(|p| p.labels().get(history::HASH_LABEL))
            .map(|h| history::revision_name(ds, h))
            .collect();
        live.insert(current);
        let limit = spec
            .revision_history_limit
            .unwrap_or(history::DEFAULT_HISTORY_LIMIT);
        history::truncate(&self.ctx.client, &owned, &live, limit).await?;
        Ok(())
    }

    /// Old-template pods to replace now: unavailable ones freely, available ones while the
    /// number of nodes without an available pod stays within maxUnavailable.
    fn rolling_victims(
        &self,
        ds: &DaemonSet,
        by_node: &HashMap<String, Vec<Arc<Pod>>>,
        eligible: &[String],
        hash: &str,
        min_ready: Duration,
        now: jiff::Timestamp,
    ) -> Vec<Arc<Pod>> {
        let strategy = ds
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.clone())
            .unwrap_or_default();
        if strategy.type_.as_deref() == Some("OnDelete") {
            return Vec::new();
        }
        let desired = eligible.len() as i32;
        let max_unavailable = scaled(
            strategy
                .rolling_update
                .as_ref()
                .and_then(|r| r.max_unavailable.as_ref()),
            desired,
            1,
            true,
        )
        .max(1);
        let mut unavailable = 0;
        let mut old_available = Vec::new();
        let mut victims = Vec::new();
        for node in eligible {
            let Some(pod) = by_node.get(node).and_then(|p| p.first()) else {
                unavailable += 1;
                continue;
            };
            let is_old = pod.labels().get(history::HASH_LABEL).map(String::as_str) != Some(hash);
            let is_available = pods::is_available(pod, min_ready, now);
            if !is_available {
                unavailable += 1;
                if is_old {
                    victims.push(pod.clone());
                }
            } else if is_old {
                old_available.push(pod.clone());
            }
        }
        let budget = (max_unavailable - unavailable).max(0) as usize;
        victims.extend(old_available.into_iter().take(budget));
        victims
    }

    async fn apply(
        &self,
        ds: &DaemonSet,
        k: &str,
        api: &Api<Pod>,
        create: Vec<String>,
        delete: Vec<Arc<Pod>>,
        hash: &str,
    ) -> Result<(), ControllerError> {
        if !create.is_empty() {
            self.expectations.expect_creations(k, create.len());
            for node in &create {
                match api
                    .create(&PostParams::default(), &self.pod_for(ds, node, hash))
                    .await
                {
                    Ok(p) => self.recorder.normal(
                        ds,
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.name_any()),
                    ),
                    Err(e) => {
                        self.expectations.creation_observed(k);
                        self.recorder
                            .warning(ds, "FailedCreate", format!("Error creating: {e}"));
                        return Err(e.into());
                    }
                }
            }
        }
        if !delete.is_empty() {
            self.expectations
                .expect_deletions(k, delete.iter().map(|p| key_of(p.as_ref())));
            for pod in &delete {
                match api.delete(&pod.name_any(), &DeleteParams::default()).await {
                    Ok(_) => self.recorder.normal(
                        ds,
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", pod.name_any()),
                    ),
                    Err(e) => self
                        .expectations
                        .deletion_failed(k, &key_of(pod.as_ref()), e)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn eligibility_honours_selector_affinity_and_taints() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": { "name": "agent" },
            "spec": {
                "selector": { "matchLabels": { "app": "agent" } },
                "template": { "metadata": { "labels": { "app": "agent" } }, "spec": {
                    "containers": [],
                    "nodeSelector": { "disk": "ssd" },
                    "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [
                        { "matchExpressions": [{ "key": "zone", "operator": "NotIn", "values": ["z9"] }] },
                    ]}}},
                }},
            },
        }))
        .unwrap();
        let node = |labels: serde_json::Value, taints: serde_json::Value| -> Node {
            serde_json::from_value(json!({ "metadata": { "name": "n", "labels": labels }, "spec": { "taints": taints } })).unwrap()
        };
        assert!(should_run(&ds, &node(json!({ "disk": "ssd" }), json!([]))));
        assert!(!should_run(&ds, &node(json!({}), json!([]))));
        assert!(!should_run(
            &ds,
            &node(json!({ "disk": "ssd", "zone": "z9" }), json!([]))
        ));
        assert!(!should_run(
            &ds,
            &node(
                json!({ "disk": "ssd" }),
                json!([{ "key": "dedicated", "value": "x", "effect": "NoSchedule" }])
            )
        ));
        // Node problems are tolerated by default.
        assert!(should_run(
            &ds,
            &node(
                json!({ "disk": "ssd" }),
                json!([{ "key": "node.kubernetes.io/unreachable", "effect": "NoExecute" }])
            )
        ));
        assert!(should_run(
            &ds,
            &node(
                json!({ "disk": "ssd" }),
                json!([{ "key": "other", "effect": "PreferNoSchedule" }])
            )
        ));
    }
}
