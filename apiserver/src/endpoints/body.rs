//! Request bodies: JSON (checked field by field against the type's schema, as upstream's
//! strict decoder), YAML, and Kubernetes protobuf.

use apimachinery::fieldvalidation::{self, FieldValidation};
use serde_json::Value;

use crate::{
    errors::{ApiError, ApiResult},
    registry::ResourceDef,
};

/// Upstream's limit on request bodies (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Reads a whole request body, refusing more than [`MAX_BODY`] with 413 as upstream.
pub async fn read_limited(body: axum::body::Body) -> ApiResult<bytes::Bytes> {
    use http_body_util::BodyExt;
    let collected = http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            let mut err = ApiError::bad_request(format!("the request body could not be read: {e}"));
            if e.to_string().contains("length limit") {
                err.code = 413;
                err.reason = "RequestEntityTooLarge";
                err.message = format!("Request entity too large: limit is {MAX_BODY}");
            }
            err
        })?;
    Ok(collected.to_bytes())
}

/// Decodes a create or update body for `def`, applying `fieldValidation`; warnings for the
/// `Warning` header are appended to `warnings`.
pub fn decode(
    def: &ResourceDef,
    content_type: &str,
    body: &[u8],
    validation: FieldValidation,
    warnings: &mut Vec<String>,
) -> ApiResult<Value> {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let cannot_handle = |cause: &str| {
        ApiError::bad_request(fieldvalidation::cannot_handle_message(
            def.kind,
            def.version,
            cause,
        ))
    };
    let (value, raw_json): (Value, Option<&[u8]>) = match mime {
        "" | "application/json" | "*/*" => (
            serde_json::from_slice(body).map_err(|e| cannot_handle(&format!("json: {e}")))?,
            Some(body),
        ),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body).map_err(|e| cannot_handle(&e.to_string()))?;
            let v: Value =
                serde_saphyr::from_str(text).map_err(|e| cannot_handle(&format!("yaml: {e}")))?;
            (v, None)
        }
        m if apimachinery::protobuf::is_protobuf_content_type(m) => (
            apimachinery::protobuf::decode(body).map_err(|e| cannot_handle(&e.to_string()))?,
            None,
        ),
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(cannot_handle("the body must be a JSON object"));
    }
    let defs = apimachinery::schema::definitions();
    let Some(root) = defs.root(def.group, def.version, def.kind) else {
        return Ok(value);
    };
    let report = match raw_json {
        Some(raw) => fieldvalidation::check(root.definition, raw)
            .map_err(|e| cannot_handle(&format!("json: {e}")))?,
        None => fieldvalidation::Report {
            strict: fieldvalidation::unknown_fields(root.definition, &value)
                .into_iter()
                .map(fieldvalidation::StrictIssue::UnknownField)
                .collect(),
            type_errors: fieldvalidation::type_mismatches(root.definition, &value),
        },
    };
    if let Some(first) = report.type_errors.first() {
        return Err(cannot_handle(&first.message));
    }
    if !report.strict.is_empty() {
        match validation {
            FieldValidation::Strict => {
                return Err(cannot_handle(&fieldvalidation::strict_decoding_error(
                    &report.strict,
                )))
            }
            FieldValidation::Warn => warnings.extend(fieldvalidation::warnings(&report.strict)),
            FieldValidation::Ignore => {}
        }
    }
    Ok(value)
}
