//! Defaulting of the `apiextensions.k8s.io` group: CustomResourceDefinition.

use serde_json::{json, Value};

use super::fields::{
    default_unset, for_each_object, is_empty, object_mut, string_of, struct_mut, Object,
};

/// Defaults an `apiextensions.k8s.io` object of `kind`; only CustomResourceDefinition has
/// defaults.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    if kind != "CustomResourceDefinition" {
        return;
    }
    let Some(spec) = struct_mut(obj, "spec") else {
        return;
    };
    names(spec);
    default_unset(spec, "conversion", json!({"strategy": "None"}));
    let service = object_mut(spec, "conversion")
        .and_then(|c| object_mut(c, "webhook"))
        .and_then(|w| object_mut(w, "clientConfig"))
        .and_then(|c| object_mut(c, "service"));
    if let Some(service) = service {
        default_unset(service, "port", Value::from(443));
    }
    let Some(version) = storage_version(spec) else {
        return;
    };
    if let Some(status) = struct_mut(obj, "status") {
        if is_empty(status, "storedVersions") {
            status.insert("storedVersions".into(), json!([version]));
        }
    }
}

/// The singular name is the lower-cased kind, the list kind is the kind plus `List`.
fn names(spec: &mut Object) {
    let Some(names) = struct_mut(spec, "names") else {
        return;
    };
    let kind = string_of(names, "kind").unwrap_or_default().to_owned();
    if string_of(names, "singular") == Some("") {
        names.insert("singular".into(), Value::String(kind.to_lowercase()));
    }
    if string_of(names, "listKind") == Some("") && !kind.is_empty() {
        names.insert("listKind".into(), Value::String(format!("{kind}List")));
    }
}

/// The name of the first version marked as the storage version.
fn storage_version(spec: &mut Object) -> Option<String> {
    let mut found = None;
    for_each_object(spec, "versions", |version| {
        if found.is_none() && version.get("storage") == Some(&Value::Bool(true)) {
            found = version
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_names_conversion_and_stored_versions() {
        let mut crd = json!({"spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"kind": "CronTab", "plural": "crontabs"},
            "versions": [{"name": "v1beta1", "served": true, "storage": false}, {"name": "v1", "served": true, "storage": true}]
        }});
        apply("CustomResourceDefinition", crd.as_object_mut().unwrap());
        assert_eq!(
            crd,
            json!({
                "spec": {
                    "group": "example.com", "scope": "Namespaced",
                    "names": {"kind": "CronTab", "plural": "crontabs", "singular": "crontab", "listKind": "CronTabList"},
                    "versions": [{"name": "v1beta1", "served": true, "storage": false}, {"name": "v1", "served": true, "storage": true}],
                    "conversion": {"strategy": "None"}
                },
                "status": {"storedVersions": ["v1"]}
            })
        );
    }

    #[test]
    fn webhook_conversion_service_port() {
        let mut crd = json!({"spec": {"names": {"kind": "A", "singular": "x", "listKind": "AList"},
            "conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"name": "s", "namespace": "n"}}, "conversionReviewVersions": ["v1"]}}}});
        apply("CustomResourceDefinition", crd.as_object_mut().unwrap());
        assert_eq!(
            crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"],
            json!(443)
        );
        assert_eq!(crd["spec"]["names"]["singular"], json!("x"));
        assert!(crd.get("status").is_none());
    }
}
