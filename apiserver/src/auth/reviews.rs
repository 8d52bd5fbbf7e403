//! The APIs that expose authentication and authorization to clients: TokenReview and
//! SelfSubjectReview (`kubectl auth whoami`), SubjectAccessReview, LocalSubjectAccessReview,
//! SelfSubjectAccessReview (`kubectl auth can-i`), SelfSubjectRulesReview
//! (`kubectl auth can-i --list`), and the TokenRequest subresource
//! (`kubectl create token`), and the service-account issuer's OpenID discovery documents.
//! None of them is stored.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Extension, Router,
};
use serde_json::{json, Value};

use super::{authorizer::Attributes, user::UserInfo, Auth};
use crate::{endpoints::handlers::json_response, errors::ApiError};

/// Resources of the review APIs, for discovery: (group, plural, kind, namespaced).
pub const RESOURCES: &[(&str, &str, &str, bool)] = &[
    (
        "authentication.k8s.io",
        "tokenreviews",
        "TokenReview",
        false,
    ),
    (
        "authentication.k8s.io",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    ),
    (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    ),
];

/// The routes of the review APIs and of TokenRequest.
pub fn routes(auth: Arc<Auth>) -> Router {
    Router::new()
        .route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            post(token_review),
        )
        .route(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            post(self_subject_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            post(subject_access_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews",
            post(local_subject_access_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(self_subject_access_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            post(self_subject_rules_review),
        )
        .route(
            "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            post(token_request),
        )
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/openid/v1/jwks", get(jwks))
        .with_state(auth)
}

fn parse(headers: &HeaderMap, body: &[u8], kind: &str) -> Result<Value, ApiError> {
    let mime = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let v = decode(mime, body, kind)?;
    if v["kind"].as_str().is_some_and(|k| k != kind) {
        return Err(ApiError::bad_request(format!(
            "expected a {kind}, got {}",
            v["kind"]
        )));
    }
    Ok(v)
}

/// Decodes a JSON, YAML or protobuf body of a type that has no storage.
pub fn decode(content_type: &str, body: &[u8], kind: &str) -> Result<Value, ApiError> {
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    match mime {
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text =
                std::str::from_utf8(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("decoding {kind}: {e}")))
        }
        "" | "application/json" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("decoding {kind}: {e}"))),
        m if apimachinery::protobuf::is_protobuf_content_type(m) => {
            apimachinery::protobuf::decode(body)
                .map_err(|e| ApiError::bad_request(format!("decoding {kind}: {e}")))
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// The request echoed back with its status, as upstream answers review creates.
fn answer(mut request: Value, api_version: &str, kind: &str, status: Value) -> Response {
    request["apiVersion"] = json!(api_version);
    request["kind"] = json!(kind);
    let mut metadata = json!({ "creationTimestamp": null });
    for key in ["name", "namespace"] {
        if let Some(v) = request["metadata"].get(key).filter(|v| v.is_string()) {
            metadata[key] = v.clone();
        }
    }
    request["metadata"] = metadata;
    request["status"] = status;
    json_response(StatusCode::CREATED, &request, &[])
}

fn respond(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn token_review(State(auth): State<Arc<Auth>>, headers: HeaderMap, body: Bytes) -> Response {
    respond((|| {
        let req = parse(&headers, &body, "TokenReview")?;
        let token = req["spec"]["token"].as_str().unwrap_or_default();
        let wanted: Option<Vec<String>> = req["spec"]["audiences"].as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        });
        let wanted = wanted.filter(|w| !w.is_empty());
        let status =
            match auth
                .authenticator
                .authenticate_token(&auth.server, token, wanted.as_deref())
            {
                Ok(Some(user)) => {
                    let audiences = wanted.clone().unwrap_or_else(|| {
                        auth.authenticator
                            .service_accounts
                            .as_ref()
                            .map(|s| s.audiences.clone())
                            .unwrap_or_default()
                    });
                    json!({
                        "authenticated": true,
                        "user": user.authenticated().to_json(),
                        "audiences": audiences,
                    })
                }
                Ok(None) => json!({ "user": {}, "error": "invalid bearer token" }),
                Err(why) => json!({ "user": {}, "error": format!("invalid bearer token, {why}") }),
            };
        Ok(answer(
            req,
            "authentication.k8s.io/v1",
            "TokenReview",
            status,
        ))
    })())
}

async fn self_subject_review(
    Extension(user): Extension<UserInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond((|| {
        let req = if body.is_empty() {
            json!({})
        } else {
            parse(&headers, &body, "SelfSubjectReview")?
        };
        Ok(answer(
            req,
            "authentication.k8s.io/v1",
            "SelfSubjectReview",
            json!({ "userInfo": user.to_json() }),
        ))
    })())
}

/// The attributes a review's spec describes.
fn spec_attributes(spec: &Value, user: UserInfo) -> Result<Attributes, ApiError> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    if let Some(r) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        return Ok(Attributes {
            user,
            verb: s(&r["verb"]),
            resource_request: true,
            api_group: s(&r["group"]),
            api_version: s(&r["version"]),
            resource: s(&r["resource"]),
            subresource: s(&r["subresource"]),
            namespace: s(&r["namespace"]),
            name: s(&r["name"]),
            ..Default::default()
        });
    }
    if let Some(n) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
        return Ok(Attributes {
            user,
            verb: s(&n["verb"]),
            path: s(&n["path"]),
            ..Default::default()
        });
    }
    Err(ApiError::bad_request(
        "exactly one of nonResourceAttributes or resourceAttributes must be specified",
    ))
}

