//! `/healthz`, `/livez` and `/readyz` as upstream serves them: `ok` when every check passes,
//! `?verbose` lists each check (`[+]name ok`), `/<endpoint>/<check>` runs one check, and a
//! failing check answers 500 with `[-]name failed: reason withheld`.

use std::{future::Future, pin::Pin, sync::Arc};

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

/// The result of one check: `Err` carries the reason, logged but never served.
pub type CheckResult = Result<(), String>;
type CheckFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = CheckResult> + Send>> + Send + Sync>;

/// Which endpoints a check contributes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/healthz`, `/livez` and `/readyz`.
    All,
    /// `/readyz` only (e.g. caches synced, not shutting down).
    Readiness,
}

#[derive(Clone)]
struct Check {
    name: String,
    probe: Probe,
    run: CheckFn,
}

/// A set of named health checks.
#[derive(Clone, Default)]
pub struct HealthChecks {
    checks: Vec<Check>,
}

impl HealthChecks {
    /// Starts with the `ping` check every upstream component has.
    pub fn new() -> Self {
        let mut checks = HealthChecks::default();
        checks.add("ping", Probe::All, || async { Ok(()) });
        checks
    }

    /// Adds a named check.
    pub fn add<F, Fut>(&mut self, name: &str, probe: Probe, f: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckResult> + Send + 'static,
    {
        self.checks.push(Check {
            name: name.to_string(),
            probe,
            run: Arc::new(move || Box::pin(f())),
        });
    }

    /// Routes for the three endpoints and their per-check sub-paths.
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let state = Arc::new(self);
        Router::new()
            .route("/healthz", get(healthz))
            .route("/livez", get(livez))
            .route("/readyz", get(readyz))
            .route("/healthz/{check}", get(one))
            .route("/livez/{check}", get(one))
            .route("/readyz/{check}", get(one))
            .with_state(state)
    }

    async fn report(&self, endpoint: &str, readiness: bool, verbose: bool) -> Response {
        let mut lines = String::new();
        let mut failed = false;
        for check in &self.checks {
            if check.probe == Probe::Readiness && !readiness {
                continue;
            }
            match (check.run)().await {
                Ok(()) => lines.push_str(&format!("[+]{} ok\n", check.name)),
                Err(reason) => {
                    tracing::warn!(check = %check.name, %reason, endpoint, "health check failed");
                    failed = true;
                    lines.push_str(&format!("[-]{} failed: reason withheld\n", check.name));
                }
            }
        }
        if failed {
            let body = format!("{lines}{endpoint} check failed\n");
            return (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
        }
        if verbose {
            (StatusCode::OK, format!("{lines}{endpoint} check passed\n")).into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    }
}

fn is_verbose(query: &Option<String>) -> bool {
    query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "verbose" || kv.starts_with("verbose="))
    })
}

async fn healthz(State(h): State<Arc<HealthChecks>>, RawQuery(q): RawQuery) -> Response {
    h.report("healthz", false, is_verbose(&q)).await
}

async fn livez(State(h): State<Arc<HealthChecks>>, RawQuery(q): RawQuery) -> Response {
    h.report("livez", false, is_verbose(&q)).await
}

async fn readyz(State(h): State<Arc<HealthChecks>>, RawQuery(q): RawQuery) -> Response {
    h.report("readyz", true, is_verbose(&q)).await
}

async fn one(State(h): State<Arc<HealthChecks>>, Path(name): Path<String>) -> Response {
    match h.checks.iter().find(|c| c.name == name) {
        None => (StatusCode::NOT_FOUND, format!("no check named {name:?}\n")).into_response(),
        Some(check) => match (check.run)().await {
            Ok(()) => (StatusCode::OK, "ok").into_response(),
            Err(reason) => {
                tracing::warn!(check = %name, %reason, "health check failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal server error: {name} failed\n"),
                )
                    .into_response()
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failing_readiness_check_only_fails_readyz() {
        let mut h = HealthChecks::new();
        h.add("synced", Probe::Readiness, || async {
            Err("not yet".into())
        });
        let ok = h.report("healthz", false, false).await;
        assert_eq!(ok.status(), StatusCode::OK);
        let bad = h.report("readyz", true, true).await;
        assert_eq!(bad.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(is_verbose(&Some("verbose".into())));
        assert!(!is_verbose(&Some("exclude=x".into())));
    }
}
