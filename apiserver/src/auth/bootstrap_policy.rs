//! Upstream's bootstrap RBAC policy, created at start-up when RBAC is on: the user-facing
//! roles (cluster-admin, admin, edit, view and the aggregated pieces behind them), the system
//! roles of every component, the per-controller roles of kube-controller-manager's service
//! accounts, and the bindings that give each well-known identity its role.
//!
//! Rules are written compactly: space-separated verbs, API groups (`core` is the legacy
//! group) and resources.

use serde_json::{json, Value};

use super::rbac::Rule;
use crate::{
    errors::ApiResult,
    registry::{catalog, store::Store},
    server::ApiServer,
};

/// One rule in compact form.
struct Spec {
    verbs: &'static str,
    groups: &'static str,
    resources: &'static str,
    names: &'static str,
    urls: &'static str,
}

const fn r(verbs: &'static str, groups: &'static str, resources: &'static str) -> Spec {
    Spec {
        verbs,
        groups,
        resources,
        names: "",
        urls: "",
    }
}

const fn named(
    verbs: &'static str,
    groups: &'static str,
    resources: &'static str,
    names: &'static str,
) -> Spec {
    Spec {
        verbs,
        groups,
        resources,
        names,
        urls: "",
    }
}

const fn urls(verbs: &'static str, urls: &'static str) -> Spec {
    Spec {
        verbs,
        groups: "",
        resources: "",
        names: "",
        urls,
    }
}

const READ: &str = "get list watch";
const WRITE: &str = "create delete deletecollection patch update";
const EVENTS: Spec = r("create update patch", "core events.k8s.io", "events");

impl Spec {
    fn rule(&self) -> Rule {
        let words = |s: &str| -> Vec<String> {
            s.split_whitespace()
                .map(|w| if w == "core" { "" } else { w }.to_string())
                .collect()
        };
        Rule {
            verbs: words(self.verbs),
            api_groups: words(self.groups),
            resources: words(self.resources),
            resource_names: words(self.names),
            non_resource_urls: words(self.urls),
        }
    }
}

fn rule_json(r: &Rule) -> Value {
    let mut v = json!({ "verbs": r.verbs });
    if !r.non_resource_urls.is_empty() {
        v["nonResourceURLs"] = json!(r.non_resource_urls);
        return v;
    }
    v["apiGroups"] = json!(r.api_groups);
    v["resources"] = json!(r.resources);
    if !r.resource_names.is_empty() {
        v["resourceNames"] = json!(r.resource_names);
    }
    v
}

/// system:node's rules, which the Node authorizer applies to every kubelet.
const NODE: &[Spec] = &[
    r("create", "authentication.k8s.io", "tokenreviews"),
    r(
        "create",
        "authorization.k8s.io",
        "localsubjectaccessreviews subjectaccessreviews",
    ),
    r(READ, "core", "services"),
    r("create get list watch", "core", "nodes"),
    r("patch update", "core", "nodes/status"),
    r("patch update", "core", "nodes"),
    r("create patch update", "core", "events"),
    r(READ, "core", "pods"),
    r("create delete", "core", "pods"),
    r("patch update", "core", "pods/status"),
    r("create", "core", "pods/eviction"),
    r(READ, "core", "configmaps secrets"),
    r("get", "core", "persistentvolumeclaims persistentvolumes"),
    r("get", "core", "endpoints"),
    r(
        "create get list watch",
        "certificates.k8s.io",
        "certificatesigningrequests",
    ),
    r(
        "create delete get patch update",
        "coordination.k8s.io",
        "leases",
    ),
    r("get", "storage.k8s.io", "volumeattachments"),
    r("create", "core", "serviceaccounts/token"),
    r("get patch update", "core", "persistentvolumeclaims/status"),
    r(READ, "storage.k8s.io", "csidrivers"),
    r(
        "create delete get patch update",
        "storage.k8s.io",
        "csinodes",
    ),
    r(READ, "node.k8s.io", "runtimeclasses"),
];

/// The static rules of kubelets.
pub fn node_rules() -> Vec<Rule> {
    NODE.iter().map(Spec::rule).collect()
}

struct Role {
    name: &'static str,
    /// `aggregate-to-*` labels this role carries.
    aggregate_to: &'static [&'static str],
    /// The `aggregate-to-<x>` label whose roles this role gathers.
    aggregates: Option<&'static str>,
    rules: &'static [Spec],
}

