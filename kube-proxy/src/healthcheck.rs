//! The two health surfaces upstream kube-proxy serves: the proxier's own `/healthz` and `/livez`
//! (port 10256), which fail when queued changes have not been synced in time, and one
//! health-check node port per `externalTrafficPolicy: Local` service, which answers 200 only on
//! nodes that have a local endpoint (so load balancers skip the others).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Json, Router};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::{model::ServicePortMap, tracker::Tracker};

/// The proxier's health: when it last synced, judged against what is queued.
pub struct ProxierHealth {
    tracker: Arc<Tracker>,
    timeout: Duration,
    node_name: String,
    last_updated: Mutex<Option<(Instant, SystemTime)>>,
}

impl ProxierHealth {
    pub fn new(tracker: Arc<Tracker>, timeout: Duration, node_name: String) -> Arc<ProxierHealth> {
        Arc::new(ProxierHealth {
            tracker,
            timeout,
            node_name,
            last_updated: Mutex::new(None),
        })
    }

    /// Records a successful sync.
    pub fn updated(&self) {
        if let Ok(mut g) = self.last_updated.lock() {
            *g = Some((Instant::now(), SystemTime::now()));
        }
    }

    /// Healthy unless a change has waited longer than the timeout.
    pub fn healthy(&self) -> bool {
        match self.tracker.queued_at() {
            Some(queued) => queued.elapsed() <= self.timeout,
            None => true,
        }
    }

    fn body(&self) -> serde_json::Value {
        let last = self
            .last_updated
            .lock()
            .ok()
            .and_then(|g| *g)
            .map(|(_, t)| rfc3339(t));
        json!({
            "lastUpdated": last.unwrap_or_default(),
            "currentTime": rfc3339(SystemTime::now()),
            "nodeName": self.node_name,
            "nodeHealthy": self.healthy(),
        })
    }

    /// `/healthz` and `/livez`.
    pub fn router(self: &Arc<Self>) -> Router {
        async fn handle(State(h): State<Arc<ProxierHealth>>) -> impl IntoResponse {
            let status = if h.healthy() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, Json(h.body()))
        }
        Router::new()
            .route("/healthz", get(handle))
            .route("/livez", get(handle))
            .with_state(self.clone())
    }
}

fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|ts| {
            ts.round(jiff::Unit::Second)
                .map(|r| r.to_string())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

#[derive(Clone, Default)]
struct ServiceHealthState {
    namespace: String,
    name: String,
    local_endpoints: usize,
}

/// The health-check node port servers, one per port.
#[derive(Default)]
pub struct ServiceHealthServers {
    servers: HashMap<u16, (Arc<Mutex<ServiceHealthState>>, JoinHandle<()>)>,
}

impl ServiceHealthServers {
    /// Opens, updates and closes servers to match the services in `ports`.
    pub async fn sync(&mut self, ports: &ServicePortMap) {
        let mut wanted: HashMap<u16, ServiceHealthState> = HashMap::new();
        for sp in ports.values() {
            if let Some(hc) = sp.health_check_node_port {
                let entry = wanted.entry(hc).or_insert_with(|| ServiceHealthState {
                    namespace: sp.name.namespace.clone(),
                    name: sp.name.name.clone(),
                    local_endpoints: 0,
                });
                entry.local_endpoints = entry.local_endpoints.max(sp.local_endpoints.len());
            }
        }
        self.servers.retain(|port, (_, task)| {
            let keep = wanted.contains_key(port);
            if !keep {
                task.abort();
            }
            keep
        });
        for (port, state) in wanted {
            if let Some((shared, _)) = self.servers.get(&port) {
                if let Ok(mut g) = shared.lock() {
                    *g = state;
                }
                continue;
            }
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
            let listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(err) => {
                    tracing::warn!(%err, port, service = %format!("{}/{}", state.namespace, state.name),
                        "cannot open health-check node port");
                    continue;
                }
            };
            let shared = Arc::new(Mutex::new(state));
            let router = Router::new()
                .fallback(get(service_health))
                .with_state(shared.clone());
            let task = tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, router).await {
                    tracing::warn!(%err, port, "health-check node port server stopped");
                }
            });
            self.servers.insert(port, (shared, task));
        }
    }
}

async fn service_health(State(s): State<Arc<Mutex<ServiceHealthState>>>) -> impl IntoResponse {
    let st = s.lock().map(|g| g.clone()).unwrap_or_default();
    let status = if st.local_endpoints > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "service": {"namespace": st.namespace, "name": st.name},
            "localEndpoints": st.local_endpoints,
            "serviceProxyHealthy": true,
        })),
    )
}

impl Drop for ServiceHealthServers {
    fn drop(&mut self) {
        for (_, task) in self.servers.values() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;

    #[test]
    fn a_change_left_unsynced_past_the_timeout_fails_healthz() {
        let tracker = Arc::new(Tracker::default());
        let health = ProxierHealth::new(tracker.clone(), Duration::ZERO, "node-a".into());
        assert!(health.healthy());
        let mut svc = Service::default();
        svc.metadata.namespace = Some("ns".into());
        svc.metadata.name = Some("web".into());
        tracker.apply_service(svc);
        std::thread::sleep(Duration::from_millis(2));
        assert!(!health.healthy());
        assert_eq!(health.body()["nodeHealthy"], false);
        tracker.take(false, "node-a");
        health.updated();
        assert!(health.healthy());
        assert!(!health.body()["lastUpdated"]
            .as_str()
            .unwrap_or_default()
            .is_empty());
    }
}