/// The answer to an access review of `kind`: the request with the authorizer's decision.
fn access_review(auth: &Auth, req: Value, kind: &str, attrs: &Attributes) -> Response {
    answer(
        req,
        "authorization.k8s.io/v1",
        kind,
        access_status(auth, attrs),
    )
}

fn access_status(auth: &Auth, attrs: &Attributes) -> Value {
    let d = auth.authorizer.authorize(&auth.server, attrs);
    let mut status = json!({ "allowed": d.allowed() });
    if matches!(d, super::authorizer::Decision::Deny(_)) {
        status["denied"] = json!(true);
    }
    if !d.reason().is_empty() {
        status["reason"] = json!(d.reason());
    }
    status
}

async fn subject_access_review(
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond((|| {
        let req = parse(&headers, &body, "SubjectAccessReview")?;
        let subject = UserInfo::from_json(&req["spec"]);
        if subject.name.is_empty() && subject.groups.is_empty() {
            return Err(ApiError::bad_request(
                "at least one of user or group must be specified",
            ));
        }
        let attrs = spec_attributes(&req["spec"], subject)?;
        Ok(access_review(&auth, req, "SubjectAccessReview", &attrs))
    })())
}

async fn local_subject_access_review(
    State(auth): State<Arc<Auth>>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond((|| {
        let req = parse(&headers, &body, "LocalSubjectAccessReview")?;
        let subject = UserInfo::from_json(&req["spec"]);
        let attrs = spec_attributes(&req["spec"], subject)?;
        if attrs.namespace != namespace {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {namespace}"
            )));
        }
        Ok(access_review(
            &auth,
            req,
            "LocalSubjectAccessReview",
            &attrs,
        ))
    })())
}

async fn self_subject_access_review(
    State(auth): State<Arc<Auth>>,
    Extension(user): Extension<UserInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond((|| {
        let req = parse(&headers, &body, "SelfSubjectAccessReview")?;
        let attrs = spec_attributes(&req["spec"], user)?;
        Ok(access_review(&auth, req, "SelfSubjectAccessReview", &attrs))
    })())
}

