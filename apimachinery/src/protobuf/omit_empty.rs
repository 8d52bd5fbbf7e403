//! Which empty strings decode to an absent field.
//!
//! Go's protobuf encoder writes every value-typed (non-pointer) string field, even when it is
//! empty, while Go's JSON encoder omits such fields (`omitempty`). The wire cannot tell a
//! value `""` from a pointer set to `""`, so an empty string is dropped unless the schema
//! marks the field required (no `omitempty`) or the field is one of the few pointers whose
//! empty value means something different from unset. Without this, defaulting and
//! validation would see `imagePullPolicy: ""`, `metadata.namespace: ""` and the like on
//! every protobuf request.

use std::sync::OnceLock;

use serde_json::Value;

use super::json_names::{json_name, schema_of};
use super::table;

/// `*string` fields whose `""` is meaningful, by OpenAPI definition and JSON name.
const MEANINGFUL_EMPTY: &[(&str, &str)] = &[
    // "" asks for no storage class, unset for the default one.
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
        "storageClassName",
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
        "volumeAttributesClassName",
    ),
    // The unnamed port of an EndpointSlice is named "".
    ("io.k8s.api.discovery.v1.EndpointPort", "name"),
];

/// Whether an empty string in field `field` of `message` means the field was not set.
pub(crate) fn empty_string_is_unset(message: usize, field: usize) -> bool {
    static KEPT: OnceLock<Vec<Vec<bool>>> = OnceLock::new();
    !KEPT.get_or_init(build)[message][field]
}

fn build() -> Vec<Vec<bool>> {
    table::messages()
        .iter()
        .enumerate()
        .map(|(m, def)| {
            let required: Vec<&str> = schema_of(m)
                .and_then(|d| d.get("required"))
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            (0..def.fields.len())
                .map(|f| {
                    let Some(name) = json_name(m, f) else {
                        return false;
                    };
                    required.contains(&name)
                        || MEANINGFUL_EMPTY
                            .iter()
                            .any(|(t, n)| *n == name && t.eq_ignore_ascii_case(def.name))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unset(message: &str, json: &str) -> bool {
        let m = table::find(message).unwrap();
        let f = (0..table::message(m).fields.len())
            .find(|&f| json_name(m, f) == Some(json))
            .unwrap();
        empty_string_is_unset(m, f)
    }

    #[test]
    fn optional_strings_are_unset_when_empty() {
        assert!(unset(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "namespace"
        ));
        assert!(unset("io.k8s.api.core.v1.Container", "imagePullPolicy"));
    }

    #[test]
    fn required_and_meaningful_empty_strings_are_kept() {
        assert!(!unset("io.k8s.api.core.v1.Container", "name"));
        assert!(!unset(
            "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
            "storageClassName"
        ));
    }
}
