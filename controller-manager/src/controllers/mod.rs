//! The controllers and what they share: the process-wide informers, work-queue metrics, event
//! recording and configuration. Each controller is a module with an `init` that registers its
//! informer handlers and returns the future that runs its workers.

use std::{fmt::Debug, sync::Arc};

use component_base::{
    informer::{key_of, Change, Informer, InformerFactory},
    workqueue::{Backoff, WorkQueue, WorkQueueMetrics},
};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::{events::Recorder, options::Options};

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslicemirroring;
pub mod garbagecollector;
pub mod history;
pub mod job;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod root_ca;
pub mod service_pods;
pub mod serviceaccount;
pub mod slice_tracker;
pub mod statefulset;
pub mod taint_eviction;
pub mod ttlafterfinished;

/// Why a controller could not start or sync.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Selector(#[from] crate::selector::InvalidSelector),
    #[error("{0}")]
    Invalid(String),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Everything a controller gets from the process.
pub struct Context {
    /// The client the controller writes with (its own identity with
    /// `--use-service-account-credentials`).
    pub client: Client,
    pub informers: Arc<InformerFactory>,
    pub options: Options,
    pub queue_metrics: WorkQueueMetrics,
    /// The process's metrics registry, for controllers' own metrics.
    pub registry: prometheus::Registry,
    /// The PEM bundle published as `kube-root-ca.crt`.
    pub root_ca: Option<String>,
    /// This process's leader-election identity, used as the events' reporting instance.
    pub identity: String,
}

impl Context {
    /// This context with `client` as the one the controller writes with; the informers stay
    /// shared.
    pub fn with_client(&self, client: Client) -> Context {
        Context {
            client,
            informers: self.informers.clone(),
            options: self.options.clone(),
            queue_metrics: self.queue_metrics.clone(),
            registry: self.registry.clone(),
            root_ca: self.root_ca.clone(),
            identity: self.identity.clone(),
        }
    }

    /// A work queue named after its controller, for the `workqueue_*` metrics.
    pub fn queue<T: Clone + Eq + std::hash::Hash + Send + 'static>(
        &self,
        name: &str,
    ) -> WorkQueue<T> {
        WorkQueue::new(name, &self.queue_metrics, Backoff::default())
    }

    pub fn recorder(&self, controller: &str) -> Recorder {
        Recorder::new(self.client.clone(), controller, &self.identity)
    }
}

/// The object a change is about: the new one for an update.
pub fn changed<K>(change: &Change<K>) -> &Arc<K> {
    let (Change::Added(o) | Change::Updated { new: o, .. } | Change::Deleted(o)) = change;
    o
}

/// Enqueues the key of every object `informer` adds, updates or deletes.
pub fn enqueue_changes<K>(informer: &Informer<K>, queue: &WorkQueue<String>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let q = queue.clone();
    informer.add_handler(move |change| q.add(key_of(changed(change).as_ref())));
}

/// Enqueues the name of every namespace added or updated, for the per-namespace controllers.
pub fn enqueue_namespaces(namespaces: &Informer<Namespace>, queue: &WorkQueue<String>) {
    let q = queue.clone();
    namespaces.add_handler(move |change| match change {
        Change::Added(ns) | Change::Updated { new: ns, .. } => q.add(ns.name_any()),
        Change::Deleted(_) => {}
    });
}

/// Whether namespace `ns` is cached and not terminating (a terminating one refuses content).
pub fn namespace_active(namespaces: &Informer<Namespace>, ns: &str) -> bool {
    namespaces
        .get(ns)
        .is_some_and(|n| n.metadata.deletion_timestamp.is_none())
}

/// The future that runs one started controller.
pub type Running = BoxFuture<'static, ()>;

/// A controller as `--controllers` names it.
pub struct Descriptor {
    /// The upstream controller name, e.g. `deployment-controller`.
    pub name: &'static str,
    /// The ServiceAccount in kube-system it runs as with `--use-service-account-credentials`
    /// (upstream's names: several node controllers share `node-controller`).
    pub service_account: &'static str,
    /// The short names `--controllers` also accepts, e.g. `deployment`.
    pub aliases: &'static [&'static str],
    pub init: fn(&Arc<Context>) -> Result<Running, ControllerError>,
}

