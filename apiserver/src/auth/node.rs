//! The Node authorizer: a kubelet (`system:node:<name>` in `system:nodes`) reads only the
//! secrets, configmaps and service-account tokens of pods bound to its node, and writes only
//! its own Node and Lease and the status of its own pods. Everything else it may do is
//! system:node's static rules.

use serde_json::Value;

use super::{
    authorizer::{Attributes, Decision},
    bootstrap_policy,
    user::NODES,
};
use crate::{registry::catalog, server::ApiServer};

/// Stateless: relationships are read from the pod cache on each request.
pub struct NodeAuthorizer;

/// Pods bound to `node` in `namespace`.
fn pods_on_node(server: &ApiServer, namespace: &str, node: &str) -> Vec<Value> {
    let Some(def) = catalog::find("", "v1", "pods") else {
        return Vec::new();
    };
    server
        .cache(def)
        .snapshot(&format!("{namespace}/"))
        .objects
        .iter()
        .filter_map(|o| serde_json::from_slice::<Value>(&o.raw).ok())
        .filter(|p| p["spec"]["nodeName"].as_str() == Some(node))
        .collect()
}

fn pod(server: &ApiServer, namespace: &str, name: &str) -> Option<Value> {
    let def = catalog::find("", "v1", "pods")?;
    let (obj, _) = server.cache(def).get(&def.key(namespace, name));
    serde_json::from_slice(&obj?.raw).ok()
}

fn each<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v[key].as_array().into_iter().flatten()
}

/// Whether `pod` uses the secret (`secret == true`) or configmap called `name`.
pub fn references(pod: &Value, secret: bool, name: &str) -> bool {
    let spec = &pod["spec"];
    let is = |v: &Value| v.as_str() == Some(name);
    let (volume_key, volume_name, key_ref, env_from) = if secret {
        ("secret", "secretName", "secretKeyRef", "secretRef")
    } else {
        ("configMap", "name", "configMapKeyRef", "configMapRef")
    };
    if secret && each(spec, "imagePullSecrets").any(|s| is(&s["name"])) {
        return true;
    }
    for v in each(spec, "volumes") {
        if is(&v[volume_key][volume_name]) {
            return true;
        }
        if each(&v["projected"], "sources").any(|s| is(&s[volume_key]["name"])) {
            return true;
        }
    }
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| each(spec, k))
        .any(|c| {
            each(c, "env").any(|e| is(&e["valueFrom"][key_ref]["name"]))
                || each(c, "envFrom").any(|e| is(&e[env_from]["name"]))
        })
}

fn no_relationship(node: &str) -> Decision {
    Decision::NoOpinion(format!(
        "no relationship found between node '{node}' and this object"
    ))
}

impl NodeAuthorizer {
    pub fn authorize(&self, server: &ApiServer, attrs: &Attributes) -> Decision {
        if !attrs.user.in_group(NODES) {
            return Decision::NoOpinion(String::new());
        }
        let Some(node) = attrs.user.node_name().filter(|n| !n.is_empty()) else {
            return Decision::NoOpinion("unknown node".into());
        };
        if attrs.resource_request {
            let own_name = attrs.name == node;
            match (attrs.api_group.as_str(), attrs.resource.as_str()) {
                ("", kind @ ("secrets" | "configmaps")) => {
                    if !matches!(attrs.verb.as_str(), "get" | "list" | "watch")
                        || attrs.name.is_empty()
                    {
                        return Decision::NoOpinion(
                            "can only get individual resources of this type".into(),
                        );
                    }
                    let secret = kind == "secrets";
                    let used = pods_on_node(server, &attrs.namespace, node)
                        .iter()
                        .any(|p| references(p, secret, &attrs.name));
                    return if used {
                        Decision::Allow(String::new())
                    } else {
                        no_relationship(node)
                    };
                }
                ("", "serviceaccounts") if attrs.subresource == "token" => {
                    let used = attrs.verb == "create"
                        && pods_on_node(server, &attrs.namespace, node)
                            .iter()
                            .any(|p| {
                                p["spec"]["serviceAccountName"]
                                    .as_str()
                                    .unwrap_or("default")
                                    == attrs.name
                            });
                    return if used {
                        Decision::Allow(String::new())
                    } else {
                        no_relationship(node)
                    };
                }
                ("", "nodes")
                    if !own_name && !matches!(attrs.verb.as_str(), "list" | "watch" | "create") =>
                {
                    return no_relationship(node);
                }
                ("coordination.k8s.io", "leases") => {
                    let ok = attrs.namespace == "kube-node-lease"
                        && (own_name || (attrs.verb == "create" && attrs.name.is_empty()));
                    if !ok {
                        return Decision::NoOpinion(
                            "can only access node lease with the same name as the requesting node"
                                .into(),
                        );
                    }
                }
                ("", "pods")
                    if attrs.subresource == "status"
                        || matches!(attrs.verb.as_str(), "delete" | "update" | "patch") =>
                {
                    let bound = pod(server, &attrs.namespace, &attrs.name)
                        .is_some_and(|p| p["spec"]["nodeName"].as_str() == Some(node));
                    if !bound {
                        return no_relationship(node);
                    }
                }
                _ => {}
            }
        }
        if bootstrap_policy::node_rules()
            .iter()
            .any(|r| r.allows(attrs))
        {
            Decision::Allow(String::new())
        } else {
            Decision::NoOpinion(String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_references() {
        let p = json!({"spec": {
            "imagePullSecrets": [{"name": "pull"}],
            "volumes": [
                {"name": "a", "secret": {"secretName": "vol"}},
                {"name": "b", "configMap": {"name": "cm"}},
                {"name": "c", "projected": {"sources": [{"secret": {"name": "proj"}}]}},
            ],
            "containers": [{"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "env", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "cm2"}}]}],
        }});
        for s in ["pull", "vol", "proj", "env"] {
            assert!(references(&p, true, s), "{s}");
        }
        assert!(!references(&p, true, "cm"));
        assert!(references(&p, false, "cm"));
        assert!(references(&p, false, "cm2"));
        assert!(!references(&p, false, "vol"));
    }
}
