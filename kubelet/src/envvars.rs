//! A container's environment: `envFrom`, then `env` with `$(VAR)` references and `valueFrom`
//! (configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef), resolved as upstream does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::Api;

use crate::quantity;

/// Why a container's environment could not be built; reported as CreateContainerConfigError.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    KeyNotFound {
        key: String,
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("unsupported fieldPath {0:?}")]
    FieldPath(String),
    #[error("unsupported resource {0:?}")]
    Resource(String),
    #[error("no apiserver to read {0} from (standalone mode)")]
    Standalone(&'static str),
    #[error("reading from the apiserver: {0}")]
    Api(#[from] kube::Error),
}

/// Facts of the pod that fieldRef can name and the runtime only knows after the sandbox exists.
pub struct PodFacts<'a> {
    pub pod: &'a Pod,
    pub pod_ips: &'a [String],
    pub host_ip: &'a str,
    /// Node allocatable cpu (millicores) and memory (bytes): the defaults of unset limits.
    pub node_allocatable: (i64, i64),
}

impl PodFacts<'_> {
    /// The pod's namespace, `default` when unset.
    pub fn namespace(&self) -> String {
        self.pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into())
    }
}

/// Resolves `fieldPath` of a downward API reference.
pub fn field_ref(facts: &PodFacts<'_>, path: &str) -> Result<String, EnvError> {
    let meta = &facts.pod.metadata;
    let spec = facts.pod.spec.as_ref();
    let from_map = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let bracketed = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['"))
            .and_then(|r| r.strip_suffix("']"))
            .map(String::from)
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.to_string(),
        "status.podIP" => facts.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => facts.pod_ips.join(","),
        "metadata.labels" => render_map(meta.labels.as_ref()),
        "metadata.annotations" => render_map(meta.annotations.as_ref()),
        _ => {
            if let Some(key) = bracketed("metadata.labels") {
                from_map(&meta.labels, &key)
            } else if let Some(key) = bracketed("metadata.annotations") {
                from_map(&meta.annotations, &key)
            } else {
                return Err(EnvError::FieldPath(path.to_string()));
            }
        }
    })
}

/// `key="value"` lines, sorted, as the downward API renders label and annotation maps.
pub fn render_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .unwrap_or_default()
}

/// Resolves a `resourceFieldRef` of `container` (limits default to node allocatable).
pub fn resource_ref(
    facts: &PodFacts<'_>,
    container: &Container,
    resource: &str,
    divisor: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
) -> Result<String, EnvError> {
    let res = container.resources.as_ref();
    let get = |which: &str, name: &str| {
        let map = if which == "limits" {
            res.and_then(|r| r.limits.as_ref())
        } else {
            res.and_then(|r| r.requests.as_ref())
        };
        map.and_then(|m| m.get(name)).and_then(quantity::parse)
    };
    let (cpu_alloc, mem_alloc) = facts.node_allocatable;
    let value = match resource {
        "limits.cpu" => get("limits", "cpu").unwrap_or(cpu_alloc as f64 / 1000.0),
        "limits.memory" => get("limits", "memory").unwrap_or(mem_alloc as f64),
        "requests.cpu" => get("requests", "cpu").unwrap_or(0.0),
        "requests.memory" => get("requests", "memory").unwrap_or(0.0),
        "limits.ephemeral-storage" | "requests.ephemeral-storage" => get(
            &resource[..resource.find('.').unwrap_or(0)],
            "ephemeral-storage",
        )
        .unwrap_or(0.0),
        other => return Err(EnvError::Resource(other.to_string())),
    };
    let divisor = divisor
        .and_then(quantity::parse)
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    Ok(((value / divisor).ceil() as i64).to_string())
}

