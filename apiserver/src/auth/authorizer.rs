//! Authorization: the attributes of a request and the ordered chain of authorizers from
//! `--authorization-mode`; the first to allow or deny decides, as upstream's union.

use super::{node::NodeAuthorizer, rbac::Rbac, user::UserInfo, AuthError};
use crate::server::ApiServer;

/// What a request does, as authorizers see it.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub resource_request: bool,
    pub path: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

/// An authorizer's answer, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(String),
    Deny(String),
    NoOpinion(String),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow(r) | Decision::Deny(r) | Decision::NoOpinion(r) => r,
        }
    }
}

enum Mode {
    AlwaysAllow,
    AlwaysDeny,
    Node(NodeAuthorizer),
    Rbac,
}

/// The configured authorizers in order.
pub struct Authorizer {
    modes: Vec<Mode>,
    /// Shared by the RBAC mode, the Node mode's static rules and the escalation check.
    pub rbac: Rbac,
}

impl Authorizer {
    pub fn new(modes: &[String]) -> Result<Authorizer, AuthError> {
        let mut out = Vec::new();
        for m in modes {
            out.push(match m.as_str() {
                "AlwaysAllow" => Mode::AlwaysAllow,
                "AlwaysDeny" => Mode::AlwaysDeny,
                "Node" => Mode::Node(NodeAuthorizer),
                "RBAC" => Mode::Rbac,
                other => {
                    return Err(AuthError::Flags(format!(
                        "--authorization-mode: unknown mode {other:?} (AlwaysAllow, AlwaysDeny, Node, RBAC)"
                    )))
                }
            });
        }
        if out.is_empty() {
            out.push(Mode::AlwaysAllow);
        }
        Ok(Authorizer {
            modes: out,
            rbac: Rbac::default(),
        })
    }

    /// Whether RBAC is among the modes (bootstrap policy and escalation checks apply).
    pub fn has_rbac(&self) -> bool {
        self.modes.iter().any(|m| matches!(m, Mode::Rbac))
    }

    /// Whether the Node mode is on (NodeRestriction applies with it).
    pub fn has_node(&self) -> bool {
        self.modes.iter().any(|m| matches!(m, Mode::Node(_)))
    }

    /// Whether everything is allowed anyway (the development default).
    pub fn always_allow(&self) -> bool {
        matches!(self.modes.first(), Some(Mode::AlwaysAllow))
    }

    pub fn authorize(&self, server: &ApiServer, attrs: &Attributes) -> Decision {
        // Members of system:masters hold every right, whatever the modes (as upstream's
        // privileged-group authorizer in front of the chain).
        if attrs.user.in_group(super::user::MASTERS) {
            return Decision::Allow(String::new());
        }
        let mut reasons = Vec::new();
        for m in &self.modes {
            let d = match m {
                Mode::AlwaysAllow => Decision::Allow(String::new()),
                Mode::AlwaysDeny => Decision::Deny("Everything is forbidden.".into()),
                Mode::Node(n) => n.authorize(server, attrs),
                Mode::Rbac => self.rbac.authorize(server, attrs),
            };
            match d {
                Decision::NoOpinion(r) => {
                    if !r.is_empty() {
                        reasons.push(r);
                    }
                }
                decided => return decided,
            }
        }
        Decision::NoOpinion(reasons.join(", "))
    }
}

/// Upstream's wording of a refusal.
pub fn forbidden_message(attrs: &Attributes, reason: &str) -> String {
    let user = &attrs.user.name;
    let mut msg = if !attrs.resource_request {
        format!(
            "User \"{user}\" cannot {} path \"{}\"",
            attrs.verb, attrs.path
        )
    } else {
        let mut resource = attrs.resource.clone();
        if !attrs.subresource.is_empty() {
            resource = format!("{resource}/{}", attrs.subresource);
        }
        let scope = if attrs.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", attrs.namespace)
        };
        format!(
            "User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
            attrs.verb, attrs.api_group
        )
    };
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    msg
}

/// The 403 Status for a refused request.
pub fn forbidden(attrs: &Attributes, reason: &str) -> crate::errors::ApiError {
    let message = forbidden_message(attrs, reason);
    if !attrs.resource_request {
        return crate::errors::ApiError::forbidden(format!("forbidden: {message}"));
    }
    let qualified = if attrs.api_group.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}.{}", attrs.resource, attrs.api_group)
    };
    let subject = if attrs.name.is_empty() {
        qualified
    } else {
        format!("{qualified} \"{}\"", attrs.name)
    };
    let mut e = crate::errors::ApiError::forbidden(format!("{subject} is forbidden: {message}"));
    e.details = Some(serde_json::json!({
        "name": attrs.name,
        "group": attrs.api_group,
        "kind": attrs.resource,
    }));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_wording() {
        let a = Attributes {
            user: UserInfo {
                name: "alice".into(),
                ..Default::default()
            },
            verb: "create".into(),
            resource_request: true,
            resource: "pods".into(),
            namespace: "demo".into(),
            ..Default::default()
        };
        assert_eq!(
            forbidden(&a, "").message,
            "pods is forbidden: User \"alice\" cannot create resource \"pods\" in API group \"\" in the namespace \"demo\""
        );
        assert!(Authorizer::new(&["Bogus".into()]).is_err());
    }
}
