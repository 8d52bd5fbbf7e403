//! The node API on the kubelet's secure port (10250): health, the pods it runs, metrics and
//! container logs in the CRI log format upstream reads (`/containerLogs/<ns>/<pod>/<container>`
//! with follow, tailLines, timestamps, previous, limitBytes).

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, get},
    Router,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::{
    cri::Runtime,
    metrics::Metrics,
    pod_workers::PodWorkers,
    runtime_pod::{is_running, RuntimePod},
    stats::StatsProvider,
    streaming,
};

/// What the handlers share.
#[derive(Clone)]
pub struct ServerState {
    pub runtime: Runtime,
    pub workers: Arc<PodWorkers>,
    pub metrics: Arc<Metrics>,
    pub stats: Arc<StatsProvider>,
}

/// The node API's routes, every one behind authentication and authorization.
pub fn router(state: ServerState, auth: Arc<crate::auth::NodeAuth>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/pods", get(pods))
        .route("/metrics", get(metrics))
        .route("/metrics/resource", get(resource_metrics))
        .route("/stats/summary", get(summary))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route("/exec/{*path}", any(streaming::handle))
        .route("/attach/{*path}", any(streaming::handle))
        .route("/portforward/{*path}", any(streaming::handle))
        .layer(axum::middleware::from_fn_with_state(
            auth,
            crate::auth::filter,
        ))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

async fn pods(State(state): State<ServerState>) -> Response {
    let list = serde_json::json!({ "kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": state.workers.pods() });
    (
        [(header::CONTENT_TYPE, "application/json")],
        list.to_string(),
    )
        .into_response()
}

async fn summary(State(state): State<ServerState>) -> Response {
    let body = state.stats.summary().await;
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn resource_metrics(State(state): State<ServerState>) -> Response {
    let body = state.stats.resource_metrics().await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn metrics(State(state): State<ServerState>) -> Response {
    let pods = state.workers.pods();
    state.metrics.running_pods.set(pods.len() as i64);
    if let Ok(containers) = state.runtime.list_containers(HashMap::new()).await {
        let running = containers
            .iter()
            .filter(|c| c.state == cri_proto::v1::ContainerState::ContainerRunning as i32)
            .count();
        state
            .metrics
            .running_containers
            .with_label_values(&["running"])
            .set(running as i64);
        state
            .metrics
            .running_containers
            .with_label_values(&["exited"])
            .set(
                containers
                    .iter()
                    .filter(|c| c.state == cri_proto::v1::ContainerState::ContainerExited as i32)
                    .count() as i64,
            );
    }
    let (content_type, body) = component_base::metrics::render(&state.metrics.registry);
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Query parameters of `/containerLogs` (upstream's PodLogOptions).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogOptions {
    pub follow: Option<bool>,
    pub previous: Option<bool>,
    pub timestamps: Option<bool>,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
}

/// One line of a CRI log file: `<time> <stream> <P|F> <content>`.
#[derive(Debug, PartialEq)]
pub struct LogLine<'a> {
    pub time: &'a str,
    pub partial: bool,
    pub content: &'a str,
}

pub fn parse_line(line: &str) -> Option<LogLine<'_>> {
    let mut parts = line.splitn(4, ' ');
    let time = parts.next()?;
    let _stream = parts.next()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or("");
    Some(LogLine {
        time,
        partial: tag == "P",
        content,
    })
}

/// Renders complete CRI log lines as the user sees them.
fn render(lines: &[&str], timestamps: bool) -> String {
    let mut out = String::new();
    for raw in lines {
        let Some(line) = parse_line(raw) else {
            continue;
        };
        if timestamps {
            out.push_str(line.time);
            out.push(' ');
        }
        out.push_str(line.content);
        if !line.partial {
            out.push('\n');
        }
    }
    out
}

async fn container_logs(
    State(state): State<ServerState>,
    Path((namespace, pod_name, container)): Path<(String, String, String)>,
    Query(opts): Query<LogOptions>,
) -> Response {
    let pod = state.workers.pods().into_iter().find(|p| {
        p.metadata.namespace.as_deref() == Some(namespace.as_str())
            && p.metadata.name.as_deref() == Some(pod_name.as_str())
    });
    let Some(uid) = pod.and_then(|p| p.metadata.uid) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("pod {namespace}/{pod_name} not found"),
        );
    };
    let runtime_pod = match RuntimePod::load(&state.runtime, &uid).await {
        Ok(r) => r,
        Err(err) => return error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    let mut instances = runtime_pod.instances(&container);
    let instance = if opts.previous.unwrap_or(false) {
        instances.nth(1)
    } else {
        instances.next()
    };
    let Some(instance) = instance.cloned() else {
        let which = if opts.previous.unwrap_or(false) {
            "previous terminated container"
        } else {
            "container"
        };
        return error(
            StatusCode::BAD_REQUEST,
            format!("{which} \"{container}\" in pod \"{pod_name}\" not found"),
        );
    };
    let text = tokio::fs::read_to_string(&instance.log_path)
        .await
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = match opts.tail_lines {
        Some(n) if n >= 0 => lines.len().saturating_sub(n as usize),
        _ => 0,
    };
    let timestamps = opts.timestamps.unwrap_or(false);
    let mut body = render(&lines[start..], timestamps);
    if let Some(limit) = opts.limit_bytes.filter(|l| *l >= 0) {
        let mut end = (limit as usize).min(body.len());
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
    }
    if !opts.follow.unwrap_or(false) || !is_running(&instance) {
        return ([(header::CONTENT_TYPE, "text/plain")], body).into_response();
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(16);
    let offset = text.len() as u64;
    let runtime = state.runtime.clone();
    tokio::spawn(async move {
        if tx.send(Ok(body)).await.is_err() {
            return;
        }
        follow(
            runtime,
            instance.id,
            instance.log_path,
            offset,
            timestamps,
            tx,
        )
        .await;
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Streams what is appended to a log file until the container stops or the client leaves.
async fn follow(
    runtime: Runtime,
    id: String,
    path: String,
    mut offset: u64,
    timestamps: bool,
    tx: tokio::sync::mpsc::Sender<Result<String, std::io::Error>>,
) {
    let mut pending = String::new();
    let mut idle_rounds = 0u32;
    loop {
        let mut chunk = String::new();
        if let Ok(mut file) = tokio::fs::File::open(&path).await {
            // A rotated log starts over in a fresh file.
            if file.metadata().await.is_ok_and(|m| m.len() < offset) {
                offset = 0;
            }
            if file.seek(std::io::SeekFrom::Start(offset)).await.is_ok() {
                if let Ok(n) = file.read_to_string(&mut chunk).await {
                    offset += n as u64;
                }
            }
        }
        if chunk.is_empty() {
            idle_rounds += 1;
            if idle_rounds.is_multiple_of(10) {
                let running = runtime
                    .container_status(&id)
                    .await
                    .map(|s| is_running(&s))
                    .unwrap_or(false);
                if !running || tx.is_closed() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        idle_rounds = 0;
        pending.push_str(&chunk);
        let complete = match pending.rfind('\n') {
            Some(i) => pending.drain(..=i).collect::<String>(),
            None => continue,
        };
        let lines: Vec<&str> = complete.lines().collect();
        if tx.send(Ok(render(&lines, timestamps))).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cri_log_lines() {
        let lines = [
            "2026-01-01T00:00:00.1Z stdout P hel",
            "2026-01-01T00:00:00.2Z stdout F lo",
            "2026-01-01T00:00:00.3Z stderr F oops",
        ];
        assert_eq!(render(&lines, false), "hello\noops\n");
        assert_eq!(render(&lines[2..], true), "2026-01-01T00:00:00.3Z oops\n");
        assert_eq!(parse_line("bad"), None);
    }
}
