//! The Kubernetes protobuf envelope: the magic prefix `k8s\0` followed by a `runtime.Unknown`
//! message whose typeMeta names the object and whose raw bytes are the object's message.

use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message as _;
use serde_json::Value;

use super::error::ProtobufError;
use super::from_json::json_to_message;
use super::kinds::message_for;
use super::to_json::message_to_json;

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8] = b"k8s\0";

/// Decodes an envelope at a nesting depth (non-zero for envelopes inside RawExtensions).
pub(crate) fn decode_at_depth(body: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::MissingMagic)?;
    let unknown = Unknown::decode(rest).map_err(|e| ProtobufError::Envelope(e.to_string()))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtobufError::MissingTypeMeta);
    }
    if let Some(encoding) = unknown.content_encoding.filter(|e| !e.is_empty()) {
        return Err(ProtobufError::UnsupportedContentEncoding(encoding));
    }
    let raw = unknown.raw.unwrap_or_default();
    let mut value = match unknown.content_type.filter(|t| !t.is_empty()) {
        Some(t) if super::media_type(&t) == "application/json" => serde_json::from_slice(&raw)
            .map_err(|e| ProtobufError::Envelope(format!("raw JSON is invalid: {e}")))?,
        Some(t) if !super::is_protobuf_content_type(&t) => {
            return Err(ProtobufError::UnsupportedContentType(t))
        }
        _ => {
            let message =
                message_for(&api_version, &kind).ok_or_else(|| ProtobufError::UnknownType {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                })?;
            message_to_json(message, &raw, depth)?
        }
    };
    let Value::Object(object) = &mut value else {
        return Err(ProtobufError::Envelope(format!(
            "{api_version} {kind} is not an object"
        )));
    };
    object.insert("apiVersion".to_string(), Value::String(api_version));
    object.insert("kind".to_string(), Value::String(kind));
    Ok(value)
}

/// Encodes a JSON object with apiVersion and kind into an envelope body.
pub(crate) fn encode(value: &Value) -> Result<Vec<u8>, ProtobufError> {
    let type_field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or(ProtobufError::MissingTypeMeta)
    };
    let (api_version, kind) = (type_field("apiVersion")?, type_field("kind")?);
    let message = message_for(&api_version, &kind).ok_or_else(|| ProtobufError::UnknownType {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let raw = json_to_message(message, value, 0)?;
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version),
            kind: Some(kind),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    Ok(body)
}