const fn role(name: &'static str, rules: &'static [Spec]) -> Role {
    Role {
        name,
        aggregate_to: &[],
        aggregates: None,
        rules,
    }
}

const CLUSTER_ROLES: &[Role] = &[
    role(
        "cluster-admin",
        &[r("*", "*", "*"), urls("*", "*")],
    ),
    Role {
        name: "admin",
        aggregate_to: &[],
        aggregates: Some("admin"),
        rules: &[],
    },
    Role {
        name: "edit",
        aggregate_to: &["admin"],
        aggregates: Some("edit"),
        rules: &[],
    },
    Role {
        name: "view",
        aggregate_to: &["edit"],
        aggregates: Some("view"),
        rules: &[],
    },
    Role {
        name: "system:aggregate-to-admin",
        aggregate_to: &["admin"],
        aggregates: None,
        rules: &[
            r("create", "authorization.k8s.io", "localsubjectaccessreviews"),
            r(
                "create delete deletecollection get list patch update watch",
                "rbac.authorization.k8s.io",
                "rolebindings roles",
            ),
        ],
    },
    Role {
        name: "system:aggregate-to-edit",
        aggregate_to: &["edit"],
        aggregates: None,
        rules: &[
            r(READ, "core", "pods/attach pods/exec pods/portforward pods/proxy secrets services/proxy"),
            r("impersonate", "core", "serviceaccounts"),
            r(WRITE, "core", "pods pods/attach pods/exec pods/portforward pods/proxy"),
            r("create", "core", "pods/eviction"),
            r(
                WRITE,
                "core",
                "configmaps events persistentvolumeclaims replicationcontrollers replicationcontrollers/scale secrets serviceaccounts services services/proxy",
            ),
            r("create", "core", "serviceaccounts/token"),
            r(
                WRITE,
                "apps",
                "daemonsets deployments deployments/rollback deployments/scale replicasets replicasets/scale statefulsets statefulsets/scale",
            ),
            r(WRITE, "autoscaling", "horizontalpodautoscalers"),
            r(WRITE, "batch", "cronjobs jobs"),
            r(WRITE, "policy", "poddisruptionbudgets"),
            r(WRITE, "networking.k8s.io", "ingresses networkpolicies"),
            r(
                "create delete deletecollection get list patch update watch",
                "coordination.k8s.io",
                "leases",
            ),
        ],
    },
    Role {
        name: "system:aggregate-to-view",
        aggregate_to: &["view"],
        aggregates: None,
        rules: &[
            r(
                READ,
                "core",
                "configmaps endpoints persistentvolumeclaims persistentvolumeclaims/status pods replicationcontrollers replicationcontrollers/scale serviceaccounts services services/status",
            ),
            r(
                READ,
                "core",
                "bindings events limitranges namespaces/status pods/log pods/status replicationcontrollers/status resourcequotas resourcequotas/status",
            ),
            r(READ, "core", "namespaces"),
            r(READ, "discovery.k8s.io", "endpointslices"),
            r(
                READ,
                "apps",
                "controllerrevisions daemonsets daemonsets/status deployments deployments/scale deployments/status replicasets replicasets/scale replicasets/status statefulsets statefulsets/scale statefulsets/status",
            ),
            r(READ, "autoscaling", "horizontalpodautoscalers horizontalpodautoscalers/status"),
            r(READ, "batch", "cronjobs cronjobs/status jobs jobs/status"),
            r(READ, "policy", "poddisruptionbudgets poddisruptionbudgets/status"),
            r(READ, "networking.k8s.io", "ingresses ingresses/status networkpolicies"),
        ],
    },
    role(
        "system:auth-delegator",
        &[
            r("create", "authentication.k8s.io", "tokenreviews"),
            r("create", "authorization.k8s.io", "subjectaccessreviews"),
        ],
    ),
    role(
        "system:basic-user",
        &[
            r(
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews selfsubjectrulesreviews",
            ),
            r("create", "authentication.k8s.io", "selfsubjectreviews"),
        ],
    ),
    role(
        "system:discovery",
        &[urls(
            "get",
            "/api /api/* /apis /apis/* /healthz /livez /openapi /openapi/* /readyz /version /version/",
        )],
    ),
    role(
        "system:public-info-viewer",
        &[urls("get", "/healthz /livez /readyz /version /version/")],
    ),
    role(
        "system:monitoring",
        &[urls(
            "get",
            "/healthz /healthz/* /livez /livez/* /metrics /metrics/slis /readyz /readyz/*",
        )],
    ),
    role(
        "system:service-account-issuer-discovery",
        &[urls("get", "/.well-known/openid-configuration /openid/v1/jwks")],
    ),
    role(
        "system:kube-controller-manager",
        &[
            EVENTS,
            r("create", "coordination.k8s.io", "leases"),
            named("get update", "coordination.k8s.io", "leases", "kube-controller-manager"),
            r("create", "core", "secrets serviceaccounts"),
            r("delete", "core", "secrets"),
            r("get", "core", "configmaps namespaces secrets serviceaccounts"),
            r("update", "core", "secrets serviceaccounts"),
            r("create", "authentication.k8s.io", "tokenreviews"),
            r("create", "authorization.k8s.io", "subjectaccessreviews"),
            r("list watch", "*", "*"),
            r("create", "core", "serviceaccounts/token"),
        ],
    ),
    role(
        "system:kube-scheduler",
        &[
            EVENTS,
            r("create", "coordination.k8s.io", "leases"),
            named("get update", "coordination.k8s.io", "leases", "kube-scheduler"),
            r(READ, "core", "nodes"),
            r("delete get list watch", "core", "pods"),
            r("create", "core", "bindings pods/binding"),
            r("patch update", "core", "pods/status"),
            r(READ, "core", "replicationcontrollers services"),
            r(READ, "apps extensions", "replicasets"),
            r(READ, "apps", "statefulsets"),
            r(READ, "policy", "poddisruptionbudgets"),
            r(READ, "core", "persistentvolumeclaims persistentvolumes"),
            r("create", "authentication.k8s.io", "tokenreviews"),
            r("create", "authorization.k8s.io", "subjectaccessreviews"),
            r(READ, "storage.k8s.io", "csinodes"),
            r(READ, "core", "namespaces"),
            r(READ, "storage.k8s.io", "csidrivers"),
            r(READ, "storage.k8s.io", "csistoragecapacities"),
        ],
    ),
    role(
        "system:volume-scheduler",
        &[
            r("get list patch update watch", "core", "persistentvolumes"),
            r(READ, "storage.k8s.io", "storageclasses"),
            r("get list patch update watch", "core", "persistentvolumeclaims"),
        ],
    ),
    role("system:kube-dns", &[r("list watch", "core", "endpoints services")]),
    role("system:node", NODE),
    role(
        "system:node-proxier",
        &[
            r("list watch", "core", "endpoints services"),
            r(READ, "core", "nodes"),
            EVENTS,
            r("list watch", "discovery.k8s.io", "endpointslices"),
        ],
    ),
    role(
        "system:node-bootstrapper",
        &[r("create get list watch", "certificates.k8s.io", "certificatesigningrequests")],
    ),
    role(
        "system:kubelet-api-admin",
        &[
            r(READ, "core", "nodes"),
            r("proxy", "core", "nodes"),
            r("*", "core", "nodes/log nodes/metrics nodes/proxy nodes/stats"),
        ],
    ),
    role("system:kube-aggregator", &[r(READ, "core", "endpoints services")]),
];

