//! `kubectl get rolebindings` and `clusterrolebindings`: the bound role and (wide) the users,
//! groups and service accounts it is bound to.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col("Role", "string", "The bound role, as Kind/name.", 0),
    AGE,
    col("Users", "string", "Users the role is bound to.", 1),
    col("Groups", "string", "Groups the role is bound to.", 1),
    col(
        "ServiceAccounts",
        "string",
        "Service accounts the role is bound to, as namespace/name.",
        1,
    ),
];

pub(super) fn cells(binding: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        fields::str(binding, &["roleRef", "kind"]),
        fields::str(binding, &["roleRef", "name"])
    );
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in fields::array(binding, &["subjects"]) {
        let name = fields::str(subject, &["name"]);
        match fields::str(subject, &["kind"]) {
            "User" => users.push(name.to_owned()),
            "Group" => groups.push(name.to_owned()),
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{name}", fields::str(subject, &["namespace"])))
            }
            _ => {}
        }
    }
    vec![
        fields::name(binding).into(),
        role.into(),
        fields::age(binding, now).into(),
        users.join(", ").into(),
        groups.join(", ").into(),
        service_accounts.join(", ").into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn cluster_role_binding_row() {
        let crb = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "cluster-admin", "creationTimestamp": ago(86400)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                 "name": "system:masters"},
                {"kind": "User", "name": "alice"},
                {"kind": "User", "name": "bob"},
                {"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}
            ]
        });
        assert_eq!(
            cells(&crb, now()),
            vec![
                json!("cluster-admin"),
                json!("ClusterRole/cluster-admin"),
                json!("24h"),
                json!("alice, bob"),
                json!("system:masters"),
                json!("ci/deployer"),
            ]
        );
    }

    #[test]
    fn role_binding_without_subjects() {
        let rb = json!({"metadata": {"name": "rb"},
            "roleRef": {"kind": "Role", "name": "reader"}});
        assert_eq!(
            cells(&rb, now()),
            vec![
                json!("rb"),
                json!("Role/reader"),
                json!("<unknown>"),
                json!(""),
                json!(""),
                json!("")
            ]
        );
    }
}
