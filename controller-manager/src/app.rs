//! The process: API client, the secure port with health and metrics, leader election on the
//! `kube-system/kube-controller-manager` Lease, and — only while leading — the controllers on
//! shared informers.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use axum::routing::get;
use base64::Engine;
use component_base::{
    health::{HealthChecks, Probe},
    informer::InformerFactory,
    leader_election,
    workqueue::WorkQueueMetrics,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{api::Api, config::Kubeconfig};
use prometheus::{IntGaugeVec, Opts, Registry};

use crate::{
    clientbuilder::{ClientBuilderError, ControllerClientBuilder},
    controllers::{self, Context},
    options::Options,
};

/// Why the controller manager stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Client(#[from] component_base::client::ClientError),
    #[error(transparent)]
    Tls(#[from] component_base::tls::TlsError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{0}")]
    Config(String),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    LeaderElection(#[from] leader_election::LeaderElectionError),
    #[error("controller {name} failed to start: {source}")]
    Start {
        name: &'static str,
        source: controllers::ControllerError,
    },
    #[error("controller {name} has no client: {source}")]
    Credentials {
        name: &'static str,
        source: ClientBuilderError,
    },
}

/// The CA bundle to publish: `--root-ca-file`, else the kubeconfig's certificate authority.
fn root_ca(options: &Options) -> Result<Option<String>, AppError> {
    if let Some(path) = &options.root_ca_file {
        return std::fs::read_to_string(path).map(Some).map_err(|e| {
            AppError::Config(format!("reading --root-ca-file {}: {e}", path.display()))
        });
    }
    let Some(path) = &options.kubeconfig else {
        return Ok(None);
    };
    let kc = Kubeconfig::read_from(path).map_err(|e| AppError::Config(e.to_string()))?;
    let context = kc
        .current_context
        .as_deref()
        .and_then(|name| kc.contexts.iter().find(|c| c.name == name))
        .and_then(|c| c.context.as_ref());
    let cluster = kc
        .clusters
        .iter()
        .find(|c| context.is_none_or(|ctx| ctx.cluster == c.name))
        .and_then(|c| c.cluster.as_ref());
    let Some(cluster) = cluster else {
        return Ok(None);
    };
    if let Some(data) = &cluster.certificate_authority_data {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| AppError::Config(format!("kubeconfig certificate-authority-data: {e}")))?;
        return Ok(Some(String::from_utf8_lossy(&pem).into_owned()));
    }
    match &cluster.certificate_authority {
        Some(file) => {
            let file = Path::new(file);
            let file = if file.is_relative() {
                path.parent().unwrap_or(Path::new(".")).join(file)
            } else {
                file.to_path_buf()
            };
            std::fs::read_to_string(&file)
                .map(Some)
                .map_err(|e| AppError::Config(format!("reading {}: {e}", file.display())))
        }
        None => Ok(None),
    }
}

fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// Slack beyond the lease duration before a leader that stopped renewing counts as unhealthy.
const LEADER_HEALTH_SLACK: Duration = Duration::from_secs(20);

/// The `leaderElection` health check: while this process leads, the Lease must name it and
/// have been renewed within the lease duration (plus slack); a follower is always healthy.
fn leader_election_check(
    client: &kube::Client,
    options: &Options,
    identity: &str,
    leader_status: &IntGaugeVec,
) -> impl Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync + 'static {
    let api: Api<Lease> = Api::namespaced(client.clone(), &options.leader_elect_resource_namespace);
    let name = options.leader_elect_resource_name.clone();
    let identity = identity.to_string();
    let gauge = leader_status.with_label_values(&["kube-controller-manager"]);
    let limit = options.leader_elect_lease_duration + LEADER_HEALTH_SLACK;
    move || {
        let (api, name, identity, gauge) =
            (api.clone(), name.clone(), identity.clone(), gauge.clone());
        Box::pin(async move {
            if gauge.get() == 0 {
                return Ok(());
            }
            let lease = api.get(&name).await.map_err(|e| e.to_string())?;
            let spec = lease.spec.unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(identity.as_str()) {
                return Err("leading without holding the lease".into());
            }
            let renewed = spec.renew_time.map_or(0, |t| t.0.as_millisecond());
            let age = jiff::Timestamp::now().as_millisecond() - renewed;
            if age > limit.as_millis() as i64 {
                return Err(format!("lease not renewed for {age} ms"));
            }
            Ok(())
        })
    }
}