/// Controllers of kube-controller-manager, each run as service account `kube-system/<name>`
/// bound to ClusterRole `system:controller:<name>`.
const CONTROLLERS: &[Role] = &[
    role(
        "clusterrole-aggregation-controller",
        &[r(
            "escalate get list watch update patch",
            "rbac.authorization.k8s.io",
            "clusterroles",
        )],
    ),
    role(
        "cronjob-controller",
        &[
            r("get list watch update", "batch", "cronjobs"),
            r("get list watch create update delete patch", "batch", "jobs"),
            r("update", "batch", "cronjobs/status cronjobs/finalizers"),
            r("list watch delete", "core", "pods"),
            EVENTS,
        ],
    ),
    role(
        "daemon-set-controller",
        &[
            r(READ, "extensions apps", "daemonsets"),
            r(
                "update",
                "extensions apps",
                "daemonsets/status daemonsets/finalizers",
            ),
            r("list watch", "core", "nodes"),
            r("list watch create delete patch", "core", "pods"),
            r("create", "core", "pods/binding"),
            r(
                "get list watch create delete update patch",
                "apps",
                "controllerrevisions",
            ),
            EVENTS,
        ],
    ),
    role(
        "deployment-controller",
        &[
            r("get list watch update", "extensions apps", "deployments"),
            r(
                "update",
                "extensions apps",
                "deployments/status deployments/finalizers",
            ),
            r(
                "get list watch create update patch delete",
                "apps extensions",
                "replicasets",
            ),
            r("get list watch update", "core", "pods"),
            EVENTS,
        ],
    ),
    role(
        "disruption-controller",
        &[
            r(READ, "extensions apps", "deployments"),
            r(READ, "apps extensions", "replicasets"),
            r(READ, "core", "replicationcontrollers"),
            r(READ, "policy", "poddisruptionbudgets"),
            r(READ, "apps", "statefulsets"),
            r("update", "policy", "poddisruptionbudgets/status"),
            r("patch update", "core", "pods/status"),
            r("get", "*", "*/scale"),
            EVENTS,
        ],
    ),
    role(
        "endpoint-controller",
        &[
            r(READ, "core", "services pods"),
            r("get list watch create update delete", "core", "endpoints"),
            r("create", "core", "endpoints/restricted"),
            EVENTS,
        ],
    ),
    role(
        "endpointslice-controller",
        &[
            r(READ, "core", "services pods nodes"),
            r("update", "core", "services/finalizers"),
            r(
                "get list watch create update delete",
                "discovery.k8s.io",
                "endpointslices",
            ),
            EVENTS,
        ],
    ),
    role(
        "endpointslicemirroring-controller",
        &[
            r(READ, "core", "services endpoints"),
            r("update", "core", "services/finalizers endpoints/finalizers"),
            r(
                "get list watch create update delete",
                "discovery.k8s.io",
                "endpointslices",
            ),
            EVENTS,
        ],
    ),
    role(
        "generic-garbage-collector",
        &[r("get list watch patch update delete", "*", "*"), EVENTS],
    ),
    role(
        "horizontal-pod-autoscaler",
        &[
            r(READ, "autoscaling", "horizontalpodautoscalers"),
            r("update", "autoscaling", "horizontalpodautoscalers/status"),
            r("get update", "*", "*/scale"),
            r("list watch", "core", "pods"),
            r("list watch", "metrics.k8s.io", "pods"),
            r(READ, "custom.metrics.k8s.io", "*"),
            r(READ, "external.metrics.k8s.io", "*"),
            EVENTS,
        ],
    ),
    role(
        "job-controller",
        &[
            r("get list watch update patch", "batch", "jobs"),
            r("update", "batch", "jobs/status jobs/finalizers"),
            r("list watch create delete patch", "core", "pods"),
            EVENTS,
        ],
    ),
    role(
        "namespace-controller",
        &[
            r("get list watch delete", "core", "namespaces"),
            r("update", "core", "namespaces/finalize namespaces/status"),
            r("get list watch delete deletecollection", "*", "*"),
        ],
    ),
    role(
        "node-controller",
        &[
            r("get list watch update delete patch", "core", "nodes"),
            r("patch update", "core", "nodes/status pods/status"),
            r("list watch get delete", "core", "pods"),
            EVENTS,
        ],
    ),
    role(
        "pod-garbage-collector",
        &[
            r("list watch delete", "core", "pods"),
            r(READ, "core", "nodes"),
            r("patch", "core", "pods/status"),
        ],
    ),
    role(
        "replicaset-controller",
        &[
            r("get list watch update", "apps extensions", "replicasets"),
            r(
                "update",
                "apps extensions",
                "replicasets/status replicasets/finalizers",
            ),
            r("list watch patch create delete", "core", "pods"),
            EVENTS,
        ],
    ),
    role(
        "resourcequota-controller",
        &[
            r("list watch", "*", "*"),
            r("update", "core", "resourcequotas/status"),
            EVENTS,
        ],
    ),
    role(
        "service-account-controller",
        &[r("create", "core", "serviceaccounts"), EVENTS],
    ),
    role(
        "service-controller",
        &[
            r(READ, "core", "services"),
            r("patch update", "core", "services/status"),
            r("list watch", "core", "nodes"),
            EVENTS,
        ],
    ),
    role(
        "statefulset-controller",
        &[
            r("list watch", "core", "pods"),
            r(READ, "apps", "statefulsets"),
            r(
                "update",
                "apps",
                "statefulsets/status statefulsets/finalizers",
            ),
            r("get create delete update patch", "core", "pods"),
            r(
                "get create delete update patch list watch",
                "apps",
                "controllerrevisions",
            ),
            r(
                "get create list watch update delete",
                "core",
                "persistentvolumeclaims",
            ),
            r("update", "core", "pods/finalizers"),
            EVENTS,
        ],
    ),
    role(
        "ttl-controller",
        &[r("update patch list watch", "core", "nodes"), EVENTS],
    ),
    role(
        "ttl-after-finished-controller",
        &[r("get list watch delete", "batch", "jobs"), EVENTS],
    ),
    role(
        "root-ca-cert-publisher",
        &[r("create update", "core", "configmaps"), EVENTS],
    ),
];

