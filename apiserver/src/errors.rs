//! API errors and the `meta.k8s.io/v1 Status` bodies they become, with upstream's codes,
//! reasons and message wording so that clients (kubectl, client-go, kube-rs) react to them.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};

use crate::registry::ResourceDef;

/// One field problem in an Invalid status.
#[derive(Debug, Clone)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// An error answered as a `Status` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

fn details(def: &ResourceDef, name: &str) -> Value {
    let mut d = json!({ "name": name, "kind": def.plural });
    if !def.group.is_empty() {
        d["group"] = json!(def.group);
    }
    d
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn not_found(def: &ResourceDef, name: &str) -> ApiError {
        ApiError {
            details: Some(details(def, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", def.group_resource()),
            )
        }
    }

    pub fn already_exists(def: &ResourceDef, name: &str) -> ApiError {
        ApiError {
            details: Some(details(def, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", def.group_resource()),
            )
        }
    }

    pub fn conflict(def: &ResourceDef, name: &str, why: &str) -> ApiError {
        ApiError {
            details: Some(details(def, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {why}",
                    def.group_resource()
                ),
            )
        }
    }

    /// The optimistic-concurrency conflict clients retry on.
    pub fn modified(def: &ResourceDef, name: &str) -> ApiError {
        Self::conflict(
            def,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid for field errors found by validation, with upstream's message and causes.
    pub fn from_field_errors(
        def: &ResourceDef,
        name: &str,
        errors: &[apis::validation::FieldError],
    ) -> ApiError {
        let message = apis::validation::invalid_message(&def.qualified_kind(), name, errors);
        let causes = errors
            .iter()
            .map(|e| Cause {
                reason: e.reason().to_string(),
                message: e.message(),
                field: e.field.clone(),
            })
            .collect();
        ApiError::invalid(def, name, message, causes)
    }

    pub fn invalid(def: &ResourceDef, name: &str, message: String, causes: Vec<Cause>) -> ApiError {
        let mut d = json!({ "name": name, "kind": def.kind });
        if !def.group.is_empty() {
            d["group"] = json!(def.group);
        }
        d["causes"] = causes
            .iter()
            .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
            .collect();
        ApiError {
            details: Some(d),
            ..Self::new(422, "Invalid", message)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(403, "Forbidden", message)
    }

    /// Upstream's `NewForbidden` for an object: `pods "web" is forbidden: <why>`.
    pub fn forbidden_object(def: &ResourceDef, name: &str, why: &str) -> ApiError {
        ApiError {
            details: Some(details(def, name)),
            ..Self::new(
                403,
                "Forbidden",
                format!("{} \"{name}\" is forbidden: {why}", def.group_resource()),
            )
        }
    }

    pub fn not_found_path(path: &str) -> ApiError {
        let mut e = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(
            json!({ "causes": [{ "reason": "UnexpectedServerResponse", "message": format!("404 page not found: {path}") }] }),
        );
        e
    }

    pub fn method_not_supported(def: &ResourceDef, verb: &str) -> ApiError {
        let mut e = Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind \"{}\"",
                def.group_resource()
            ),
        );
        e.details = Some(json!({ "kind": def.plural, "group": def.group }));
        e
    }

    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"),
        )
    }

    pub fn not_acceptable(message: impl Into<String>) -> ApiError {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn gone(message: impl Into<String>) -> ApiError {
        Self::new(410, "Expired", message)
    }

    pub fn timeout(message: impl Into<String>) -> ApiError {
        let mut e = Self::new(504, "Timeout", message);
        e.retry_after = Some(1);
        e
    }

    pub fn too_many_requests(message: impl Into<String>) -> ApiError {
        let mut e = Self::new(429, "TooManyRequests", message);
        e.retry_after = Some(1);
        e
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        Self::new(500, "InternalError", message)
    }

    pub fn service_unavailable(message: impl Into<String>) -> ApiError {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// A patch that could not be applied, with the code upstream answers.
    pub fn from_patch(err: &apimachinery::patch::PatchError) -> ApiError {
        Self::new(err.code(), err.reason(), err.status_message())
    }

    /// The Status object.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        if let Some(after) = self.retry_after {
            let details = s
                .as_object_mut()
                .map(|o| o.entry("details").or_insert_with(|| json!({})));
            if let Some(d) = details {
                d["retryAfterSeconds"] = json!(after);
            }
        }
        s
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(err: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError as E;
        match err {
            E::Compacted { requested, oldest } => ApiError::gone(format!(
                "The resourceVersion for the provided watch is too old (requested {requested}, oldest {oldest})."
            )),
            E::Etcd(msg) => {
                tracing::warn!(%msg, "etcd request failed");
                ApiError::internal(format!("etcd request failed: {msg}"))
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.status()).unwrap_or_default();
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (code, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(after) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
