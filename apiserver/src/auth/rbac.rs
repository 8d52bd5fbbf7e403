//! The RBAC authorizer: the rules of every (Cluster)Role bound to the user by a
//! ClusterRoleBinding, or by a RoleBinding in the request's namespace, read from the watch
//! caches. ClusterRoles with an `aggregationRule` hold the rules of the ClusterRoles their
//! selectors pick (resolved here, so they apply even before anything writes them back).
//! Also the escalation check: nobody creates a role, or binds one, granting more than they
//! hold themselves.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    hash::{Hash, Hasher},
    sync::{Arc, Mutex},
};

use apimachinery::selector::labels::{LabelSelector, Requirement};
use serde::Deserialize;
use serde_json::Value;

use super::{
    authorizer::{Attributes, Decision},
    user::UserInfo,
};
use crate::{registry::catalog, server::ApiServer};

pub const GROUP: &str = "rbac.authorization.k8s.io";

/// One PolicyRule.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    #[serde(rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

impl Rule {
    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    /// Whether this rule allows the request `attrs` describes.
    pub fn allows(&self, attrs: &Attributes) -> bool {
        if !self.verb_matches(&attrs.verb) {
            return false;
        }
        if !attrs.resource_request {
            return self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || *u == attrs.path
                    || u.strip_suffix('*')
                        .is_some_and(|p| attrs.path.starts_with(p))
            });
        }
        let combined = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        self.api_groups
            .iter()
            .any(|g| g == "*" || *g == attrs.api_group)
            && self.resources.iter().any(|r| {
                r == "*"
                    || *r == combined
                    || (!attrs.subresource.is_empty()
                        && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
            })
            && (self.resource_names.is_empty()
                || (!attrs.name.is_empty() && self.resource_names.contains(&attrs.name)))
    }

    /// The rule's atoms: one (verb, group, resource, name) or (verb, url) each, the way
    /// upstream breaks rules down to compare coverage.
    fn atoms(&self) -> Vec<Rule> {
        let mut out = Vec::new();
        let one = |s: &String| vec![s.clone()];
        for verb in &self.verbs {
            for g in &self.api_groups {
                for r in &self.resources {
                    if self.resource_names.is_empty() {
                        out.push(Rule {
                            verbs: one(verb),
                            api_groups: one(g),
                            resources: one(r),
                            ..Default::default()
                        });
                    }
                    for n in &self.resource_names {
                        out.push(Rule {
                            verbs: one(verb),
                            api_groups: one(g),
                            resources: one(r),
                            resource_names: one(n),
                            ..Default::default()
                        });
                    }
                }
            }
            for u in &self.non_resource_urls {
                out.push(Rule {
                    verbs: one(verb),
                    non_resource_urls: one(u),
                    ..Default::default()
                });
            }
        }
        out
    }

    /// Whether this rule allows every request the atom `a` allows.
    fn covers_atom(&self, a: &Rule) -> bool {
        let has = |set: &[String], v: &String| set.iter().any(|s| s == "*" || s == v);
        if !a.verbs.iter().all(|v| has(&self.verbs, v)) {
            return false;
        }
        if let Some(u) = a.non_resource_urls.first() {
            return self.non_resource_urls.iter().any(|o| {
                o == "*" || o == u || o.strip_suffix('*').is_some_and(|p| u.starts_with(p))
            });
        }
        let resource_ok = a.resources.iter().all(|r| {
            self.resources.iter().any(|o| {
                o == "*"
                    || o == r
                    || r.split_once('/')
                        .is_some_and(|(_, sub)| o.strip_prefix("*/") == Some(sub))
            })
        });
        a.api_groups.iter().all(|g| has(&self.api_groups, g))
            && resource_ok
            && (self.resource_names.is_empty()
                || (!a.resource_names.is_empty()
                    && a.resource_names
                        .iter()
                        .all(|n| self.resource_names.contains(n))))
    }
}

