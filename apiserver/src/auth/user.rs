//! Who a request comes from, and the well-known names upstream gives users and groups.

use std::collections::BTreeMap;

use serde_json::{json, Value};

pub const ANONYMOUS: &str = "system:anonymous";
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
pub const MASTERS: &str = "system:masters";
pub const NODES: &str = "system:nodes";
pub const NODE_PREFIX: &str = "system:node:";
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// An authenticated identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS.into(),
            groups: vec![ALL_UNAUTHENTICATED.into()],
            ..Default::default()
        }
    }

    /// The identity of a service account's tokens.
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> UserInfo {
        UserInfo {
            name: format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"),
            uid: uid.into(),
            groups: vec![
                SERVICE_ACCOUNTS.into(),
                format!("{SERVICE_ACCOUNTS}:{namespace}"),
            ],
            extra: BTreeMap::new(),
        }
    }

    /// Adds `system:authenticated`, as upstream does for every authenticated user.
    pub fn authenticated(mut self) -> UserInfo {
        if self.name != ANONYMOUS && !self.groups.iter().any(|g| g == ALL_AUTHENTICATED) {
            self.groups.push(ALL_AUTHENTICATED.into());
        }
        self
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// `(namespace, name)` when this is a service account.
    pub fn service_account_parts(&self) -> Option<(&str, &str)> {
        self.name
            .strip_prefix(SERVICE_ACCOUNT_PREFIX)
            .and_then(|rest| rest.split_once(':'))
    }

    /// The node name when this is a node identity (`system:node:<name>` in `system:nodes`).
    pub fn node_name(&self) -> Option<&str> {
        if !self.in_group(NODES) {
            return None;
        }
        self.name.strip_prefix(NODE_PREFIX)
    }

    /// The `authentication.k8s.io/v1 UserInfo` form.
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "username": self.name, "groups": self.groups });
        if !self.uid.is_empty() {
            v["uid"] = json!(self.uid);
        }
        if !self.extra.is_empty() {
            v["extra"] = json!(self.extra);
        }
        v
    }

    /// Reads the `UserInfo` form (SubjectAccessReview specs and the like).
    pub fn from_json(v: &Value) -> UserInfo {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        UserInfo {
            name: v["username"]
                .as_str()
                .or(v["user"].as_str())
                .unwrap_or_default()
                .into(),
            uid: v["uid"].as_str().unwrap_or_default().into(),
            groups: strings(&v["groups"]),
            extra: v["extra"]
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        let sa = UserInfo::service_account("demo", "default", "u1").authenticated();
        assert_eq!(sa.name, "system:serviceaccount:demo:default");
        assert_eq!(sa.service_account_parts(), Some(("demo", "default")));
        assert!(sa.in_group("system:serviceaccounts:demo"));
        assert!(sa.in_group(ALL_AUTHENTICATED));
        assert!(!UserInfo::anonymous()
            .authenticated()
            .in_group(ALL_AUTHENTICATED));
        let node = UserInfo {
            name: "system:node:n1".into(),
            groups: vec![NODES.into()],
            ..Default::default()
        };
        assert_eq!(node.node_name(), Some("n1"));
        let fake = UserInfo {
            name: "system:node:n1".into(),
            ..Default::default()
        };
        assert_eq!(fake.node_name(), None);
    }
}