/// Expands `$(NAME)` references from `env`; `$$` escapes a `$`; unknown references stay as-is.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        if let Some(t) = tail.strip_prefix('$') {
            out.push('$');
            rest = t;
        } else if let Some(t) = tail.strip_prefix('(') {
            match t.find(')') {
                Some(end) => {
                    let name = &t[..end];
                    match env.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &t[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = t;
                }
            }
        } else {
            out.push('$');
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// The environment of `container`, in order, later entries overriding earlier ones.
pub async fn container_env(
    client: Option<&kube::Client>,
    facts: &PodFacts<'_>,
    container: &Container,
) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = facts.namespace();
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        env.retain(|(existing, _)| *existing != k);
        env.push((k, v));
    };
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.clone().unwrap_or_default();
        if let Some(r) = &source.config_map_ref {
            match config_map(client, &namespace, &r.name).await? {
                Some(cm) => {
                    for (k, v) in cm.data.unwrap_or_default() {
                        set(&mut env, format!("{prefix}{k}"), v);
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        }
        if let Some(r) = &source.secret_ref {
            match secret(client, &namespace, &r.name).await? {
                Some(s) => {
                    for (k, v) in s.data.unwrap_or_default() {
                        set(
                            &mut env,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => expand(var.value.as_deref().unwrap_or(""), &env),
            Some(from) => {
                if let Some(r) = &from.field_ref {
                    field_ref(facts, &r.field_path)?
                } else if let Some(r) = &from.resource_field_ref {
                    let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                        Some(name) => facts
                            .pod
                            .spec
                            .as_ref()
                            .and_then(|s| s.containers.iter().find(|c| c.name == name))
                            .unwrap_or(container),
                        None => container,
                    };
                    resource_ref(facts, target, &r.resource, r.divisor.as_ref())?
                } else if let Some(r) = &from.config_map_key_ref {
                    let cm = config_map(client, &namespace, &r.name).await?;
                    match cm.and_then(|c| c.data).and_then(|d| d.get(&r.key).cloned()) {
                        Some(v) => v,
                        None if r.optional == Some(true) => continue,
                        None => {
                            return Err(EnvError::KeyNotFound {
                                key: r.key.clone(),
                                kind: "configmap",
                                namespace: namespace.clone(),
                                name: r.name.clone(),
                            })
                        }
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let s = secret(client, &namespace, &r.name).await?;
                    match s.and_then(|s| s.data).and_then(|d| d.get(&r.key).cloned()) {
                        Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                        None if r.optional == Some(true) => continue,
                        None => {
                            return Err(EnvError::KeyNotFound {
                                key: r.key.clone(),
                                kind: "secret",
                                namespace: namespace.clone(),
                                name: r.name.clone(),
                            })
                        }
                    }
                } else {
                    String::new()
                }
            }
        };
        set(&mut env, var.name.clone(), value);
    }
    Ok(env)
}

/// Reads a ConfigMap; `None` when it does not exist.
pub async fn config_map(
    client: Option<&kube::Client>,
    ns: &str,
    name: &str,
) -> Result<Option<ConfigMap>, EnvError> {
    let client = client.ok_or(EnvError::Standalone("configmaps"))?;
    Ok(Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?)
}

/// Reads a Secret; `None` when it does not exist.
pub async fn secret(
    client: Option<&kube::Client>,
    ns: &str,
    name: &str,
) -> Result<Option<Secret>, EnvError> {
    let client = client.ok_or(EnvError::Standalone("secrets"))?;
    Ok(Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_references() {
        let env = vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "two".to_string()),
        ];
        assert_eq!(expand("x$(A)y$(B)", &env), "x1ytwo");
        assert_eq!(expand("$(MISSING)", &env), "$(MISSING)");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("cost $5", &env), "cost $5");
        assert_eq!(expand("open $(A", &env), "open $(A");
    }

    #[test]
    fn field_refs() {
        let pod = Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            },
            ..Default::default()
        };
        let ips = vec!["10.1.0.5".to_string()];
        let facts = PodFacts {
            pod: &pod,
            pod_ips: &ips,
            host_ip: "192.0.2.1",
            node_allocatable: (2000, 1 << 30),
        };
        assert_eq!(field_ref(&facts, "metadata.name").unwrap(), "p");
        assert_eq!(field_ref(&facts, "status.podIP").unwrap(), "10.1.0.5");
        assert_eq!(field_ref(&facts, "metadata.labels['app']").unwrap(), "web");
        assert!(field_ref(&facts, "spec.bogus").is_err());
        let c = Container::default();
        assert_eq!(resource_ref(&facts, &c, "limits.cpu", None).unwrap(), "2");
    }
}