/// The rules of `owner` not covered: empty when `owner` holds all of `wanted`.
pub fn uncovered(owner: &[Rule], wanted: &[Rule]) -> Vec<Rule> {
    wanted
        .iter()
        .flat_map(Rule::atoms)
        .filter(|a| !owner.iter().any(|o| o.covers_atom(a)))
        .collect()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RoleRef {
    kind: String,
    name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BindingObject {
    metadata: Meta,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Meta {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RoleObject {
    metadata: Meta,
    rules: Vec<Rule>,
    aggregation_rule: Option<Value>,
}

struct Binding {
    name: String,
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

impl Binding {
    fn applies_to(&self, user: &UserInfo) -> bool {
        self.subjects.iter().any(|s| match s.kind.as_str() {
            "User" => s.name == user.name,
            "Group" => user.in_group(&s.name),
            "ServiceAccount" => {
                let ns = if s.namespace.is_empty() {
                    &self.namespace
                } else {
                    &s.namespace
                };
                user.service_account_parts() == Some((ns.as_str(), s.name.as_str()))
            }
            _ => false,
        })
    }
}

/// The RBAC objects, parsed once per change.
#[derive(Default)]
struct Index {
    cluster_roles: HashMap<String, Arc<Vec<Rule>>>,
    roles: HashMap<(String, String), Arc<Vec<Rule>>>,
    cluster_bindings: Vec<Binding>,
    role_bindings: HashMap<String, Vec<Binding>>,
}

/// `matchLabels` and `matchExpressions` as a selector.
fn selector(v: &Value) -> LabelSelector {
    let mut requirements = Vec::new();
    if let Some(m) = v["matchLabels"].as_object() {
        for (k, val) in m {
            requirements.push(Requirement::Equals(
                k.clone(),
                val.as_str().unwrap_or_default().into(),
            ));
        }
    }
    for e in v["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default().to_string();
        let values: Vec<String> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        requirements.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => Requirement::In(key, values),
            "NotIn" => Requirement::NotIn(key, values),
            "Exists" => Requirement::Exists(key),
            _ => Requirement::DoesNotExist(key),
        });
    }
    LabelSelector { requirements }
}

impl Index {
    fn build(raw: [Vec<Arc<crate::storage::object::Object>>; 4]) -> Index {
        let [cluster_roles, roles, cluster_bindings, role_bindings] = raw;
        let parse_roles = |objs: &[Arc<crate::storage::object::Object>]| -> Vec<RoleObject> {
            objs.iter()
                .filter_map(|o| serde_json::from_slice(&o.raw).ok())
                .collect()
        };
        let parse_bindings = |objs: &[Arc<crate::storage::object::Object>]| -> Vec<Binding> {
            objs.iter()
                .filter_map(|o| serde_json::from_slice::<BindingObject>(&o.raw).ok())
                .map(|b| Binding {
                    name: b.metadata.name,
                    namespace: b.metadata.namespace,
                    role_ref: b.role_ref,
                    subjects: b.subjects,
                })
                .collect()
        };
        let crs = parse_roles(&cluster_roles);
        let by_name: HashMap<&str, &RoleObject> =
            crs.iter().map(|r| (r.metadata.name.as_str(), r)).collect();
        let mut index = Index::default();
        for r in &crs {
            let mut rules = Vec::new();
            let mut seen = HashSet::new();
            collect_aggregated(r, &crs, &by_name, &mut seen, &mut rules);
            index
                .cluster_roles
                .insert(r.metadata.name.clone(), Arc::new(rules));
        }
        for r in parse_roles(&roles) {
            index.roles.insert(
                (r.metadata.namespace.clone(), r.metadata.name.clone()),
                Arc::new(r.rules),
            );
        }
        index.cluster_bindings = parse_bindings(&cluster_bindings);
        for b in parse_bindings(&role_bindings) {
            index
                .role_bindings
                .entry(b.namespace.clone())
                .or_default()
                .push(b);
        }
        index
    }

    fn rules_of(&self, binding: &Binding) -> Option<Arc<Vec<Rule>>> {
        match binding.role_ref.kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&binding.role_ref.name).cloned(),
            "Role" => self
                .roles
                .get(&(binding.namespace.clone(), binding.role_ref.name.clone()))
                .cloned(),
            _ => None,
        }
    }

    /// The bindings that give `user` rules in `namespace` ("" for cluster scope only).
    fn bindings_for<'a>(
        &'a self,
        user: &'a UserInfo,
        namespace: &'a str,
    ) -> impl Iterator<Item = &'a Binding> + 'a {
        let namespaced = if namespace.is_empty() {
            None
        } else {
            self.role_bindings.get(namespace)
        };
        self.cluster_bindings
            .iter()
            .chain(namespaced.into_iter().flatten())
            .filter(move |b| b.applies_to(user))
    }
}

