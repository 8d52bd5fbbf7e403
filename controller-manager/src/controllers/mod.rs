//! The controllers and what they share: the process-wide informers, work-queue metrics, event
//! recording and configuration. Each controller is a module with an `init` that registers its
//! informer handlers and returns the future that runs its workers.

use std::sync::Arc;

use component_base::{
    informer::InformerFactory,
    workqueue::{Backoff, WorkQueue, WorkQueueMetrics},
};
use futures::future::BoxFuture;
use kube::Client;

use crate::{events::Recorder, options::Options};

pub mod deployment;
pub mod replicaset;
pub mod root_ca;
pub mod serviceaccount;

/// Why a controller could not start or sync.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Selector(#[from] crate::selector::InvalidSelector),
    #[error("{0}")]
    Invalid(String),
}

/// Everything a controller gets from the process.
pub struct Context {
    pub client: Client,
    pub informers: Arc<InformerFactory>,
    pub options: Options,
    pub queue_metrics: WorkQueueMetrics,
    /// The PEM bundle published as `kube-root-ca.crt`.
    pub root_ca: Option<String>,
    /// This process's leader-election identity, used as the events' reporting instance.
    pub identity: String,
}

impl Context {
    /// A work queue named after its controller, for the `workqueue_*` metrics.
    pub fn queue<T: Clone + Eq + std::hash::Hash + Send + 'static>(&self, name: &str) -> WorkQueue<T> {
        WorkQueue::new(name, &self.queue_metrics, Backoff::default())
    }

    pub fn recorder(&self, controller: &str) -> Recorder {
        Recorder::new(self.client.clone(), controller, &self.identity)
    }
}

/// The future that runs one started controller.
pub type Running = BoxFuture<'static, ()>;

/// A controller as `--controllers` names it.
pub struct Descriptor {
    /// The upstream controller name, e.g. `deployment-controller`.
    pub name: &'static str,
    /// The short names `--controllers` also accepts, e.g. `deployment`.
    pub aliases: &'static [&'static str],
    pub init: fn(&Arc<Context>) -> Result<Running, ControllerError>,
}

/// Every controller this binary has, in start order.
pub fn all() -> Vec<Descriptor> {
    vec![
        Descriptor { name: "serviceaccount-controller", aliases: &["serviceaccount"], init: serviceaccount::init },
        Descriptor { name: "root-ca-certificate-publisher-controller", aliases: &["root-ca-cert-publisher"], init: root_ca::init },
        Descriptor { name: "replicaset-controller", aliases: &["replicaset"], init: replicaset::init },
        Descriptor { name: "deployment-controller", aliases: &["deployment"], init: deployment::init },
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
        let job = all().into_iter().find(|d| d.name == "job-controller").unwrap();
        assert!(enabled(&job, &flags("*")));
        assert!(!enabled(&job, &flags("*,-job")));
        assert!(!enabled(&job, &flags("*,-job-controller")));
        assert!(enabled(&job, &flags("job")));
        assert!(!enabled(&job, &flags("deployment")));
        assert_eq!(unknown(&flags("*,-job,bogus")), vec!["bogus"]);
    }
}
