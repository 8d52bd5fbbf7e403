//! The kubelet: assembles the node's context and runs its loops — node registration and
//! status, the node lease, pod sources (apiserver watch and static manifests), the pod workers,
//! the PLEG and the node API server — until shutdown.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use component_base::event_recorder::EventRecorder;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{runtime::watcher, Api};
use tokio::sync::watch;

use crate::{
    cri::Runtime,
    eviction,
    host::{self, Capacity, SystemInfo},
    lease, logs,
    metrics::Metrics,
    node_status::{NodeIdentity, NodeStatusReporter},
    options::KubeletConfiguration,
    pleg,
    pod_workers::{PodWorkers, SourcesReady},
    quantity, server, static_pods,
    stats::StatsProvider,
    sync::NodeContext,
};

/// Everything the kubelet needs to start.
pub struct KubeletDeps {
    pub client: Option<kube::Client>,
    pub runtime: Runtime,
    pub config: KubeletConfiguration,
    pub node_name: String,
    pub node_ip: Option<IpAddr>,
    pub root_dir: PathBuf,
    pub extra_labels: Vec<(String, String)>,
    pub cert_dir: PathBuf,
}

/// Why the kubelet could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("creating {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("serving certificate: {0}")]
    Tls(#[from] component_base::tls::TlsError),
    #[error("node API authentication: {0}")]
    Auth(#[from] crate::auth::AuthConfigError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The runtime's name and version (`containerd`, `1.6.20`), waiting for the runtime to answer.
async fn runtime_identity(
    runtime: &Runtime,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(String, String)> {
    loop {
        match runtime.version().await {
            Ok(v) => return Some((v.runtime_name, v.runtime_version)),
            Err(err) => tracing::warn!(%err, "container runtime not answering yet"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return None,
        }
    }
}

/// Runs the kubelet until `shutdown` flips.
pub async fn run(deps: KubeletDeps, mut shutdown: watch::Receiver<bool>) -> Result<(), StartError> {
    let config = Arc::new(deps.config);
    for dir in [deps.root_dir.join("pods"), config.pod_logs_dir.clone()] {
        std::fs::create_dir_all(&dir).map_err(|source| StartError::Dir {
            path: dir.clone(),
            source,
        })?;
    }
    let Some((runtime_name, runtime_version)) =
        runtime_identity(&deps.runtime, &mut shutdown).await
    else {
        return Ok(());
    };
    tracing::info!(runtime = %runtime_name, version = %runtime_version, node = %deps.node_name, "connected to the container runtime");
    let capacity = Capacity::detect(&deps.root_dir);
    let allocatable = capacity.allocatable(config.max_pods);
    let cpu = allocatable
        .get("cpu")
        .and_then(quantity::milli_cpu)
        .unwrap_or(0);
    let memory = allocatable
        .get("memory")
        .and_then(quantity::bytes)
        .unwrap_or(0);
    let node_ip = deps.node_ip.unwrap_or_else(host::default_address);
    let ctx = Arc::new(NodeContext {
        client: deps.client.clone(),
        runtime: deps.runtime.clone(),
        runtime_name,
        config: config.clone(),
        node_name: deps.node_name.clone(),
        node_ip: node_ip.to_string(),
        root_dir: deps.root_dir.clone(),
        allocatable: (cpu, memory),
        memory_capacity: capacity.memory_bytes as i64,
        tokens: Default::default(),
        recorder: deps
            .client
            .clone()
            .map(|c| Arc::new(EventRecorder::new(c, "kubelet", &deps.node_name))),
    });
    let metrics = Arc::new(Metrics::new(&deps.node_name)?);
    let thresholds = eviction::Thresholds::from_config(&config.eviction_hard);
    let pressure = Arc::new(eviction::Pressure::default());
    eviction::observe(&thresholds, &deps.root_dir, &pressure);
    let workers = PodWorkers::new(ctx.clone(), config.max_pods, pressure.clone());
    let sources_ready = Arc::new(SourcesReady::new(
        deps.client.is_some(),
        config.static_pod_path.is_some(),
    ));
    let mut tasks = tokio::task::JoinSet::new();

    let addr = SocketAddr::new(config.address, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let auth = Arc::new(crate::auth::NodeAuth::new(
        &deps.node_name,
        deps.client.as_ref(),
        &config.authentication,
        &config.authorization,
    )?);
    let client_ca = config.authentication.x509.client_ca_file.as_deref();
    let tls = match (&config.tls_cert_file, &config.tls_private_key_file) {
        (Some(cert), Some(key)) => {
            component_base::tls::server_config_with_client_ca(cert, key, client_ca)?
        }
        _ => {
            let hosts = vec![
                deps.node_name.clone(),
                node_ip.to_string(),
                "localhost".into(),
                "127.0.0.1".into(),
            ];
            let (cert, key) =
                component_base::tls::ensure_self_signed(&deps.cert_dir, "kubelet", &hosts)?;
            component_base::tls::server_config_with_client_ca(&cert, &key, client_ca)?
        }
    };
    let state = server::ServerState {
        runtime: deps.runtime.clone(),
        workers: workers.clone(),
        metrics: metrics.clone(),
        stats: StatsProvider::new(
            deps.runtime.clone(),
            deps.node_name.clone(),
            deps.root_dir.clone(),
        ),
    };
    let serve_shutdown = {
        let mut rx = shutdown.clone();
        async move {
            let _ = rx.changed().await;
        }
    };
    tasks.spawn(component_base::serve::serve(
        listener,
        Some(tls),
        server::router(state, auth),
        serve_shutdown,
        Duration::from_secs(2),
    ));

    tasks.spawn(eviction::run(
        thresholds,
        deps.root_dir.clone(),
        deps.runtime.clone(),
        workers.clone(),
        pressure.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(logs::run(
        deps.runtime.clone(),
        config.container_log_max_size.clone(),
        config.container_log_max_files,
        shutdown.clone(),
    ));
    tasks.spawn(pleg::run(
        deps.runtime.clone(),
        workers.clone(),
        sources_ready.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let static_source = config.static_pod_path.clone();
    if let Some(dir) = static_source.clone() {
        tasks.spawn(static_pods::run(
            dir,
            deps.node_name.clone(),
            config.file_check_frequency,
            workers.clone(),
            deps.client.clone(),
            sources_ready.clone(),
            shutdown.clone(),
        ));
    }

    match &deps.client {
        Some(client) => {
            let mut labels = BTreeMap::from([
                ("kubernetes.io/hostname".to_string(), deps.node_name.clone()),
                ("kubernetes.io/os".to_string(), "linux".to_string()),
                (
                    "kubernetes.io/arch".to_string(),
                    host::go_arch().to_string(),
                ),
                ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
                (
                    "beta.kubernetes.io/arch".to_string(),
                    host::go_arch().to_string(),
                ),
            ]);
            labels.extend(deps.extra_labels.iter().cloned());
            let reporter = NodeStatusReporter {
                client: client.clone(),
                runtime: deps.runtime.clone(),
                config: config.clone(),
                node: Arc::new(NodeIdentity {
                    name: deps.node_name.clone(),
                    address: node_ip,
                    labels,
                }),
                capacity,
                system: SystemInfo::detect(),
                pressure: pressure.clone(),
            };
            tasks.spawn(reporter.run(shutdown.clone()));
            if let Some(recorder) = ctx.recorder.clone() {
                let node = k8s_openapi::api::core::v1::ObjectReference {
                    kind: Some("Node".into()),
                    name: Some(deps.node_name.clone()),
                    uid: Some(deps.node_name.clone()),
                    namespace: Some("default".into()),
                    ..Default::default()
                };
                tasks.spawn(async move {
                    recorder
                        .record(
                            &node,
                            component_base::event_recorder::EventType::Normal,
                            "Starting",
                            "Start",
                            "Starting kubelet.",
                        )
                        .await
                });
            }
            tasks.spawn(lease::run(
                client.clone(),
                deps.node_name.clone(),
                config.node_lease_duration_seconds,
                shutdown.clone(),
            ));
            tasks.spawn(watch_api_pods(
                client.clone(),
                deps.node_name.clone(),
                workers.clone(),
                sources_ready.clone(),
                shutdown.clone(),
            ));
        }
        None => {
            tracing::info!("no kubeconfig: running in standalone mode (static pods only)");
        }
    }
    let _ = shutdown.changed().await;
    // Containers keep running across a kubelet restart; only the kubelet's own loops stop.
    tasks.shutdown().await;
    Ok(())
}

/// The apiserver source: pods bound to this node (field selector `spec.nodeName`).
async fn watch_api_pods(
    client: kube::Client,
    node: String,
    workers: Arc<PodWorkers>,
    ready: Arc<SourcesReady>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<Pod> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut stream = watcher(api, config).boxed();
    let mut listing: Vec<String> = Vec::new();
    let mut known: std::collections::HashSet<String> = Default::default();
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = shutdown.changed() => return,
        };
        let Some(event) = event else { return };
        match event {
            Ok(watcher::Event::Init) => listing.clear(),
            Ok(watcher::Event::InitApply(pod)) => {
                if let Some(uid) = pod.metadata.uid.clone() {
                    listing.push(uid);
                }
                workers.update(pod);
            }
            Ok(watcher::Event::InitDone) => {
                // Pods that vanished while the watch was down are gone.
                let current: std::collections::HashSet<String> = listing.drain(..).collect();
                for uid in known.difference(&current) {
                    workers.remove(uid);
                }
                known = current;
                ready.api_listed();
            }
            Ok(watcher::Event::Apply(pod)) => {
                if let Some(uid) = pod.metadata.uid.clone() {
                    known.insert(uid);
                }
                workers.update(pod);
            }
            Ok(watcher::Event::Delete(pod)) => {
                if let Some(uid) = pod.metadata.uid.as_deref() {
                    known.remove(uid);
                    workers.remove(uid);
                }
            }
            Err(err) => {
                tracing::warn!(%err, "watching pods");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