fn collect_aggregated<'a>(
    role: &'a RoleObject,
    all: &'a [RoleObject],
    by_name: &HashMap<&str, &'a RoleObject>,
    seen: &mut HashSet<&'a str>,
    out: &mut Vec<Rule>,
) {
    if !seen.insert(role.metadata.name.as_str()) {
        return;
    }
    for r in &role.rules {
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    let Some(agg) = &role.aggregation_rule else {
        return;
    };
    for sel in agg["clusterRoleSelectors"].as_array().into_iter().flatten() {
        let sel = selector(sel);
        for other in all {
            if sel.matches(&other.metadata.labels) {
                if let Some(o) = by_name.get(other.metadata.name.as_str()) {
                    collect_aggregated(o, all, by_name, seen, out);
                }
            }
        }
    }
}

/// The RBAC authorizer with its parsed view of the RBAC objects.
#[derive(Default)]
pub struct Rbac {
    cached: Mutex<Option<(u64, Arc<Index>)>>,
}

impl Rbac {
    fn index(&self, server: &ApiServer) -> Arc<Index> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let raw = [
            "clusterroles",
            "roles",
            "clusterrolebindings",
            "rolebindings",
        ]
        .map(|plural| match catalog::find(GROUP, "v1", plural) {
            Some(def) => server.cache(def).snapshot("").objects,
            None => Vec::new(),
        });
        for objs in &raw {
            objs.len().hash(&mut hasher);
            for o in objs {
                o.key.hash(&mut hasher);
                o.rv.hash(&mut hasher);
            }
        }
        let fingerprint = hasher.finish();
        let mut cached = match self.cached.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((fp, index)) = cached.as_ref() {
            if *fp == fingerprint {
                return index.clone();
            }
        }
        let index = Arc::new(Index::build(raw));
        *cached = Some((fingerprint, index.clone()));
        index
    }

    pub fn authorize(&self, server: &ApiServer, attrs: &Attributes) -> Decision {
        let index = self.index(server);
        for b in index.bindings_for(&attrs.user, &attrs.namespace) {
            if let Some(rules) = index.rules_of(b) {
                if rules.iter().any(|r| r.allows(attrs)) {
                    let kind = if b.namespace.is_empty() {
                        format!("ClusterRoleBinding \"{}\"", b.name)
                    } else {
                        format!("RoleBinding \"{}/{}\"", b.namespace, b.name)
                    };
                    return Decision::Allow(format!(
                        "RBAC: allowed by {kind} of {} \"{}\" to {}",
                        b.role_ref.kind,
                        b.role_ref.name,
                        subject_text(&attrs.user)
                    ));
                }
            }
        }
        Decision::NoOpinion(String::new())
    }

    /// Every rule `user` holds in `namespace` ("" for cluster-wide rules only).
    pub fn rules_for(&self, server: &ApiServer, user: &UserInfo, namespace: &str) -> Vec<Rule> {
        let index = self.index(server);
        let mut out: Vec<Rule> = Vec::new();
        for b in index.bindings_for(user, namespace) {
            for r in index.rules_of(b).iter().flat_map(|r| r.iter()) {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
        }
        out
    }

    /// The rules a `roleRef` names, as seen from `namespace`.
    pub fn role_rules(
        &self,
        server: &ApiServer,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> Option<Vec<Rule>> {
        let index = self.index(server);
        let rules = match kind {
            "ClusterRole" => index.cluster_roles.get(name),
            "Role" => index.roles.get(&(namespace.to_string(), name.to_string())),
            _ => None,
        }?;
        Some(rules.as_ref().clone())
    }
}

fn subject_text(user: &UserInfo) -> String {
    match user.service_account_parts() {
        Some((ns, name)) => format!("ServiceAccount \"{name}/{ns}\""),
        None => format!("User \"{}\"", user.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Rule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Rule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            ..Default::default()
        }
    }

    fn attrs(verb: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "demo".into(),
            ..Default::default()
        }
    }

    #[test]
    fn matches_verbs_resources_and_names() {
        let r = rule(&["get", "list"], &[""], &["pods", "pods/log"]);
        assert!(r.allows(&attrs("list", "pods", "", "")));
        assert!(r.allows(&attrs("get", "pods", "log", "p")));
        assert!(!r.allows(&attrs("create", "pods", "", "")));
        assert!(!r.allows(&attrs("get", "pods", "exec", "p")));
        let star_sub = rule(&["get"], &["*"], &["*/status"]);
        assert!(star_sub.allows(&attrs("get", "pods", "status", "p")));
        assert!(!star_sub.allows(&attrs("get", "pods", "", "p")));
        let mut named = rule(&["get"], &[""], &["configmaps"]);
        named.resource_names = vec!["a".into()];
        assert!(named.allows(&attrs("get", "configmaps", "", "a")));
        assert!(!named.allows(&attrs("get", "configmaps", "", "b")));
        assert!(!named.allows(&attrs("list", "configmaps", "", "")));
        let urls = Rule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/apis/*".into(), "/version".into()],
            ..Default::default()
        };
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: p.into(),
            ..Default::default()
        };
        assert!(urls.allows(&path("/apis/apps")));
        assert!(urls.allows(&path("/version")));
        assert!(!urls.allows(&path("/metrics")));
    }

    #[test]
    fn coverage() {
        let owner = vec![rule(
            &["get", "list", "watch"],
            &[""],
            &["pods", "configmaps"],
        )];
        assert!(uncovered(&owner, &[rule(&["get"], &[""], &["pods"])]).is_empty());
        assert_eq!(
            uncovered(&owner, &[rule(&["get", "create"], &[""], &["pods"])]).len(),
            1
        );
        assert!(!uncovered(&owner, &[rule(&["get"], &["*"], &["pods"])]).is_empty());
        let admin = vec![rule(&["*"], &["*"], &["*"])];
        assert!(uncovered(&admin, &[rule(&["*"], &["*"], &["*"])]).is_empty());
    }

    #[test]
    fn aggregation_is_transitive() {
        let raw = |v: serde_json::Value| RoleObject::deserialize(v).unwrap();
        let roles = vec![
            raw(
                serde_json::json!({"metadata": {"name": "admin"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-admin": "true"}}]}}),
            ),
            raw(
                serde_json::json!({"metadata": {"name": "edit", "labels": {"to-admin": "true"}}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-edit": "true"}}]}}),
            ),
            raw(
                serde_json::json!({"metadata": {"name": "edit-rules", "labels": {"to-edit": "true"}}, "rules": [{"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}]}),
            ),
        ];
        let by_name: HashMap<&str, &RoleObject> = roles
            .iter()
            .map(|r| (r.metadata.name.as_str(), r))
            .collect();
        let mut out = Vec::new();
        collect_aggregated(&roles[0], &roles, &by_name, &mut HashSet::new(), &mut out);
        assert_eq!(out, vec![rule(&["create"], &[""], &["pods"])]);
    }
}
