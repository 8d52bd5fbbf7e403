//! The running proxy: watches feeding the change tracker, the batched sync loop (at most one
//! sync per `minSyncPeriod`, a full resync every `syncPeriod`), and the health and metrics
//! servers.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{routing::get, Router};
use futures::StreamExt;
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kube::{
    runtime::watcher::{self, Event},
    Api,
};
use prometheus::IntCounter;
use tokio::{sync::watch, time::Instant};
use tracing::Instrument;

use crate::{
    config::{ProxyConfig, ProxyMode},
    conntrack,
    healthcheck::{ProxierHealth, ServiceHealthServers},
    iptables::{self, IptProxier},
    metrics::Metrics,
    mode,
    model::ServicePortMap,
    net::Family,
    nftables::{self, NftProxier},
    proxier::{self, ProxyError, SyncReport},
    tracker::{Changes, Tracker},
    userspace::{self, UserspaceProxier},
};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("binding {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("no iptables backend works on this host")]
    NoIptables,
}

/// The mode-specific proxier.
pub enum Proxier {
    Nftables(NftProxier),
    Iptables(IptProxier),
    Userspace(UserspaceProxier),
}

impl Proxier {
    async fn sync(&mut self, changes: &Changes, full: bool) -> Result<SyncReport, ProxyError> {
        match self {
            Proxier::Nftables(p) => p.sync(changes, full).await,
            Proxier::Iptables(p) => p.sync(changes, full).await,
            Proxier::Userspace(p) => p.sync(changes, full).await,
        }
    }

    fn ports(&self) -> &ServicePortMap {
        match self {
            Proxier::Nftables(p) => p.ports(),
            Proxier::Iptables(p) => p.ports(),
            Proxier::Userspace(p) => p.ports(),
        }
    }

    fn invalidate(&mut self) {
        match self {
            Proxier::Nftables(p) => p.invalidate(),
            Proxier::Iptables(p) => p.invalidate(),
            Proxier::Userspace(_) => {}
        }
    }
}

/// Removes what every mode may have installed (`--cleanup`).
pub async fn cleanup() -> Result<(), ProxyError> {
    nftables::cleanup().await?;
    iptables::cleanup().await?;
    userspace::cleanup().await?;
    Ok(())
}

/// The IP families this host has.
fn families() -> Vec<Family> {
    let mut f = vec![Family::V4];
    if std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|s| !s.trim().is_empty()) {
        f.push(Family::V6);
    }
    f
}

