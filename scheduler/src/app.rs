//! Assembles and runs kube-scheduler, as upstream's cmd/kube-scheduler/app: configuration,
//! client, informers, the secure port, leader election and the scheduling loop.

use std::{path::PathBuf, sync::Arc, time::Duration};

use component_base::{
    event_recorder::EventRecorder,
    health::{HealthChecks, Probe},
    leader_election,
};
use prometheus::Registry;
use tokio::{net::TcpListener, sync::watch};

use crate::{
    config::{ConfigError, KubeSchedulerConfiguration, DEFAULT_SCHEDULER_NAME},
    framework::profile::Profile,
    informers::{self, Synced},
    metrics::Metrics,
    options::Options,
    queue::SchedulingQueue,
    scheduler::Scheduler,
    server,
};

/// Why the scheduler stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Client(#[from] component_base::client::ClientError),
    #[error(transparent)]
    Tls(#[from] component_base::tls::TlsError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    LeaderElection(#[from] leader_election::LeaderElectionError),
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Runs until SIGTERM/SIGINT, or fails when leadership is lost.
pub async fn run(opts: Options) -> Result<(), AppError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = KubeSchedulerConfiguration::load(opts.config.as_deref(), &opts.overrides())?;
    let kubeconfig = opts.kubeconfig.clone().or_else(|| {
        Some(PathBuf::from(&cfg.client_connection.kubeconfig)).filter(|p| !p.as_os_str().is_empty())
    });
    let client = component_base::client::from_kubeconfig(kubeconfig.as_deref()).await?;

    let registry = Registry::new();
    let metrics = Arc::new(Metrics::new(&registry)?);
    let profiles = cfg
        .profiles
        .iter()
        .map(|p| Profile::new(p, cfg.percentage_of_nodes_to_score))
        .collect::<Result<Vec<_>, _>>()?;
    for p in &profiles {
        let (filters, scores) = p.describe();
        tracing::info!(profile = %p.name, ?filters, ?scores, preemption = p.preemption, "profile");
    }
    let queue = SchedulingQueue::new(
        Duration::from_secs(cfg.pod_initial_backoff_seconds),
        Duration::from_secs(cfg.pod_max_backoff_seconds),
        metrics.clone(),
    );
    let host = hostname();
    let recorder = Arc::new(EventRecorder::new(
        client.clone(),
        DEFAULT_SCHEDULER_NAME,
        &format!("{DEFAULT_SCHEDULER_NAME}-{host}"),
    ));
    let sched = Arc::new(Scheduler::new(
        client.clone(),
        profiles,
        queue,
        metrics,
        recorder,
        tokio::runtime::Handle::current(),
    ));

    let synced = Arc::new(Synced::default());
    tokio::spawn(informers::nodes(
        client.clone(),
        sched.clone(),
        synced.clone(),
    ));
    tokio::spawn(informers::pods(
        client.clone(),
        sched.clone(),
        synced.clone(),
    ));
    tokio::spawn(informers::pdbs(
        client.clone(),
        sched.clone(),
        synced.clone(),
    ));
    tokio::spawn(informers::namespaces(
        client.clone(),
        sched.clone(),
        synced.clone(),
    ));
    tokio::spawn(informers::workloads(
        client.clone(),
        sched.clone(),
        synced.clone(),
    ));

    let mut health = HealthChecks::new();
    let ready = synced.clone();
    health.add("informer-sync", Probe::Readiness, move || {
        let ok = ready.all();
        async move {
            if ok {
                Ok(())
            } else {
                Err("informers not synced".to_string())
            }
        }
    });
    let (cert, key) = match (&opts.tls_cert_file, &opts.tls_private_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let dir = opts.cert_dir.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("kube-scheduler-{}", opts.secure_port))
            });
            let hosts = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                host.clone(),
            ];
            component_base::tls::ensure_self_signed(&dir, "kube-scheduler", &hosts)?
        }
    };
    let tls = component_base::tls::server_config(&cert, &key)?;
    let addr = std::net::SocketAddr::new(opts.bind_address, opts.secure_port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let router = server::router(sched.clone(), registry, health);
    tokio::spawn(component_base::serve::serve(
        listener,
        Some(tls),
        router,
        stopped(),
        Duration::from_secs(5),
    ));
    tracing::info!(%addr, "serving securely");

    let lead = {
        let sched = sched.clone();
        let synced = synced.clone();
        async move {
            while !synced.all() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tracing::info!("caches synced; starting to schedule");
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let worker = sched.clone();
            std::thread::spawn(move || {
                worker.run();
                let _ = done_tx.send(());
            });
            let _ = done_rx.await;
        }
    };
    let le = &cfg.leader_election;
    let result = tokio::select! {
        r = async {
            if le.leader_elect {
                let mut config = leader_election::Config::new(
                    &le.resource_namespace,
                    &le.resource_name,
                    &format!("{host}_{}", uuid::Uuid::new_v4()),
                );
                config.lease_duration = cfg.lease_duration()?;
                config.renew_deadline = cfg.renew_deadline()?;
                config.retry_period = cfg.retry_period()?;
                leader_election::run(client.clone(), config, lead).await?;
            } else {
                lead.await;
            }
            Ok::<(), AppError>(())
        } => r,
        () = component_base::signals::shutdown_signal() => Ok(()),
    };
    sched.queue.close();
    let _ = stop_tx.send(true);
    result
}