/// Every controller this binary has, in start order.
pub fn all() -> Vec<Descriptor> {
    vec![
        Descriptor {
            name: "serviceaccount-controller",
            service_account: "service-account-controller",
            aliases: &["serviceaccount"],
            init: serviceaccount::init,
        },
        Descriptor {
            name: "root-ca-certificate-publisher-controller",
            service_account: "root-ca-cert-publisher",
            aliases: &["root-ca-cert-publisher"],
            init: root_ca::init,
        },
        Descriptor {
            name: "replicaset-controller",
            service_account: "replicaset-controller",
            aliases: &["replicaset"],
            init: replicaset::init,
        },
        Descriptor {
            name: "deployment-controller",
            service_account: "deployment-controller",
            aliases: &["deployment"],
            init: deployment::init,
        },
        Descriptor {
            name: "endpointslice-controller",
            service_account: "endpointslice-controller",
            aliases: &["endpointslice"],
            init: endpointslice::init,
        },
        Descriptor {
            name: "endpoints-controller",
            service_account: "endpoint-controller",
            aliases: &["endpoint"],
            init: endpoints::init,
        },
        Descriptor {
            name: "endpointslice-mirroring-controller",
            service_account: "endpointslicemirroring-controller",
            aliases: &["endpointslicemirroring"],
            init: endpointslicemirroring::init,
        },
        Descriptor {
            name: "namespace-controller",
            service_account: "namespace-controller",
            aliases: &["namespace"],
            init: namespace::init,
        },
        Descriptor {
            name: "garbage-collector-controller",
            service_account: "generic-garbage-collector",
            aliases: &["garbagecollector"],
            init: garbagecollector::init,
        },
        Descriptor {
            name: "job-controller",
            service_account: "job-controller",
            aliases: &["job"],
            init: job::init,
        },
        Descriptor {
            name: "cronjob-controller",
            service_account: "cronjob-controller",
            aliases: &["cronjob"],
            init: cronjob::init,
        },
        Descriptor {
            name: "node-lifecycle-controller",
            service_account: "node-controller",
            aliases: &["nodelifecycle"],
            init: nodelifecycle::init,
        },
        Descriptor {
            name: "taint-eviction-controller",
            service_account: "node-controller",
            aliases: &[],
            init: taint_eviction::init,
        },
        Descriptor {
            name: "node-ipam-controller",
            service_account: "node-controller",
            aliases: &["nodeipam"],
            init: nodeipam::init,
        },
        Descriptor {
            name: "ttl-after-finished-controller",
            service_account: "ttl-after-finished-controller",
            aliases: &["ttl-after-finished"],
            init: ttlafterfinished::init,
        },
        Descriptor {
            name: "pod-garbage-collector-controller",
            service_account: "pod-garbage-collector",
            aliases: &["podgc"],
            init: podgc::init,
        },
        Descriptor {
            name: "statefulset-controller",
            service_account: "statefulset-controller",
            aliases: &["statefulset"],
            init: statefulset::init,
        },
        Descriptor {
            name: "daemonset-controller",
            service_account: "daemon-set-controller",
            aliases: &["daemonset"],
            init: daemonset::init,
        },
        Descriptor {
            name: "resourcequota-controller",
            service_account: "resourcequota-controller",
            aliases: &["resourcequota"],
            init: resourcequota::init,
        },
    ]
}

/// Whether `--controllers` enables `d`: an explicit `name` or `-name` wins over `*`.
pub fn enabled(d: &Descriptor, flags: &[String]) -> bool {
    let named = |f: &str| f == d.name || d.aliases.contains(&f);
    for f in flags {
        if let Some(off) = f.strip_prefix('-') {
            if named(off) {
                return false;
            }
        } else if named(f) {
            return true;
        }
    }
    flags.iter().any(|f| f == "*")
}

/// Whether the rest of the configuration lets `d` run (some controllers have their own switch).
pub fn configured(d: &Descriptor, options: &Options) -> bool {
    match d.name {
        "garbage-collector-controller" => options.enable_garbage_collector,
        "node-ipam-controller" => options.allocate_node_cidrs,
        _ => true,
    }
}

/// Names in `--controllers` that match no controller.
pub fn unknown(flags: &[String]) -> Vec<String> {
    let all = all();
    flags
        .iter()
        .map(|f| f.trim_start_matches('-'))
        .filter(|f| *f != "*" && !all.iter().any(|d| d.name == *f || d.aliases.contains(f)))
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_flag_semantics() {
        let flags = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        let job = all()
            .into_iter()
            .find(|d| d.name == "job-controller")
            .unwrap();
        assert!(enabled(&job, &flags("*")));
        assert!(!enabled(&job, &flags("*,-job")));
        assert!(!enabled(&job, &flags("*,-job-controller")));
        assert!(enabled(&job, &flags("job")));
        assert!(!enabled(&job, &flags("deployment")));
        assert_eq!(unknown(&flags("*,-job,bogus")), vec!["bogus"]);
    }
}
