//! Defaults of a Namespace.
//!
//! `spec.finalizers: [kubernetes]` is not a default: the namespace registry sets it on create.

use serde_json::Value;

use super::fields::{default_string, struct_mut, Object};

/// Label every named namespace carries with its own name, so selectors can pick namespaces
/// by name.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Defaults a Namespace object in place.
pub(crate) fn apply(namespace: &mut Object) {
    name_label(namespace);
    if let Some(status) = struct_mut(namespace, "status") {
        default_string(status, "phase", "Active");
    }
}

/// Sets (and overwrites) the name label; a namespace with only `generateName` gets it later.
fn name_label(namespace: &mut Object) {
    let Some(metadata) = namespace.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let name = match metadata.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => return,
    };
    if matches!(metadata.get("labels"), None | Some(Value::Null)) {
        metadata.insert("labels".into(), Value::Object(Object::new()));
    }
    if let Some(labels) = metadata.get_mut("labels").and_then(Value::as_object_mut) {
        labels.insert(NAME_LABEL.into(), Value::String(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectl_create_namespace() {
        let mut ns = json!({"kind": "Namespace", "apiVersion": "v1",
                            "metadata": {"name": "dev", "creationTimestamp": null},
                            "spec": {}, "status": {}});
        apply(ns.as_object_mut().unwrap());
        assert_eq!(
            ns,
            json!({"kind": "Namespace", "apiVersion": "v1",
                   "metadata": {"name": "dev", "creationTimestamp": null,
                                "labels": {"kubernetes.io/metadata.name": "dev"}},
                   "spec": {}, "status": {"phase": "Active"}})
        );
    }

    #[test]
    fn name_label_overwrites_a_forged_value() {
        let mut ns = json!({"metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "prod", "team": "a"}},
                            "status": {"phase": "Terminating"}});
        apply(ns.as_object_mut().unwrap());
        assert_eq!(
            ns,
            json!({"metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev", "team": "a"}},
                   "status": {"phase": "Terminating"}})
        );
    }

    #[test]
    fn generate_name_only_gets_no_label() {
        let mut ns = json!({"metadata": {"generateName": "tmp-"}});
        apply(ns.as_object_mut().unwrap());
        assert_eq!(
            ns,
            json!({"metadata": {"generateName": "tmp-"}, "status": {"phase": "Active"}})
        );
    }
}