/// A ClusterRoleBinding: role name and subjects as (kind, name) with ServiceAccounts as
/// `namespace/name`.
const CLUSTER_ROLE_BINDINGS: &[(&str, &[(&str, &str)])] = &[
    ("cluster-admin", &[("Group", "system:masters")]),
    ("system:basic-user", &[("Group", "system:authenticated")]),
    ("system:discovery", &[("Group", "system:authenticated")]),
    (
        "system:public-info-viewer",
        &[
            ("Group", "system:authenticated"),
            ("Group", "system:unauthenticated"),
        ],
    ),
    ("system:monitoring", &[("Group", "system:monitoring")]),
    (
        "system:service-account-issuer-discovery",
        &[("Group", "system:serviceaccounts")],
    ),
    (
        "system:kube-controller-manager",
        &[("User", "system:kube-controller-manager")],
    ),
    (
        "system:kube-scheduler",
        &[("User", "system:kube-scheduler")],
    ),
    (
        "system:volume-scheduler",
        &[("User", "system:kube-scheduler")],
    ),
    (
        "system:kube-dns",
        &[("ServiceAccount", "kube-system/kube-dns")],
    ),
    // Kubelets are authorized by the Node authorizer; upstream keeps this binding empty.
    ("system:node", &[]),
    ("system:node-proxier", &[("User", "system:kube-proxy")]),
];

