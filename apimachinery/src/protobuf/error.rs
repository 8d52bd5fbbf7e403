//! Errors of protobuf body decoding and encoding.

use thiserror::Error;

/// Why a protobuf body could not be converted. Errors inside an object carry the JSON path
/// of the offending field so a client can see what it sent wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtobufError {
    #[error("protobuf body does not start with the Kubernetes magic prefix \"k8s\\x00\"")]
    MissingMagic,
    #[error("protobuf envelope (runtime.Unknown) is malformed: {0}")]
    Envelope(String),
    #[error("protobuf envelope has no apiVersion/kind")]
    MissingTypeMeta,
    #[error("protobuf envelope content encoding {0:?} is not supported")]
    UnsupportedContentEncoding(String),
    #[error("protobuf envelope content type {0:?} is not supported")]
    UnsupportedContentType(String),
    #[error("no protobuf message is known for apiVersion {api_version:?}, kind {kind:?}")]
    UnknownType { api_version: String, kind: String },
    #[error("malformed protobuf at {}: {detail}", or_root(.path))]
    Malformed { path: String, detail: String },
    #[error("cannot encode {} as protobuf: {detail}", or_root(.path))]
    Unencodable { path: String, detail: String },
}

impl ProtobufError {
    /// A decoding error at the current position; the path is filled in while unwinding.
    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        ProtobufError::Malformed {
            path: String::new(),
            detail: detail.into(),
        }
    }

    /// An encoding error at the current position; the path is filled in while unwinding.
    pub(crate) fn unencodable(detail: impl Into<String>) -> Self {
        ProtobufError::Unencodable {
            path: String::new(),
            detail: detail.into(),
        }
    }

    /// Prefixes the error's path with a field name (`spec` + `.replicas`) or an index/key
    /// segment that already starts with `[`.
    pub(crate) fn at(self, segment: &str) -> Self {
        match self {
            ProtobufError::Malformed { path, detail } => ProtobufError::Malformed {
                path: join(segment, &path),
                detail,
            },
            ProtobufError::Unencodable { path, detail } => ProtobufError::Unencodable {
                path: join(segment, &path),
                detail,
            },
            other => other,
        }
    }
}

fn or_root(path: &str) -> &str {
    if path.is_empty() {
        "the object root"
    } else {
        path
    }
}

fn join(segment: &str, rest: &str) -> String {
    if rest.is_empty() {
        segment.to_string()
    } else if rest.starts_with('[') {
        format!("{segment}{rest}")
    } else {
        format!("{segment}.{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_while_unwinding() {
        let err = ProtobufError::malformed("truncated varint")
            .at("containerPort")
            .at("[1]")
            .at("ports")
            .at("spec");
        assert_eq!(
            err.to_string(),
            "malformed protobuf at spec.ports[1].containerPort: truncated varint"
        );
    }
}
