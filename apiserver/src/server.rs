//! Assembly of a running kube-apiserver: storage, caches, admission, bootstrap objects and the
//! HTTPS listener.

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Duration};

use anyhow::Context;
use component_base::health::{HealthChecks, Probe};

use crate::{
    admission::{self, Chain},
    auth, endpoints,
    metrics::Metrics,
    options::Options,
    registry::{
        bootstrap, catalog,
        service::{PortRange, ServiceIpRanges},
        ResourceDef,
    },
    storage::{compactor, reflector::Reflector, Cache, Etcd},
};

/// Settings derived from the flags.
pub struct Config {
    pub service_ip_range: ServiceIpRanges,
    pub node_port_range: PortRange,
    pub secure_port: u16,
    pub namespace_lifecycle: bool,
}

/// Everything a request handler needs.
pub struct ApiServer {
    pub etcd: Etcd,
    /// The etcd prefix with a trailing slash, e.g. `/registry/`.
    pub root: String,
    caches: Arc<HashMap<String, Arc<Cache>>>,
    pub reflector: Reflector,
    pub admission: Chain,
    pub metrics: Metrics,
    pub config: Config,
    pub advertise_address: IpAddr,
    /// TLS to kubelets, with the apiserver's kubelet client certificate.
    pub kubelet_tls: tokio_rustls::TlsConnector,
}

impl ApiServer {
    /// The watch cache of a resource's storage.
    pub fn cache(&self, def: &ResourceDef) -> &Arc<Cache> {
        let prefix = def.storage_prefix(&self.root);
        // Every catalog resource has a cache (built from the same catalog at start-up).
        match self.caches.get(&prefix) {
            Some(c) => c,
            None => unreachable!("no cache for {prefix}"),
        }
    }

    /// Every cache with its storage prefix.
    pub fn cache_entries(&self) -> impl Iterator<Item = (&String, &Arc<Cache>)> {
        self.caches.iter()
    }

    /// Connects to etcd, fills the caches and builds the server state.
    pub async fn new(options: &Options) -> anyhow::Result<ApiServer> {
        let root = format!("{}/", options.etcd_prefix.trim_end_matches('/'));
        let metrics = Metrics::new().context("registering metrics")?;
        let etcd = Etcd::connect(&options.etcd_servers, Some(metrics.etcd_duration.clone()))
            .await
            .context("connecting to etcd")?;
        let mut caches = HashMap::new();
        for def in catalog::RESOURCES {
            let prefix = def.storage_prefix(&root);
            if let Some(owner) = catalog::owner_of_storage(def.storage) {
                caches
                    .entry(prefix)
                    .or_insert_with(|| Arc::new(Cache::new(owner)));
            }
        }
        let caches = Arc::new(caches);
        let reflector = Reflector::start(etcd.clone(), root.clone(), caches.clone())
            .await
            .context("listing etcd to fill the watch caches")?;
        let mut plugins: Vec<String> = admission::DEFAULT_PLUGINS
            .iter()
            .map(|s| s.to_string())
            .filter(|p| !options.disable_admission_plugins.contains(p))
            .collect();
        for p in &options.enable_admission_plugins {
            if !plugins.contains(p) {
                plugins.push(p.clone());
            }
        }
        let admission = Chain::new(&plugins).map_err(anyhow::Error::msg)?;
        Ok(ApiServer {
            etcd,
            root,
            caches,
            reflector,
            admission,
            metrics,
            config: Config {
                service_ip_range: ServiceIpRanges::parse(&options.service_cluster_ip_range)
                    .map_err(anyhow::Error::msg)
                    .context("--service-cluster-ip-range")?,
                node_port_range: PortRange::parse(&options.service_node_port_range)
                    .map_err(anyhow::Error::msg)
                    .context("--service-node-port-range")?,
                secure_port: options.secure_port,
                namespace_lifecycle: plugins.iter().any(|p| p == "NamespaceLifecycle"),
            },
            advertise_address: advertise_address(options),
            kubelet_tls: endpoints::kubelet_proxy::tls_connector(options)
                .context("kubelet client TLS")?,
        })
    }
}

/// The address other components reach this apiserver at.
fn advertise_address(options: &Options) -> IpAddr {
    if let Some(a) = options.advertise_address {
        return a;
    }
    if !options.bind_address.is_unspecified() && !options.bind_address.is_loopback() {
        return options.bind_address;
    }
    // The source address of a route to a public address is the host's primary address;
    // nothing is sent.
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Runs kube-apiserver until SIGTERM.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let server = Arc::new(ApiServer::new(&options).await?);
    bootstrap::run(&server)
        .await
        .map_err(|e| anyhow::anyhow!("creating bootstrap objects: {}", e.message))?;
    let auth = Arc::new(auth::Auth::new(server.clone(), &options.auth)?);
    auth.bootstrap()
        .await
        .map_err(|e| anyhow::anyhow!("creating the bootstrap RBAC policy: {}", e.message))?;
    let advertise = server.advertise_address;
    tokio::spawn(bootstrap::reconcile_endpoints(server.clone(), advertise));
    tokio::spawn(compactor::run(
        server.etcd.clone(),
        format!("{}compact_rev_key", server.root),
        options.etcd_compaction_interval,
    ));

    let (cert, key) = match (&options.tls_cert_file, &options.tls_private_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => {
            let mut hosts = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "kubernetes".to_string(),
                "kubernetes.default".to_string(),
                "kubernetes.default.svc".to_string(),
                server.config.service_ip_range.first().to_string(),
                advertise.to_string(),
            ];
            hosts.dedup();
            component_base::tls::ensure_self_signed(&options.cert_dir, "apiserver", &hosts)
                .context("generating a self-signed serving certificate")?
        }
        _ => anyhow::bail!("--tls-cert-file and --tls-private-key-file go together"),
    };
    let tls = component_base::tls::server_config_with_client_ca(
        &cert,
        &key,
        options.auth.client_ca_file.as_deref(),
    )?;

    let mut health = HealthChecks::new();
    let etcd = server.etcd.clone();
    health.add("etcd", Probe::All, move || {
        let etcd = etcd.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(2), etcd.current_revision())
                .await
                .map_err(|_| "etcd did not answer in 2s".to_string())?
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    });
    let router = auth::wrap(endpoints::router(server.clone(), health), auth);
    let listener = tokio::net::TcpListener::bind((options.bind_address, options.secure_port))
        .await
        .with_context(|| {
            format!(
                "listening on {}:{}",
                options.bind_address, options.secure_port
            )
        })?;
    tracing::info!(address = %listener.local_addr()?, %advertise, "serving securely");
    component_base::serve::serve(
        listener,
        Some(tls),
        router,
        component_base::signals::shutdown_signal(),
        options.shutdown_delay,
    )
    .await;
    Ok(())
}
