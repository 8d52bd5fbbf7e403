//! The secure port: `/healthz`, `/livez`, `/readyz`, `/metrics` and the explain endpoint.

use std::sync::Arc;

use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use component_base::health::HealthChecks;
use prometheus::Registry;

use crate::scheduler::Scheduler;

pub fn router(sched: Arc<Scheduler>, registry: Registry, health: HealthChecks) -> Router {
    let metrics = sched.metrics.clone();
    health
        .router()
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                let metrics = metrics.clone();
                async move {
                    metrics.refresh_process();
                    let (content_type, body) = component_base::metrics::render(&registry);
                    ([(header::CONTENT_TYPE, content_type)], body)
                }
            }),
        )
        .route(
            "/debug/explain/{namespace}/{name}",
            get(move |Path((namespace, name)): Path<(String, String)>| {
                let sched = sched.clone();
                async move { explain(&sched, &namespace, &name) }
            }),
        )
}

fn explain(sched: &Scheduler, namespace: &str, name: &str) -> Response {
    match sched.explanations.get(&format!("{namespace}/{name}")) {
        Some(e) => match serde_json::to_vec_pretty(&*e) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
        },
        None => (
            StatusCode::NOT_FOUND,
            format!("no scheduling attempt recorded for pod {namespace}/{name}\n"),
        )
            .into_response(),
    }
}