fn metadata(name: &str) -> Value {
    json!({
        "name": name,
        "labels": { "kubernetes.io/bootstrapping": "rbac-defaults" },
        "annotations": { "rbac.authorization.kubernetes.io/autoupdate": "true" },
    })
}

fn cluster_role(name: &str, r: &Role) -> Value {
    let mut obj = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name),
        "rules": r.rules.iter().map(|s| rule_json(&s.rule())).collect::<Vec<_>>(),
    });
    for to in r.aggregate_to {
        obj["metadata"]["labels"][format!("rbac.authorization.k8s.io/aggregate-to-{to}")] =
            json!("true");
    }
    if let Some(label) = r.aggregates {
        obj["aggregationRule"] = json!({ "clusterRoleSelectors": [{
            "matchLabels": { format!("rbac.authorization.k8s.io/aggregate-to-{label}"): "true" },
        }]});
    }
    obj
}

fn binding(role: &str, subjects: &[(&str, &str)]) -> Value {
    let subjects: Vec<Value> = subjects
        .iter()
        .map(|(kind, name)| match (kind, name.split_once('/')) {
            (&"ServiceAccount", Some((ns, n))) => {
                json!({ "kind": "ServiceAccount", "name": n, "namespace": ns })
            }
            _ => json!({ "kind": kind, "apiGroup": "rbac.authorization.k8s.io", "name": name }),
        })
        .collect();
    let mut obj = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(role),
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
    });
    if !subjects.is_empty() {
        obj["subjects"] = json!(subjects);
    }
    obj
}

/// Every bootstrap ClusterRole and ClusterRoleBinding.
pub fn objects() -> (Vec<Value>, Vec<Value>) {
    let mut roles: Vec<Value> = CLUSTER_ROLES
        .iter()
        .map(|r| cluster_role(r.name, r))
        .collect();
    let mut bindings: Vec<Value> = CLUSTER_ROLE_BINDINGS
        .iter()
        .map(|(role, subjects)| binding(role, subjects))
        .collect();
    for c in CONTROLLERS {
        let name = format!("system:controller:{}", c.name);
        roles.push(cluster_role(&name, c));
        bindings.push(binding(
            &name,
            &[("ServiceAccount", &format!("kube-system/{}", c.name))],
        ));
    }
    (roles, bindings)
}

const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

