//! Discovery: `/api`, `/apis`, `/apis/{group}`, the per-version resource lists, and the
//! aggregated `apidiscovery.k8s.io` v2 (and v2beta1) documents kubectl asks for, all derived
//! from the catalog.

use serde_json::{json, Value};

use crate::registry::{
    catalog::{GROUP_ORDER, RESOURCES},
    ResourceDef, Subresource,
};

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The groups served, in discovery order, with their versions.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut order: Vec<&str> = GROUP_ORDER.to_vec();
    for r in RESOURCES {
        if !order.contains(&r.group) {
            order.push(r.group);
        }
    }
    for g in order {
        let mut versions: Vec<&str> = RESOURCES
            .iter()
            .filter(|r| r.group == g)
            .map(|r| r.version)
            .collect();
        if crate::auth::reviews::groups().contains(&g) && !versions.contains(&"v1") {
            versions.push("v1");
        }
        versions.dedup();
        if !versions.is_empty() {
            out.push((g, versions));
        }
    }
    out
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// The kind, group and version a subresource answers with, and its verbs.
fn subresource_shape(
    def: &ResourceDef,
    sub: Subresource,
) -> (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
) {
    match sub {
        Subresource::Status => (
            def.group,
            def.version,
            def.kind,
            &["get", "patch", "update"],
        ),
        Subresource::Scale => ("autoscaling", "v1", "Scale", &["get", "patch", "update"]),
        Subresource::Binding => ("", "v1", "Binding", &["create"]),
        Subresource::Eviction => ("policy", "v1", "Eviction", &["create"]),
        Subresource::Finalize => ("", "v1", "Namespace", &["update"]),
        Subresource::Approval => (
            def.group,
            def.version,
            def.kind,
            &["get", "patch", "update"],
        ),
    }
}

/// `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

fn api_group(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": group_version(name, v), "version": v }))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or_default(),
    })
}

/// `/apis`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| api_group(g, vs))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `/apis/{group}`.
pub fn api_group_doc(group: &str) -> Option<Value> {
    let (_, versions) = groups()
        .into_iter()
        .find(|(g, _)| *g == group && !g.is_empty())?;
    let mut doc = api_group(group, &versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    let reviews = crate::auth::reviews::resource_list_entries(group, version);
    if defs.is_empty() && reviews.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for d in defs {
        let mut r = json!({
            "name": d.plural,
            "singularName": d.singular(),
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": VERBS,
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        resources.push(r);
        for sub in d.subresources {
            let (g, v, kind, verbs) = subresource_shape(d, *sub);
            let mut s = json!({
                "name": format!("{}/{}", d.plural, sub.name()),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if g != group || v != version {
                s["group"] = json!(g);
                s["version"] = json!(v);
            }
            resources.push(s);
        }
    }
    resources.extend(reviews);
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    }))
}

fn discovery_resource(d: &ResourceDef) -> Value {
    let subresources: Vec<Value> = d
        .subresources
        .iter()
        .map(|sub| {
            let (g, v, kind, verbs) = subresource_shape(d, *sub);
            json!({
                "subresource": sub.name(),
                "responseKind": { "group": g, "version": v, "kind": kind },
                "verbs": verbs,
            })
        })
        .collect();
    let mut r = json!({
        "resource": d.plural,
        "responseKind": { "group": d.group, "version": d.version, "kind": d.kind },
        "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": d.singular(),
        "verbs": VERBS,
    });
    if !d.short_names.is_empty() {
        r["shortNames"] = json!(d.short_names);
    }
    if !d.categories.is_empty() {
        r["categories"] = json!(d.categories);
    }
    if !subresources.is_empty() {
        r["subresources"] = json!(subresources);
    }
    r
}

/// The aggregated discovery document of the core group (`legacy`) or of every other group.
pub fn aggregated(legacy: bool, api_version: &str) -> Value {
    let items: Vec<Value> = groups()
        .iter()
        .filter(|(g, _)| g.is_empty() == legacy)
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let mut resources: Vec<Value> = RESOURCES
                        .iter()
                        .filter(|r| r.group == *g && r.version == *v)
                        .map(discovery_resource)
                        .collect();
                    if *v == "v1" {
                        resources.extend(crate::auth::reviews::aggregated_entries(g));
                    }
                    json!({ "version": v, "resources": resources, "freshness": "Current" })
                })
                .collect();
            json!({ "metadata": { "name": g, "creationTimestamp": null }, "versions": versions })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    })
}

/// The aggregated-discovery media type the client asked for, if any.
pub fn aggregated_media_type(accept: Option<&str>) -> Option<(&'static str, &'static str)> {
    let accept = accept?;
    for range in accept.split(',') {
        let params: Vec<&str> = range.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if params.first() == Some(&"application/json")
            && has("g=apidiscovery.k8s.io")
            && has("as=APIGroupDiscoveryList")
        {
            if has("v=v2") {
                return Some((
                    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                    "apidiscovery.k8s.io/v2",
                ));
            }
            if has("v=v2beta1") {
                return Some((
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
                    "apidiscovery.k8s.io/v2beta1",
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_are_discoverable_with_scale() {
        let list = resource_list("apps", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"deployments"));
        assert!(names.contains(&"deployments/scale"));
        let agg = aggregated(false, "apidiscovery.k8s.io/v2");
        let apps = agg["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .unwrap();
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deploy["shortNames"][0], "deploy");
        assert_eq!(deploy["subresources"].as_array().unwrap().len(), 2);
        let core = aggregated(true, "apidiscovery.k8s.io/v2");
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn picks_the_aggregated_media_type() {
        let a = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            aggregated_media_type(Some(a)).unwrap().1,
            "apidiscovery.k8s.io/v2"
        );
        assert!(aggregated_media_type(Some("application/json")).is_none());
    }
}
