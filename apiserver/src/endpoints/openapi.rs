//! `/openapi/v3`: the index and one document per group-version, with the schemas of the types
//! it serves (carrying the patch and group-version-kind extensions kubectl reads for `apply`
//! and `explain`) and a path per resource operation.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::OnceLock,
};

use serde_json::{json, Map, Value};

use crate::registry::{catalog::RESOURCES, ResourceDef};

/// A group-version document and its hash.
pub struct Document {
    pub body: Vec<u8>,
    pub hash: String,
}

/// The documents keyed by their path below `/openapi/v3/` (`api/v1`, `apis/apps/v1`).
pub fn documents() -> &'static BTreeMap<String, Document> {
    static DOCS: OnceLock<BTreeMap<String, Document>> = OnceLock::new();
    DOCS.get_or_init(build)
}

/// The index document.
pub fn index() -> Value {
    let paths: Map<String, Value> = documents()
        .iter()
        .map(|(path, doc)| {
            (
                path.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash) }),
            )
        })
        .collect();
    json!({ "paths": paths })
}

fn doc_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn url_prefix(def: &ResourceDef) -> String {
    format!("/{}", doc_path(def.group, def.version))
}

fn build() -> BTreeMap<String, Document> {
    let mut by_gv: BTreeMap<String, Vec<&ResourceDef>> = BTreeMap::new();
    for r in RESOURCES {
        by_gv
            .entry(doc_path(r.group, r.version))
            .or_default()
            .push(r);
    }
    by_gv
        .into_iter()
        .map(|(path, defs)| {
            let doc = document(&defs);
            let body = serde_json::to_vec(&doc).unwrap_or_default();
            let hash = format!("{:016X}", fnv(&body));
            (path, Document { body, hash })
        })
        .collect()
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{}{name}", apimachinery::schema::REF_PREFIX) })
}

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(name) = x
                        .as_str()
                        .and_then(|r| r.strip_prefix(apimachinery::schema::REF_PREFIX))
                    {
                        out.insert(name.to_string());
                    }
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn parameter(name: &str, location: &str, description: &str) -> Value {
    json!({ "name": name, "in": location, "description": description, "schema": { "type": "string", "uniqueItems": true } })
}

fn operation(
    def: &ResourceDef,
    action: &str,
    response: Value,
    params: Vec<Value>,
    request: Option<Value>,
) -> Value {
    let mut op = json!({
        "operationId": format!("{action}{}", def.kind),
        "tags": [def.group_resource()],
        "parameters": params,
        "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": response } } } },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": { "group": def.group, "version": def.version, "kind": def.kind },
    });
    if let Some(body) = request {
        op["requestBody"] = body;
    }
    op
}

fn write_params() -> Vec<Value> {
    vec![
        parameter(
            "dryRun",
            "query",
            "When present, indicates that modifications should not be persisted.",
        ),
        parameter(
            "fieldManager",
            "query",
            "A name associated with the actor or entity that is making these changes.",
        ),
        parameter(
            "fieldValidation",
            "query",
            "Ignore, Warn or Strict: how the server treats unknown and duplicate fields.",
        ),
    ]
}

fn document(defs: &[&ResourceDef]) -> Value {
    let all = apimachinery::schema::definitions();
    let mut wanted = BTreeSet::new();
    let mut paths = Map::new();
    for def in defs {
        let Some(root) = all.root(def.group, def.version, def.kind) else {
            continue;
        };
        wanted.insert(root.definition.to_string());
        let object = schema_ref(root.definition);
        let list = json!({ "type": "object", "properties": {
            "apiVersion": { "type": "string" }, "kind": { "type": "string" },
            "metadata": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"),
            "items": { "type": "array", "items": schema_ref(root.definition) } } });
        let body =
            json!({ "content": { "application/json": { "schema": object } }, "required": true });
        let patch_body = json!({ "content": {
            "application/json-patch+json": { "schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch") },
            "application/merge-patch+json": { "schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch") },
            "application/strategic-merge-patch+json": { "schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch") },
        }, "required": true });
        let scope = if def.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let collection = format!("{}{scope}/{}", url_prefix(def), def.plural);
        let item = format!("{collection}/{{name}}");
        let mut patch_params = write_params();
        patch_params.push(parameter(
            "force",
            "query",
            "Force is going to force Apply requests.",
        ));
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(def, "list", list.clone(), vec![
                    parameter("labelSelector", "query", "A selector to restrict the list of returned objects by their labels."),
                    parameter("fieldSelector", "query", "A selector to restrict the list of returned objects by their fields."),
                ], None),
                "post": operation(def, "post", object.clone(), write_params(), Some(body.clone())),
                "delete": operation(def, "deletecollection", schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Status"), vec![], None),
            }),
        );
        paths.insert(
            item,
            json!({
                "get": operation(def, "get", object.clone(), vec![], None),
                "put": operation(def, "put", object.clone(), write_params(), Some(body)),
                "patch": operation(def, "patch", object.clone(), patch_params, Some(patch_body)),
                "delete": operation(def, "delete", object.clone(), vec![], None),
            }),
        );
        if def.namespaced {
            paths.insert(
                format!("{}/{}", url_prefix(def), def.plural),
                json!({ "get": operation(def, "list", list, vec![], None) }),
            );
        }
    }
    for extra in [
        "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    ] {
        wanted.insert(extra.to_string());
    }
    // Every definition reachable from the served types.
    let mut schemas = Map::new();
    let mut queue: Vec<String> = wanted.into_iter().collect();
    while let Some(name) = queue.pop() {
        if schemas.contains_key(&name) {
            continue;
        }
        if let Some(schema) = all.get(&name) {
            let mut refs = BTreeSet::new();
            collect_refs(schema, &mut refs);
            queue.extend(refs.into_iter().filter(|r| !schemas.contains_key(r)));
            schemas.insert(name, schema.clone());
        }
    }
    schemas
        .entry("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")
        .or_insert_with(|| json!({ "type": "object", "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body." }));
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0" },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_document_has_patch_with_field_validation_and_schemas() {
        let docs = documents();
        let apps = docs.get("apis/apps/v1").expect("apps doc");
        let doc: Value = serde_json::from_slice(&apps.body).unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert!(schemas.contains_key("io.k8s.api.apps.v1.DeploymentStrategy"));
        assert!(schemas.contains_key("io.k8s.api.core.v1.Container"));
        assert!(index()["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/api/v1?hash="));
    }
}
