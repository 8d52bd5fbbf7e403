//! The security filters in front of every handler, in upstream's order: authentication
//! (401), impersonation, audit, max-in-flight (429), authorization (403) and RBAC
//! escalation checks. The authenticated user is left in the request's extensions.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, request::Parts, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};
use component_base::serve::PeerAddr;
use futures::StreamExt;
use http_body_util::BodyExt;

use super::{
    audit::{Level, Record, RequestMeta},
    authorizer::{forbidden, Attributes},
    escalation, impersonation, inflight,
    user::UserInfo,
    Auth,
};
use crate::{
    endpoints::{query::Query, request_info},
    errors::ApiError,
};

/// Upstream's limit on request bodies (3 MiB), applied where a filter reads the body.
const MAX_BODY: usize = 3 * 1024 * 1024;

/// The 401 every unauthenticated request gets.
fn unauthorized() -> ApiError {
    ApiError {
        code: 401,
        reason: "Unauthorized",
        message: "Unauthorized".into(),
        details: None,
        retry_after: None,
    }
}

/// What the request does, from its method, path and query.
pub fn attributes(parts: &Parts, user: UserInfo) -> Attributes {
    let path = parts.uri.path().to_string();
    let watch = Query::parse(parts.uri.query()).flag("watch");
    match request_info::parse(parts.method.as_str(), &path, watch) {
        Some(info) => Attributes {
            user,
            verb: info.verb,
            resource_request: true,
            path,
            api_group: info.group,
            api_version: info.version,
            resource: info.resource,
            subresource: info.subresource,
            namespace: info.namespace,
            name: info.name,
        },
        None => Attributes {
            user,
            verb: match parts.method.as_str() {
                "HEAD" => "get".into(),
                m => m.to_ascii_lowercase(),
            },
            path,
            ..Default::default()
        },
    }
}

/// Answers with `response`, completing the audit record.
async fn finish(record: Option<Record>, response: Response, long_running: bool) -> Response {
    let Some(mut record) = record else {
        return response;
    };
    let code = response.status().as_u16();
    if long_running && code < 300 {
        record.response_status(code, None);
        record.response_started();
        // The event is complete when the stream ends (or the client goes away).
        let (parts, body) = response.into_parts();
        let mut guard = Some(record);
        let stream = body.into_data_stream().chain(futures::stream::poll_fn(move |_| {
            if let Some(r) = guard.take() {
                r.complete();
            }
            std::task::Poll::Ready(None)
        }));
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    if code >= 400 || record.level >= Level::RequestResponse {
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let status: Option<serde_json::Value> = if code >= 400 {
            serde_json::from_slice(&bytes).ok()
        } else {
            None
        };
        record.response_status(code, status.as_ref());
        record.response_object(&bytes);
        record.complete();
        return Response::from_parts(parts, Body::from(bytes));
    }
    record.response_status(code, None);
    record.complete();
    response
}

/// The filter chain.
pub async fn filter(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let audit_id = uuid::Uuid::new_v4().to_string();
    let mut response = run(&auth, req, next, &audit_id).await;
    if let Ok(v) = HeaderValue::from_str(&audit_id) {
        response.headers_mut().insert("audit-id", v);
    }
    response
}

async fn run(auth: &Arc<Auth>, req: Request, next: Next, audit_id: &str) -> Response {
    let (mut parts, body) = req.into_parts();
    let authenticated = match auth.authenticator.authenticate(&auth.server, &parts) {
        Ok(u) => u,
        Err(why) => {
            tracing::debug!(path = %parts.uri.path(), %why, "unauthorized");
            return unauthorized().into_response();
        }
    };
    parts.headers.remove(header::AUTHORIZATION);
    let (user, impersonator) = if impersonation::requested(&parts.headers) {
        match impersonation::impersonate(
            &auth.server,
            &auth.authorizer,
            &authenticated,
            &parts.headers,
        ) {
            Ok(u) => (u, Some(authenticated)),
            Err(e) => return e.into_response(),
        }
    } else {
        (authenticated, None)
    };
    impersonation::strip(&mut parts.headers);
    let attrs = attributes(&parts, user);
    let long_running = inflight::is_long_running(&attrs.verb, &attrs.subresource);

    let uri = parts.uri.to_string();
    let mut record = auth.audit.as_ref().and_then(|a| {
        Record::start(
            a,
            &attrs,
            RequestMeta {
                audit_id,
                uri: &uri,
                source_ip: parts
                    .extensions
                    .get::<PeerAddr>()
                    .map(|p| p.0.ip().to_string()),
                user_agent: parts
                    .headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok()),
                impersonator: impersonator.as_ref(),
            },
        )
    });

    let _permit = if long_running {
        None
    } else {
        match auth.inflight.acquire(inflight::is_mutating(&attrs.verb)) {
            Ok(p) => p,
            Err(e) => return finish(record, e.into_response(), false).await,
        }
    };

    let decision = auth.authorizer.authorize(&auth.server, &attrs);
    if let Some(r) = record.as_mut() {
        r.annotate(
            "authorization.k8s.io/decision",
            if decision.allowed() { "allow" } else { "forbid" },
        );
        r.annotate("authorization.k8s.io/reason", decision.reason());
    }
    if !decision.allowed() {
        tracing::debug!(user = %attrs.user.name, verb = %attrs.verb, resource = %attrs.resource, namespace = %attrs.namespace, name = %attrs.name, "forbidden");
        let err = forbidden(&attrs, decision.reason());
        return finish(record, err.into_response(), false).await;
    }

    let check_escalation = auth.authorizer.has_rbac() && escalation::applies(&attrs);
    let wants_body = record.as_ref().is_some_and(|r| r.level >= Level::Request);
    let body = if !long_running && (check_escalation || wants_body) {
        let bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let mut err =
                    ApiError::bad_request(format!("the request body could not be read: {e}"));
                if e.to_string().contains("length limit") {
                    err.code = 413;
                    err.reason = "RequestEntityTooLarge";
                    err.message = format!("Request entity too large: limit is {MAX_BODY}");
                }
                return finish(record, err.into_response(), false).await;
            }
        };
        if let Some(r) = record.as_mut() {
            r.request_object(&bytes);
        }
        if check_escalation {
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json");
            if let Err(e) = escalation::check(
                &auth.server,
                &auth.authorizer,
                &attrs,
                content_type,
                &bytes,
            ) {
                return finish(record, e.into_response(), false).await;
            }
        }
        Body::from(bytes)
    } else {
        body
    };

    parts.extensions.insert(attrs.user.clone());
    let response = next.run(Request::from_parts(parts, body)).await;
    finish(record, response, long_running).await
}
