//! Defaulting of the `admissionregistration.k8s.io` group: webhook configurations and
//! validating admission policies.

use serde_json::{json, Value};

use super::fields::{default_unset, for_each_object, object_mut, Object};

/// Defaults an admission-registration object of `kind`; kinds without defaults are untouched.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    match kind {
        "ValidatingWebhookConfiguration" => for_each_object(obj, "webhooks", webhook),
        "MutatingWebhookConfiguration" => for_each_object(obj, "webhooks", |hook| {
            webhook(hook);
            default_unset(hook, "reinvocationPolicy", Value::from("Never"));
        }),
        "ValidatingAdmissionPolicy" => {
            if let Some(spec) = object_mut(obj, "spec") {
                default_unset(spec, "failurePolicy", Value::from("Fail"));
                if let Some(constraints) = object_mut(spec, "matchConstraints") {
                    match_resources(constraints);
                }
            }
        }
        "ValidatingAdmissionPolicyBinding" => {
            let resources = object_mut(obj, "spec").and_then(|s| object_mut(s, "matchResources"));
            if let Some(resources) = resources {
                match_resources(resources);
            }
        }
        _ => {}
    }
}

/// A webhook fails closed, matches equivalent versions, selects everything, waits ten seconds,
/// and its rules cover all scopes; an in-cluster service listens on 443.
fn webhook(hook: &mut Object) {
    default_unset(hook, "failurePolicy", Value::from("Fail"));
    selectors(hook);
    default_unset(hook, "timeoutSeconds", Value::from(10));
    for_each_object(hook, "rules", rule);
    let service = object_mut(hook, "clientConfig").and_then(|c| object_mut(c, "service"));
    if let Some(service) = service {
        default_unset(service, "port", Value::from(443));
    }
}

fn match_resources(resources: &mut Object) {
    selectors(resources);
    for key in ["resourceRules", "excludeResourceRules"] {
        for_each_object(resources, key, rule);
    }
}

fn selectors(obj: &mut Object) {
    default_unset(obj, "matchPolicy", Value::from("Equivalent"));
    default_unset(obj, "namespaceSelector", json!({}));
    default_unset(obj, "objectSelector", json!({}));
}

fn rule(rule: &mut Object) {
    default_unset(rule, "scope", Value::from("*"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutating_webhook() {
        let mut config = json!({"webhooks": [{
            "name": "w.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"namespace": "ns", "name": "svc"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]
        }]});
        apply(
            "MutatingWebhookConfiguration",
            config.as_object_mut().unwrap(),
        );
        assert_eq!(
            config,
            json!({"webhooks": [{
                "name": "w.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                "clientConfig": {"service": {"namespace": "ns", "name": "svc", "port": 443}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "*"}],
                "failurePolicy": "Fail", "matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {},
                "timeoutSeconds": 10, "reinvocationPolicy": "Never"
            }]})
        );
    }

    #[test]
    fn validating_webhook_has_no_reinvocation() {
        let mut config = json!({"webhooks": [{"name": "w", "clientConfig": {"url": "https://x"}, "failurePolicy": "Ignore"}]});
        apply(
            "ValidatingWebhookConfiguration",
            config.as_object_mut().unwrap(),
        );
        let hook = &config["webhooks"][0];
        assert_eq!(hook["failurePolicy"], json!("Ignore"));
        assert!(hook.get("reinvocationPolicy").is_none());
        assert_eq!(hook["clientConfig"], json!({"url": "https://x"}));
    }

    #[test]
    fn validating_admission_policy() {
        let mut policy = json!({"spec": {"matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "resources": ["deployments"]}]},
                                          "validations": [{"expression": "true"}]}});
        apply("ValidatingAdmissionPolicy", policy.as_object_mut().unwrap());
        assert_eq!(
            policy,
            json!({"spec": {
                "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "resources": ["deployments"], "scope": "*"}],
                                     "matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {}},
                "validations": [{"expression": "true"}], "failurePolicy": "Fail"
            }})
        );
    }
}