/// Runs the controller manager until a signal arrives or leadership is lost.
pub async fn run(options: Options) -> Result<(), AppError> {
    let unknown = controllers::unknown(&options.controllers);
    if !unknown.is_empty() {
        return Err(AppError::Config(format!(
            "unknown controllers in --controllers: {}",
            unknown.join(", ")
        )));
    }
    let config =
        component_base::client::config_from_kubeconfig(options.kubeconfig.as_deref()).await?;
    let client = component_base::client::build(&config)?;
    let clients = if options.use_service_account_credentials {
        ControllerClientBuilder::service_accounts(client.clone(), config)?
    } else {
        ControllerClientBuilder::Shared(client.clone())
    };
    let registry = Registry::new();
    let queue_metrics = WorkQueueMetrics::new(&registry)?;
    let leader_status = IntGaugeVec::new(
        Opts::new(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease.",
        ),
        &["name"],
    )?;
    component_base::metrics::register(&registry, &leader_status);
    leader_status
        .with_label_values(&["kube-controller-manager"])
        .set(0);
    let identity = identity();

    let ctx = Arc::new(Context {
        client: client.clone(),
        informers: Arc::new(InformerFactory::new(client.clone())),
        root_ca: root_ca(&options)?,
        options: options.clone(),
        queue_metrics,
        registry: registry.clone(),
        identity: identity.clone(),
    });

    let enabled: Vec<_> = controllers::all()
        .into_iter()
        .filter(|d| controllers::enabled(d, &options.controllers))
        .filter(|d| controllers::configured(d, &options))
        .collect();

    let mut health = HealthChecks::new();
    let failed: Arc<std::sync::Mutex<Vec<&'static str>>> = Arc::default();
    if options.leader_elect {
        health.add(
            "leaderElection",
            Probe::All,
            leader_election_check(&client, &options, &identity, &leader_status),
        );
    }
    // Ready once the shared caches the controllers read from hold a full list.
    let informers = ctx.informers.clone();
    health.add("informer-sync", Probe::Readiness, move || {
        let synced = informers.all_synced();
        async move {
            if synced {
                Ok(())
            } else {
                Err("informers have not synced yet".into())
            }
        }
    });
    for d in &enabled {
        let failed = failed.clone();
        let name = d.name;
        health.add(name, Probe::All, move || {
            let failed = failed.clone();
            async move {
                if failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&name)
                {
                    Err(format!("{name} stopped"))
                } else {
                    Ok(())
                }
            }
        });
    }
    let metrics_registry = registry.clone();
    let router = health.router().route(
        "/metrics",
        get(move || {
            let registry = metrics_registry.clone();
            async move {
                let (content_type, body) = component_base::metrics::render(&registry);
                ([(axum::http::header::CONTENT_TYPE, content_type)], body)
            }
        }),
    );
    let addr: SocketAddr = format!("{}:{}", options.bind_address, options.secure_port)
        .parse()
        .map_err(|e| AppError::Config(format!("--bind-address/--secure-port: {e}")))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let (cert, key) = component_base::tls::ensure_self_signed(
        &options.cert_dir,
        "kube-controller-manager",
        &hosts,
    )?;
    let tls = component_base::tls::server_config(&cert, &key)?;
    tokio::spawn(component_base::serve::serve(
        listener,
        Some(tls),
        router,
        component_base::signals::shutdown_signal(),
        Duration::from_secs(1),
    ));
    tracing::info!(%addr, "serving securely");

    let start_error: Arc<std::sync::Mutex<Option<AppError>>> = Arc::default();
    let lead = {
        let ctx = ctx.clone();
        let leader_status = leader_status.clone();
        let start_error = start_error.clone();
        async move {
            leader_status
                .with_label_values(&["kube-controller-manager"])
                .set(1);
            if let Err(err) = run_controllers(ctx, &clients, enabled, failed).await {
                *start_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
            }
        }
    };
    let result = if options.leader_elect {
        let mut config = leader_election::Config::new(
            &options.leader_elect_resource_namespace,
            &options.leader_elect_resource_name,
            &identity,
        );
        config.lease_duration = options.leader_elect_lease_duration;
        config.renew_deadline = options.leader_elect_renew_deadline;
        config.retry_period = options.leader_elect_retry_period;
        tokio::select! {
            r = leader_election::run(client, config, lead) => r.map_err(AppError::from),
            () = component_base::signals::shutdown_signal() => Ok(()),
        }
    } else {
        tokio::select! {
            () = lead => Ok(()),
            () = component_base::signals::shutdown_signal() => Ok(()),
        }
    };
    leader_status
        .with_label_values(&["kube-controller-manager"])
        .set(0);
    if let Some(err) = start_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(err);
    }
    result
}

/// Starts every enabled controller, each with its own client (see `clientbuilder`), on the
/// shared informers and runs them until they all end.
async fn run_controllers(
    ctx: Arc<Context>,
    clients: &ControllerClientBuilder,
    enabled: Vec<controllers::Descriptor>,
    failed: Arc<std::sync::Mutex<Vec<&'static str>>>,
) -> Result<(), AppError> {
    let mut running = Vec::new();
    for d in enabled {
        let client =
            clients
                .client(d.service_account)
                .await
                .map_err(|source| AppError::Credentials {
                    name: d.name,
                    source,
                })?;
        let controller_ctx = Arc::new(ctx.with_client(client));
        let future = (d.init)(&controller_ctx).map_err(|source| AppError::Start {
            name: d.name,
            source,
        })?;
        tracing::info!(controller = d.name, "started controller");
        let failed = failed.clone();
        running.push(tokio::spawn(async move {
            future.await;
            failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(d.name);
            tracing::error!(controller = d.name, "controller stopped");
        }));
    }
    ctx.informers.start();
    futures::future::join_all(running).await;
    Ok(())
}
