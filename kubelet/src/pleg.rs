//! The pod lifecycle event generator: relists the runtime's sandboxes and containers every
//! second and wakes the worker of every pod whose runtime state changed, so that a container
//! dying is noticed within about a second. Pods in the runtime that no source knows are cleaned
//! up once the sources have been listed.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::watch;

use crate::{
    cri::{Runtime, POD_UID_LABEL},
    metrics::Metrics,
    pod_workers::{PodWorkers, SourcesReady},
};

const RELIST_PERIOD: Duration = Duration::from_secs(1);

/// Per pod: (object id → state) over its sandboxes and containers.
type Snapshot = HashMap<String, (BTreeMap<String, i32>, HashMap<String, String>)>;

async fn relist(runtime: &Runtime) -> Result<Snapshot, crate::cri::CriError> {
    let mut pods: Snapshot = HashMap::new();
    for s in runtime.list_pod_sandboxes(HashMap::new()).await? {
        if let Some(uid) = s.labels.get(POD_UID_LABEL) {
            let entry = pods
                .entry(uid.clone())
                .or_insert_with(|| (BTreeMap::new(), s.labels.clone()));
            entry.0.insert(format!("sandbox/{}", s.id), s.state);
        }
    }
    for c in runtime.list_containers(HashMap::new()).await? {
        if let Some(uid) = c.labels.get(POD_UID_LABEL) {
            let entry = pods
                .entry(uid.clone())
                .or_insert_with(|| (BTreeMap::new(), c.labels.clone()));
            entry.0.insert(c.id.clone(), c.state);
        }
    }
    Ok(pods)
}

/// Relists until `shutdown` flips. `sources_ready` turns true once every pod source has
/// delivered its initial list, after which unknown pods are orphans.
pub async fn run(
    runtime: Runtime,
    workers: Arc<PodWorkers>,
    sources_ready: Arc<SourcesReady>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut previous: Snapshot = HashMap::new();
    let mut tick = tokio::time::interval(RELIST_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let started = Instant::now();
        let current = match relist(&runtime).await {
            Ok(c) => c,
            Err(err) => {
                tracing::debug!(%err, "relisting the runtime");
                continue;
            }
        };
        metrics
            .pleg_relist_duration
            .observe(started.elapsed().as_secs_f64());
        for (uid, (state, labels)) in &current {
            if previous.get(uid).map(|p| &p.0) != Some(state) {
                workers.resync(uid);
            }
            if sources_ready.all() && !workers.knows(uid) {
                workers.orphan(uid, labels);
            }
        }
        for uid in previous.keys() {
            if !current.contains_key(uid) {
                workers.resync(uid);
            }
        }
        previous = current;
    }
}