async fn self_subject_rules_review(
    State(auth): State<Arc<Auth>>,
    Extension(user): Extension<UserInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond((|| {
        let req = parse(&headers, &body, "SelfSubjectRulesReview")?;
        let namespace = req["spec"]["namespace"].as_str().unwrap_or_default();
        let everything = auth.authorizer.always_allow() || user.in_group(super::user::MASTERS);
        let mut rules = if everything {
            vec![super::rbac::Rule {
                verbs: vec!["*".into()],
                api_groups: vec!["*".into()],
                resources: vec!["*".into()],
                non_resource_urls: vec!["*".into()],
                ..Default::default()
            }]
        } else {
            auth.authorizer
                .rbac
                .rules_for(&auth.server, &user, namespace)
        };
        if user.node_name().is_some() && !everything {
            rules.extend(super::bootstrap_policy::node_rules());
        }
        let resource_rules: Vec<Value> = rules
            .iter()
            .filter(|r| !r.resources.is_empty())
            .map(|r| {
                let mut v = json!({ "verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources });
                if !r.resource_names.is_empty() {
                    v["resourceNames"] = json!(r.resource_names);
                }
                v
            })
            .collect();
        let non_resource_rules: Vec<Value> = rules
            .iter()
            .filter(|r| !r.non_resource_urls.is_empty())
            .map(|r| json!({ "verbs": r.verbs, "nonResourceURLs": r.non_resource_urls }))
            .collect();
        Ok(answer(
            req,
            "authorization.k8s.io/v1",
            "SelfSubjectRulesReview",
            json!({
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                // The Node authorizer's object relationships are not expressible as rules.
                "incomplete": user.node_name().is_some() && !everything,
            }),
        ))
    })())
}

/// Issuer discovery: 404 unless service-account tokens come from an https issuer.
async fn openid_configuration(State(auth): State<Arc<Auth>>) -> Response {
    match auth
        .authenticator
        .service_accounts
        .as_ref()
        .and_then(|s| s.openid_configuration())
    {
        Some(doc) => json_response(StatusCode::OK, &doc, &[]),
        None => ApiError::not_found_path("/.well-known/openid-configuration").into_response(),
    }
}

async fn jwks(State(auth): State<Arc<Auth>>) -> Response {
    match auth.authenticator.service_accounts.as_ref() {
        Some(s) if s.openid_configuration().is_some() => {
            json_response(StatusCode::OK, &s.jwks(), &[])
        }
        _ => ApiError::not_found_path("/openid/v1/jwks").into_response(),
    }
}

async fn token_request(
    State(auth): State<Arc<Auth>>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let req = parse(&headers, &body, "TokenRequest")?;
        let sa = auth
            .authenticator
            .service_accounts
            .as_ref()
            .ok_or_else(|| ApiError::not_found_path("serviceaccounts/token"))?;
        let issued = sa.issue(&auth.server, &namespace, &name, &req).await?;
        Ok(json_response(StatusCode::CREATED, &issued, &[]))
    }
    .await;
    respond(result)
}

/// The groups of the review APIs, each served at v1.
pub fn groups() -> Vec<&'static str> {
    let mut out: Vec<&str> = RESOURCES.iter().map(|r| r.0).collect();
    out.dedup();
    out
}

/// Entries of the per-version resource list (`/apis/{group}/v1`, and `/api/v1` for the
/// TokenRequest subresource).
pub fn resource_list_entries(group: &str, version: &str) -> Vec<Value> {
    if version != "v1" {
        return Vec::new();
    }
    if group.is_empty() {
        return vec![json!({
            "name": "serviceaccounts/token",
            "singularName": "",
            "namespaced": true,
            "group": "authentication.k8s.io",
            "version": "v1",
            "kind": "TokenRequest",
            "verbs": ["create"],
        })];
    }
    RESOURCES
        .iter()
        .filter(|r| r.0 == group)
        .map(|(_, plural, kind, namespaced)| {
            json!({
                "name": plural,
                "singularName": kind.to_lowercase(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["create"],
            })
        })
        .collect()
}

/// Entries of the aggregated discovery document for `group` at v1.
pub fn aggregated_entries(group: &str) -> Vec<Value> {
    RESOURCES
        .iter()
        .filter(|r| r.0 == group)
        .map(|(g, plural, kind, namespaced)| {
            json!({
                "resource": plural,
                "responseKind": { "group": g, "version": "v1", "kind": kind },
                "scope": if *namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": kind.to_lowercase(),
                "verbs": ["create"],
            })
        })
        .collect()
}