/// Runs the proxy until `shutdown` completes.
pub async fn run(
    cfg: ProxyConfig,
    client: kube::Client,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let cfg = Arc::new(cfg);
    let selection = mode::select(cfg.requested_mode).await;
    if selection.fell_back_from.is_some() {
        tracing::warn!(mode = selection.mode.as_str(), reason = %selection.reason, "falling back to another proxy mode");
    }
    tracing::info!(mode = selection.mode.as_str(), reason = %selection.reason, node = %cfg.hostname, "using proxy mode");
    mode::record_fallback(client.clone(), &cfg.hostname, &selection).await;
    let mut proxier = match selection.mode {
        ProxyMode::Nftables => Proxier::Nftables(NftProxier::new(cfg.clone(), families())),
        ProxyMode::Iptables => {
            let backend = iptables::Backend::detect()
                .await
                .ok_or(RunError::NoIptables)?;
            tracing::info!(
                backend = backend.name,
                "using the iptables backend the host uses"
            );
            let families = backend.families(&families()).await;
            Proxier::Iptables(IptProxier::new(cfg.clone(), backend, families))
        }
        ProxyMode::Userspace => Proxier::Userspace(UserspaceProxier::new(cfg.clone())),
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let tracker = Arc::new(Tracker::default());
    let metrics = Metrics::new(selection.mode)?;
    let health = ProxierHealth::new(
        tracker.clone(),
        (cfg.sync_period * 2).max(Duration::from_secs(10)),
        cfg.hostname.clone(),
    );
    if let Some(addr) = cfg.healthz_bind_address {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::Bind {
                what: "healthz",
                addr,
                source,
            })?;
        let router = health.router();
        let stop = stopped(stop_rx.clone());
        tokio::spawn(component_base::serve::serve(
            listener,
            None,
            router,
            stop,
            Duration::from_secs(1),
        ));
    }
    if let Some(addr) = cfg.metrics_bind_address {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::Bind {
                what: "metrics",
                addr,
                source,
            })?;
        let registry = metrics.registry.clone();
        let router = Router::new().route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    let (content_type, body) = component_base::metrics::render(&registry);
                    ([(axum::http::header::CONTENT_TYPE, content_type)], body)
                }
            }),
        );
        let stop = stopped(stop_rx.clone());
        tokio::spawn(component_base::serve::serve(
            listener,
            None,
            router,
            stop,
            Duration::from_secs(1),
        ));
    }

    tokio::spawn(watch_services(
        Api::all(client.clone()),
        tracker.clone(),
        metrics.service_changes_total.clone(),
    ));
    tokio::spawn(watch_slices(
        Api::all(client),
        tracker.clone(),
        metrics.endpoint_changes_total.clone(),
    ));

    let mut hc_servers = ServiceHealthServers::default();
    let mut last_sync: Option<Instant> = None;
    let mut last_full: Option<Instant> = None;
    let mut need_full = true;
    let mut stop = stop_rx;
    loop {
        // Until the first sync, only changes (and the end of the initial lists) wake the loop.
        let next_full = last_full.map(|t| t + cfg.sync_period);
        tokio::select! {
            () = tracker.changed.notified() => {}
            () = async {
                match next_full {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => need_full = true,
            _ = stop.wait_for(|s| *s) => break,
        }
        if !tracker.synced() {
            continue;
        }
        // Batch: never sync more often than minSyncPeriod.
        if let Some(t) = last_sync {
            tokio::time::sleep_until(t + cfg.min_sync_period).await;
        }
        let full = need_full;
        let changes = tracker.take(full, &cfg.hostname);
        if let Some(q) = changes.queued_at {
            let queued_unix = std::time::SystemTime::now()
                .checked_sub(q.elapsed())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_secs_f64());
            metrics.last_queued_timestamp.set(queued_unix);
        }
        let started = Instant::now();
        last_sync = Some(started);
        let span = tracing::info_span!(
            "sync_proxy_rules",
            mode = selection.mode.as_str(),
            full,
            services = changes.services.len()
        );
        let result = proxier.sync(&changes, full).instrument(span).await;
        let elapsed = started.elapsed().as_secs_f64();
        match result {
            Ok(report) => {
                need_full = false;
                if full {
                    last_full = Some(started);
                    metrics.full_sync_duration.observe(elapsed);
                } else {
                    metrics.partial_sync_duration.observe(elapsed);
                }
                metrics.sync_duration.observe(elapsed);
                metrics.last_sync_timestamp.set(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                );
                for (table, count) in &report.rules {
                    metrics
                        .rules_total
                        .with_label_values(&[table])
                        .set(*count as i64);
                }
                let (internal, external) = proxier::no_local_endpoints(proxier.ports());
                metrics
                    .no_local_endpoints
                    .with_label_values(&["internal"])
                    .set(internal as i64);
                metrics
                    .no_local_endpoints
                    .with_label_values(&["external"])
                    .set(external as i64);
                health.updated();
                tracing::debug!(
                    full,
                    rewritten = report.rewritten,
                    rules = ?report.rules,
                    seconds = elapsed,
                    "synced proxy rules"
                );
                conntrack::flush(&report.stale_udp).await;
                hc_servers.sync(proxier.ports()).await;
            }
            Err(err) => {
                metrics.sync_failures.inc();
                tracing::error!(%err, full, "syncing proxy rules failed; retrying with a full sync");
                proxier.invalidate();
                need_full = true;
                tracker.requeue(
                    changes.services.into_iter().map(|(k, _)| k),
                    changes.queued_at,
                );
                tracker.changed.notify_one();
            }
        }
    }
    tracing::info!("kube-proxy stopping; rules stay in place");
    Ok(())
}

async fn watch_services(api: Api<Service>, tracker: Arc<Tracker>, changes: IntCounter) {
    watch(api, "Services", changes, |event| match event {
        Event::Init => tracker.begin_service_relist(),
        Event::InitApply(svc) => tracker.relist_service(svc),
        Event::InitDone => tracker.end_service_relist(),
        Event::Apply(svc) => tracker.apply_service(svc),
        Event::Delete(svc) => tracker.delete_service(&svc),
    })
    .await
}

async fn watch_slices(api: Api<EndpointSlice>, tracker: Arc<Tracker>, changes: IntCounter) {
    watch(api, "EndpointSlices", changes, |event| match event {
        Event::Init => tracker.begin_slice_relist(),
        Event::InitApply(s) => tracker.relist_slice(s),
        Event::InitDone => tracker.end_slice_relist(),
        Event::Apply(s) => tracker.apply_slice(s),
        Event::Delete(s) => tracker.delete_slice(&s),
    })
    .await
}

/// Feeds every watch event to `handle`, counting changes (applies and deletes) and retrying
/// after a second when the watch fails.
async fn watch<K>(api: Api<K>, what: &str, changes: IntCounter, mut handle: impl FnMut(Event<K>))
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => {
                if matches!(event, Event::Apply(_) | Event::Delete(_)) {
                    changes.inc();
                }
                handle(event);
            }
            Err(err) => {
                tracing::warn!(%err, "watching {what}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
