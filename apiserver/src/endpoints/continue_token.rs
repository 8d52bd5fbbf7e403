//! List continuation tokens: the next key and the revision the list is read at, so every page
//! of one list comes from the same etcd snapshot.

use base64::Engine;
use serde_json::json;

use crate::errors::{ApiError, ApiResult};

/// Encodes where the next page starts.
pub fn encode(next_key: &str, revision: i64) -> String {
    let token = json!({ "v": "meta.k8s.io/v1", "rv": revision, "start": next_key });
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

/// Decodes a token into the next key and the revision.
pub fn decode(token: &str) -> ApiResult<(String, i64)> {
    let invalid = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| invalid())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let key = value
        .get("start")
        .and_then(|v| v.as_str())
        .ok_or_else(invalid)?;
    let rv = value
        .get("rv")
        .and_then(|v| v.as_i64())
        .ok_or_else(invalid)?;
    if key.contains("..") || key.starts_with('/') {
        return Err(invalid());
    }
    Ok((key.to_string(), rv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_garbage() {
        let t = encode("ns/pod-7", 42);
        assert_eq!(decode(&t).unwrap(), ("ns/pod-7".to_string(), 42));
        assert!(decode("!!!").is_err());
        assert!(decode(&encode("../x", 1)).is_err());
    }
}