/// What an existing bootstrap object lacks of its defaults added back (rules, subjects,
/// aggregation), as upstream reconciles objects still annotated `autoupdate: "true"`;
/// `None` when nothing is missing or the administrators opted out.
fn reconciled(existing: &Value, desired: &Value) -> Option<Value> {
    if existing["metadata"]["annotations"][AUTOUPDATE] != "true" {
        return None;
    }
    let mut out = existing.clone();
    let mut changed = false;
    let rules =
        |v: &Value| -> Vec<Rule> { serde_json::from_value(v["rules"].clone()).unwrap_or_default() };
    let have = rules(existing);
    let wanted = desired["rules"].as_array().into_iter().flatten();
    for (rule, raw) in rules(desired).iter().zip(wanted) {
        if !have.contains(rule) {
            push(&mut out, "rules", raw);
            changed = true;
        }
    }
    let subject = |s: &Value| {
        (
            s["kind"].as_str().unwrap_or_default().to_string(),
            s["name"].as_str().unwrap_or_default().to_string(),
            s["namespace"].as_str().unwrap_or_default().to_string(),
        )
    };
    let have: Vec<_> = existing["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(subject)
        .collect();
    for s in desired["subjects"].as_array().into_iter().flatten() {
        if !have.contains(&subject(s)) {
            push(&mut out, "subjects", s);
            changed = true;
        }
    }
    if desired.get("aggregationRule").is_some()
        && existing["aggregationRule"] != desired["aggregationRule"]
    {
        out["aggregationRule"] = desired["aggregationRule"].clone();
        changed = true;
    }
    changed.then_some(out)
}

fn push(obj: &mut Value, key: &str, item: &Value) {
    match obj[key].as_array_mut() {
        Some(list) => list.push(item.clone()),
        None => obj[key] = json!([item]),
    }
}

/// Creates the bootstrap policy objects that do not exist yet and adds back what existing
/// ones lack, unless their `autoupdate` annotation was set to anything but "true".
pub async fn ensure(server: &ApiServer) -> ApiResult<()> {
    let (roles, bindings) = objects();
    for (plural, objs) in [("clusterroles", roles), ("clusterrolebindings", bindings)] {
        let def = catalog::find(super::rbac::GROUP, "v1", plural)
            .ok_or_else(|| crate::errors::ApiError::internal(format!("no resource {plural}")))?;
        let store = Store::new(server, def);
        for obj in objs {
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match store.read("", &name).await {
                Ok((existing, _)) => {
                    if let Some(update) = reconciled(&existing, &obj) {
                        tracing::info!(%plural, %name, "reconciling a bootstrap RBAC object");
                        store
                            .update("", &name, update, None, &Default::default())
                            .await?;
                    }
                    continue;
                }
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
            match store.create("", obj, &Default::default()).await {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_shape() {
        let (roles, bindings) = objects();
        let find = |name: &str| {
            roles
                .iter()
                .find(|r| r["metadata"]["name"] == name)
                .unwrap()
        };
        assert_eq!(find("cluster-admin")["rules"][1]["nonResourceURLs"][0], "*");
        assert_eq!(
            find("view")["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
            "true"
        );
        assert!(find("admin")["aggregationRule"]["clusterRoleSelectors"].is_array());
        assert_eq!(find("system:node")["rules"][2]["apiGroups"][0], "");
        let sa = bindings
            .iter()
            .find(|b| b["metadata"]["name"] == "system:controller:deployment-controller")
            .unwrap();
        assert_eq!(sa["subjects"][0]["namespace"], "kube-system");
        assert!(bindings
            .iter()
            .find(|b| b["metadata"]["name"] == "system:node")
            .unwrap()
            .get("subjects")
            .is_none());
    }

    #[test]
    fn reconciliation_adds_back_what_is_missing() {
        let (roles, bindings) = objects();
        let basic = roles
            .iter()
            .find(|r| r["metadata"]["name"] == "system:basic-user")
            .unwrap();
        assert!(reconciled(basic, basic).is_none());
        let mut trimmed = basic.clone();
        trimmed["rules"].as_array_mut().unwrap().remove(0);
        trimmed["rules"]
            .as_array_mut()
            .unwrap()
            .push(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["extra"]}));
        let fixed = reconciled(&trimmed, basic).unwrap();
        assert_eq!(fixed["rules"].as_array().unwrap().len(), 3);
        trimmed["metadata"]["annotations"][AUTOUPDATE] = json!("false");
        assert!(reconciled(&trimmed, basic).is_none());
        let admin = bindings
            .iter()
            .find(|b| b["metadata"]["name"] == "cluster-admin")
            .unwrap();
        let mut emptied = admin.clone();
        emptied["subjects"] = json!([]);
        assert_eq!(
            reconciled(&emptied, admin).unwrap()["subjects"],
            admin["subjects"]
        );
    }
}
