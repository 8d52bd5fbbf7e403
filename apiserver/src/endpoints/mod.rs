//! HTTP endpoints: routing of non-resource paths (version, health, metrics, discovery,
//! OpenAPI) and of every resource request to the generic handlers.

pub mod body;
pub mod continue_token;
pub mod discovery;
pub mod handlers;
pub mod kubelet_proxy;
pub mod negotiation;
pub mod openapi;
pub mod query;
pub mod request_info;
pub mod table;
pub mod watch;

use std::{sync::Arc, time::Instant};

use axum::{
    body::Body,
    extract::{Path, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use component_base::health::HealthChecks;
use serde_json::{json, Value};

use crate::{errors::ApiError, server::ApiServer};

type Shared = State<Arc<ApiServer>>;

/// The whole HTTP surface.
pub fn router(server: Arc<ApiServer>, health: HealthChecks) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .route("/openapi/v3", get(openapi_index))
        .route("/openapi/v3/{*path}", get(openapi_doc))
        .route("/api", get(api))
        .route("/api/", get(api))
        .route("/apis", get(apis))
        .route("/apis/", get(apis))
        .route("/api/{version}", get(core_resources))
        .route("/apis/{group}", get(group))
        .route("/apis/{group}/{version}", get(group_resources))
        .fallback(resource)
        .with_state(server)
        .merge(health.router())
}

fn json(code: StatusCode, value: &Value) -> Response {
    handlers::json_response(code, value, &[])
}

async fn version() -> Response {
    json(
        StatusCode::OK,
        &json!({
            "major": "1",
            "minor": "33",
            "emulationMajor": "1",
            "emulationMinor": "33",
            "minCompatibilityMajor": "1",
            "minCompatibilityMinor": "32",
            "gitVersion": "v1.33.0",
            "gitCommit": env!("CARGO_PKG_VERSION"),
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "ferrokube (rust)",
            "compiler": "rustc",
            "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
        }),
    )
}

async fn metrics(State(server): Shared) -> Response {
    for (prefix, cache) in server.cache_entries() {
        let resource = prefix
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        server
            .metrics
            .objects
            .with_label_values(&[resource])
            .set(cache.len() as i64);
    }
    let (content_type, body) = component_base::metrics::render(&server.metrics.registry);
    let mut resp = (StatusCode::OK, body).into_response();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

async fn openapi_index() -> Response {
    json(StatusCode::OK, &openapi::index())
}

async fn openapi_doc(Path(path): Path<String>) -> Response {
    match openapi::documents().get(path.trim_end_matches('/')) {
        Some(doc) => {
            let mut resp = (StatusCode::OK, doc.body.clone()).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, immutable"),
            );
            resp
        }
        None => ApiError::not_found_path(&path).into_response(),
    }
}

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

/// Answers with the aggregated discovery document when the client asked for it.
fn aggregated_or(headers: &HeaderMap, legacy: bool, plain: Value) -> Response {
    match discovery::aggregated_media_type(accept(headers)) {
        Some((media_type, api_version)) => {
            let mut resp = json(StatusCode::OK, &discovery::aggregated(legacy, api_version));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
            resp.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept"));
            resp
        }
        None => json(StatusCode::OK, &plain),
    }
}

async fn api(State(server): Shared, headers: HeaderMap) -> Response {
    let address = format!("{}:{}", server.advertise_address, server.config.secure_port);
    aggregated_or(&headers, true, discovery::api_versions(&address))
}

async fn apis(headers: HeaderMap) -> Response {
    aggregated_or(&headers, false, discovery::api_group_list())
}

async fn core_resources(Path(version): Path<String>) -> Response {
    match discovery::resource_list("", &version) {
        Some(doc) => json(StatusCode::OK, &doc),
        None => ApiError::not_found_path(&format!("/api/{version}")).into_response(),
    }
}

async fn group(Path(group): Path<String>) -> Response {
    match discovery::api_group_doc(&group) {
        Some(doc) => json(StatusCode::OK, &doc),
        None => ApiError::not_found_path(&format!("/apis/{group}")).into_response(),
    }
}

async fn group_resources(Path((group, version)): Path<(String, String)>) -> Response {
    match discovery::resource_list(&group, &version) {
        Some(doc) => json(StatusCode::OK, &doc),
        None => ApiError::not_found_path(&format!("/apis/{group}/{version}")).into_response(),
    }
}

/// Every resource request.
async fn resource(State(server): Shared, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let query = query::Query::parse(parts.uri.query());
    let path = parts.uri.path().to_string();
    let Some(info) = request_info::parse(parts.method.as_str(), &path, query.flag("watch")) else {
        return ApiError::not_found_path(&path).into_response();
    };
    if info.group.is_empty()
        && info.resource == "pods"
        && kubelet_proxy::SUBRESOURCES.contains(&info.subresource.as_str())
    {
        let req = Request::from_parts(parts, body);
        return kubelet_proxy::proxy(&server, &info.namespace, &info.name, &info.subresource, req)
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    let scope = if !info.name.is_empty() {
        "resource"
    } else if info.namespace.is_empty() {
        "cluster"
    } else {
        "namespace"
    };
    let dry_run = if query.get("dryRun").is_some() {
        "All"
    } else {
        ""
    };
    let verb_label = info.verb.to_uppercase();
    let labels = [
        verb_label.as_str(),
        dry_run,
        info.group.as_str(),
        info.version.as_str(),
        info.resource.as_str(),
        info.subresource.as_str(),
        scope,
        "apiserver",
    ];
    let response = match serve(&server, &info, &query, &parts.headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let code = response.status().as_u16().to_string();
    let mut counter_labels = labels.to_vec();
    counter_labels.push(code.as_str());
    server
        .metrics
        .requests
        .with_label_values(&counter_labels)
        .inc();
    if info.verb != "watch" {
        server
            .metrics
            .request_duration
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
    tracing::debug!(verb = %info.verb, resource = %info.resource, namespace = %info.namespace, name = %info.name, code = %code, "request");
    response
}

async fn serve(
    server: &ApiServer,
    info: &request_info::RequestInfo,
    query: &query::Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (def, storage) = handlers::resolve(info)?;
    let shape = match info.verb.as_str() {
        "list" | "deletecollection" => negotiation::Shape::List,
        "watch" => negotiation::Shape::Watch,
        _ => negotiation::Shape::Object,
    };
    let format =
        negotiation::negotiate(accept(headers), shape).map_err(ApiError::not_acceptable)?;
    let body = body::read_limited(body).await?;
    let request = handlers::Request {
        server,
        info,
        def,
        storage,
        query,
        headers,
        format,
        body,
    };
    handlers::handle(request).await
}
