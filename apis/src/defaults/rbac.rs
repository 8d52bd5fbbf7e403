//! Defaulting of the `rbac.authorization.k8s.io` group: role bindings.
//!
//! Roles and ClusterRoles have no defaults; their rules are stored as sent.

use super::fields::{default_string, for_each_object, object_mut, string_of, Object};

/// The API group of RBAC itself, which users and groups are referenced by.
const GROUP: &str = "rbac.authorization.k8s.io";

/// Defaults an RBAC object of `kind`; only the two binding kinds have defaults.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    if !matches!(kind, "RoleBinding" | "ClusterRoleBinding") {
        return;
    }
    if let Some(role_ref) = object_mut(obj, "roleRef") {
        default_string(role_ref, "apiGroup", GROUP);
    }
    for_each_object(obj, "subjects", subject);
}

/// User and Group subjects belong to the RBAC group; ServiceAccounts keep the core group "".
fn subject(subject: &mut Object) {
    if matches!(string_of(subject, "kind"), Some("User" | "Group")) {
        default_string(subject, "apiGroup", GROUP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectl_create_rolebinding() {
        // The body of `kubectl create rolebinding rb --clusterrole=view --user=alice --group=devs --serviceaccount=ns:sa`.
        let mut rb = json!({
            "kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "rb", "creationTimestamp": null},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}
            ]
        });
        apply("RoleBinding", rb.as_object_mut().unwrap());
        assert_eq!(
            rb["subjects"],
            json!([
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                {"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}
            ])
        );
    }

    #[test]
    fn role_ref_group_defaults() {
        let mut crb = json!({"roleRef": {"kind": "ClusterRole", "name": "admin"}});
        apply("ClusterRoleBinding", crb.as_object_mut().unwrap());
        assert_eq!(
            crb,
            json!({"roleRef": {"kind": "ClusterRole", "name": "admin", "apiGroup": "rbac.authorization.k8s.io"}})
        );
        let role = json!({"rules": [{"verbs": ["get"], "resources": ["pods"]}]});
        let mut same = role.clone();
        apply("Role", same.as_object_mut().unwrap());
        assert_eq!(same, role);
    }
}
