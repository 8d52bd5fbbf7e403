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
use tracing::Instrument;

use super::{
    audit::{Level, Record, RequestMeta},
    authorizer::{forbidden, Attributes},
    escalation, impersonation, inflight, node_restriction,
    user::UserInfo,
    Auth,
};
use crate::{
    endpoints::{query::Query, request_info},
    errors::ApiError,
};

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
    let query = Query::parse(parts.uri.query());
    match request_info::parse(parts.method.as_str(), &path, query.flag("watch")) {
        Some(info) => {
            // As upstream, a list or watch of one object by `metadata.name` is authorized
            // as a request for that name.
            let name = if info.name.is_empty() && matches!(info.verb.as_str(), "list" | "watch") {
                query
                    .get("fieldSelector")
                    .and_then(selected_name)
                    .unwrap_or_default()
            } else {
                info.name
            };
            Attributes {
                user,
                verb: info.verb,
                resource_request: true,
                path,
                api_group: info.group,
                api_version: info.version,
                resource: info.resource,
                subresource: info.subresource,
                namespace: info.namespace,
                name,
            }
        }
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

/// The name a field selector pins (`metadata.name=x` or `metadata.name==x`).
fn selected_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let rest = term.trim().strip_prefix("metadata.name")?;
        let value = rest.strip_prefix("==").or_else(|| rest.strip_prefix('='))?;
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// Writes the ResponseComplete stage of a streamed response when the stream goes away.
struct CompleteOnDrop(Option<Record>);

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            r.complete();
        }
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
        // The event is complete when the body is dropped: the stream ended or the client
        // went away.
        let (parts, body) = response.into_parts();
        let guard = CompleteOnDrop(Some(record));
        let stream = body.into_data_stream().map(move |chunk| {
            let _alive = &guard;
            chunk
        });
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    if code >= 400 || record.level >= Level::RequestResponse {
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
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

/// Starts the audit record of a request, when auditing is on and the policy wants it.
fn start_record(
    auth: &Auth,
    parts: &Parts,
    attrs: &Attributes,
    audit_id: &str,
    impersonator: Option<&UserInfo>,
) -> Option<Record> {
    let audit = auth.audit.as_ref()?;
    let uri = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), ToString::to_string);
    Record::start(
        audit,
        attrs,
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
            impersonator,
        },
    )
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
            let attrs = attributes(&parts, UserInfo::default());
            let record = start_record(auth, &parts, &attrs, audit_id, None);
            return finish(record, unauthorized().into_response(), false).await;
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

    let mut record = start_record(auth, &parts, &attrs, audit_id, impersonator.as_ref());

    // As upstream, system:masters is never throttled, so that an administrator can get in
    // to fix an overloaded server.
    let _permit = if long_running || attrs.user.in_group(super::user::MASTERS) {
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
            if decision.allowed() {
                "allow"
            } else {
                "forbid"
            },
        );
        r.annotate("authorization.k8s.io/reason", decision.reason());
    }
    if !decision.allowed() {
        tracing::debug!(user = %attrs.user.name, verb = %attrs.verb, resource = %attrs.resource, namespace = %attrs.namespace, name = %attrs.name, "forbidden");
        let err = forbidden(&attrs, decision.reason());
        return finish(record, err.into_response(), false).await;
    }

    let body = match checked_body(auth, &parts, &attrs, record.as_mut(), body, long_running).await {
        Ok(b) => b,
        Err(e) => return finish(record, e.into_response(), false).await,
    };

    let span = tracing::debug_span!(
        "request",
        user = %attrs.user.name,
        verb = %attrs.verb,
        resource = %attrs.resource,
        namespace = %attrs.namespace,
        name = %attrs.name,
    );
    parts.extensions.insert(attrs.user.clone());
    let response = next
        .run(Request::from_parts(parts, body))
        .instrument(span)
        .await;
    finish(record, response, long_running).await
}

/// The request body, read whole when the audit level records it or an RBAC escalation or
/// NodeRestriction check must look into it; passed through untouched otherwise.
async fn checked_body(
    auth: &Auth,
    parts: &Parts,
    attrs: &Attributes,
    record: Option<&mut Record>,
    body: Body,
    long_running: bool,
) -> Result<Body, ApiError> {
    let check_escalation = auth.authorizer.has_rbac() && escalation::applies(attrs);
    let check_node = auth.authorizer.has_node() && node_restriction::applies(attrs);
    let wants_body = record.as_ref().is_some_and(|r| r.level >= Level::Request);
    if long_running || !(check_escalation || check_node || wants_body) {
        return Ok(body);
    }
    let bytes = crate::endpoints::body::read_limited(body).await?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if let Some(r) = record {
        r.request_object(content_type, &bytes);
    }
    if check_escalation {
        escalation::check(&auth.server, &auth.authorizer, attrs, content_type, &bytes)?;
    } else if check_node {
        node_restriction::check(&auth.server, attrs, content_type, &bytes)?;
    }
    Ok(Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: &str, uri: &str) -> Attributes {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        attributes(&parts, UserInfo::default())
    }

    #[test]
    fn request_attributes() {
        let a = attrs(
            "GET",
            "/api/v1/namespaces/demo/secrets?fieldSelector=metadata.name%3Ds1&watch=true",
        );
        assert_eq!(
            (a.verb.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("watch", "s1", "demo")
        );
        let a = attrs(
            "GET",
            "/api/v1/namespaces/demo/secrets?fieldSelector=metadata.name!%3Ds1",
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("list", ""));
        let a = attrs(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/demo/roles",
        );
        assert_eq!(
            (a.api_group.as_str(), a.resource.as_str(), a.verb.as_str()),
            (rbac_group(), "roles", "create")
        );
        let a = attrs("HEAD", "/healthz");
        assert!(!a.resource_request);
        assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", "/healthz"));
        assert_eq!(selected_name("a=b,metadata.name==x"), Some("x".into()));
    }

    fn rbac_group() -> &'static str {
        super::super::rbac::GROUP
    }
}
