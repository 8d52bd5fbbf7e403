//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`).
//!
//! Typed Go clients (kubectl 1.32+ included) send built-in objects as protobuf. ferrokube
//! stores JSON, so [`decode`] turns any built-in type's protobuf body into the JSON object
//! the same request would have carried as JSON; [`encode`] is the reverse, for responses. Field numbers come from a table generated
//! from the k8s-pb sources (`build.rs`), JSON names from the OpenAPI schemas.

mod envelope;
mod error;
mod from_json;
mod go_duration;
mod json_names;
mod kinds;
mod omit_empty;
mod table;
mod to_json;
mod well_known;
mod wire;

use serde_json::Value;

pub use envelope::MAGIC;
pub use error::ProtobufError;

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Whether a `Content-Type` header value names the Kubernetes protobuf encoding
/// (parameters such as `; charset=` are ignored).
pub fn is_protobuf_content_type(content_type: &str) -> bool {
    media_type(content_type) == CONTENT_TYPE
}

/// Decodes an envelope body into the JSON object (with apiVersion and kind set from typeMeta).
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    envelope::decode_at_depth(body, 0)
}

/// Encodes a JSON object (with apiVersion and kind) into an envelope body, for clients
/// that accept only protobuf.
pub fn encode(value: &Value) -> Result<Vec<u8>, ProtobufError> {
    envelope::encode(value)
}

/// The lower-cased media type of a header value, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests;
