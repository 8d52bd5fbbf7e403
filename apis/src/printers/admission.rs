//! `kubectl get` for admission configuration: webhook configurations, and validating and
//! mutating admission policies with their bindings.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::{fields, labels};

pub(super) const WEBHOOK_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Webhooks",
        "integer",
        "Number of webhooks in the configuration.",
        0,
    ),
    AGE,
];

pub(super) const VALIDATING_POLICY_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Validations",
        "integer",
        "Number of validation rules in the policy.",
        0,
    ),
    col(
        "ParamKind",
        "string",
        "Kind of the resource that parameterises the policy.",
        0,
    ),
    AGE,
];

pub(super) const MUTATING_POLICY_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Mutations",
        "integer",
        "Number of mutations in the policy.",
        0,
    ),
    col(
        "ParamKind",
        "string",
        "Kind of the resource that parameterises the policy.",
        0,
    ),
    AGE,
];

pub(super) const BINDING_COLUMNS: &[Column] = &[
    NAME,
    col(
        "PolicyName",
        "string",
        "The policy this binding applies.",
        0,
    ),
    col(
        "ParamRef",
        "string",
        "The parameter resource the binding supplies.",
        0,
    ),
    AGE,
];

pub(super) fn webhook_cells(cfg: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(cfg).into(),
        fields::array(cfg, &["webhooks"]).len().into(),
        fields::age(cfg, now).into(),
    ]
}

pub(super) fn validating_policy_cells(policy: &Value, now: DateTime<Utc>) -> Vec<Value> {
    policy_cells(policy, "validations", now)
}

pub(super) fn mutating_policy_cells(policy: &Value, now: DateTime<Utc>) -> Vec<Value> {
    policy_cells(policy, "mutations", now)
}

/// Name, number of rules in `spec.<rules>`, "apiVersion/kind" of the param kind, age.
fn policy_cells(policy: &Value, rules: &str, now: DateTime<Utc>) -> Vec<Value> {
    let param_kind = fields::get(policy, &["spec", "paramKind"]).map_or_else(
        || "<unset>".to_owned(),
        |k| {
            format!(
                "{}/{}",
                fields::str(k, &["apiVersion"]),
                fields::str(k, &["kind"])
            )
        },
    );
    vec![
        fields::name(policy).into(),
        fields::array(policy, &["spec", rules]).len().into(),
        param_kind.into(),
        fields::age(policy, now).into(),
    ]
}

pub(super) fn binding_cells(binding: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(binding).into(),
        fields::str(binding, &["spec", "policyName"]).into(),
        param_ref(binding).into(),
        fields::age(binding, now).into(),
    ]
}

/// "namespace/name", "*/name" when the namespace is unknown here, or the selector.
fn param_ref(binding: &Value) -> String {
    let Some(pr) = fields::get(binding, &["spec", "paramRef"]) else {
        return "<unset>".to_owned();
    };
    let name = fields::str(pr, &["name"]);
    let namespace = fields::str(pr, &["namespace"]);
    if !name.is_empty() {
        let namespace = if namespace.is_empty() { "*" } else { namespace };
        return format!("{namespace}/{name}");
    }
    match fields::get(pr, &["selector"]) {
        Some(selector) => labels::format_label_selector(Some(selector)),
        None => "<unset>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn webhook_row() {
        let cfg = json!({"metadata": {"name": "cert-manager-webhook",
                                      "creationTimestamp": ago(7200)},
                         "webhooks": [{"name": "webhook.cert-manager.io"}]});
        assert_eq!(
            webhook_cells(&cfg, now()),
            vec![json!("cert-manager-webhook"), json!(1), json!("120m")]
        );
    }

    #[test]
    fn policy_and_binding_rows() {
        let vap = json!({
            "metadata": {"name": "replica-limit", "creationTimestamp": ago(60)},
            "spec": {"paramKind": {"apiVersion": "rules.example.com/v1", "kind": "ReplicaLimit"},
                     "validations": [{"expression": "object.spec.replicas <= params.max"}]}
        });
        assert_eq!(
            validating_policy_cells(&vap, now()),
            vec![
                json!("replica-limit"),
                json!(1),
                json!("rules.example.com/v1/ReplicaLimit"),
                json!("60s")
            ]
        );
        let map = json!({"metadata": {"name": "m"}, "spec": {"mutations": [{}, {}]}});
        assert_eq!(
            mutating_policy_cells(&map, now())[1..3],
            [json!(2), json!("<unset>")]
        );

        let binding = json!({
            "metadata": {"name": "replica-limit-test", "creationTimestamp": ago(60)},
            "spec": {"policyName": "replica-limit",
                     "paramRef": {"name": "limit-test", "namespace": "default"}}
        });
        assert_eq!(
            binding_cells(&binding, now()),
            vec![
                json!("replica-limit-test"),
                json!("replica-limit"),
                json!("default/limit-test"),
                json!("60s")
            ]
        );
        let unnamespaced = json!({"spec": {"paramRef": {"name": "p"}}});
        assert_eq!(param_ref(&unnamespaced), "*/p");
        assert_eq!(param_ref(&json!({"spec": {}})), "<unset>");
    }
}
