//! RBAC escalation prevention: creating or updating a Role or ClusterRole needs either the
//! `escalate` verb on it or holding every rule it grants; creating or updating a binding
//! needs either the `bind` verb on the role it references or holding every rule of that
//! role. Patches are judged by the object they would produce; patches that cannot be
//! evaluated here (server-side apply) need `escalate` (roles) or `bind` (bindings) outright.

use apimachinery::fieldvalidation::FieldValidation;
use serde_json::Value;

use super::{
    authorizer::{Attributes, Authorizer},
    rbac::{self, Rule},
    user::MASTERS,
};
use crate::{errors::ApiError, registry::catalog, server::ApiServer};

/// Whether a request writes RBAC roles or bindings.
pub fn applies(attrs: &Attributes) -> bool {
    attrs.resource_request
        && attrs.api_group == rbac::GROUP
        && attrs.subresource.is_empty()
        && matches!(attrs.verb.as_str(), "create" | "update" | "patch")
        && matches!(
            attrs.resource.as_str(),
            "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings"
        )
}

fn allowed(server: &ApiServer, authorizer: &Authorizer, attrs: &Attributes) -> bool {
    authorizer.authorize(server, attrs).allowed()
}

fn refuse(attrs: &Attributes, name: &str, why: String) -> ApiError {
    let subject = if name.is_empty() {
        format!("{}.{}", attrs.resource, attrs.api_group)
    } else {
        format!("{}.{} \"{name}\"", attrs.resource, attrs.api_group)
    };
    let mut e = ApiError::forbidden(format!("{subject} is forbidden: {why}"));
    e.details = Some(serde_json::json!({
        "name": name, "group": attrs.api_group, "kind": attrs.resource,
    }));
    e
}

fn not_held(attrs: &Attributes, missing: &[Rule]) -> String {
    let list: Vec<String> = missing
        .iter()
        .map(|r| {
            if r.non_resource_urls.is_empty() {
                format!(
                    "{{APIGroups:{:?}, Resources:{:?}, ResourceNames:{:?}, Verbs:{:?}}}",
                    r.api_groups, r.resources, r.resource_names, r.verbs
                )
            } else {
                format!(
                    "{{NonResourceURLs:{:?}, Verbs:{:?}}}",
                    r.non_resource_urls, r.verbs
                )
            }
        })
        .collect();
    format!(
        "user {:?} (groups={:?}) is attempting to grant RBAC permissions not currently held:\n{}",
        attrs.user.name,
        attrs.user.groups,
        list.join("\n")
    )
}

/// The object a JSON, merge or strategic-merge patch would produce from the cached one;
/// `None` when that cannot be worked out here (apply patches, unknown objects).
fn patched(
    server: &ApiServer,
    def: &'static crate::registry::ResourceDef,
    attrs: &Attributes,
    content_type: &str,
    body: &[u8],
) -> Option<Value> {
    let patch_type = apimachinery::patch::PatchType::from_content_type(content_type)?;
    let (current, _) = server
        .cache(def)
        .get(&def.key(&attrs.namespace, &attrs.name));
    let current: Value = serde_json::from_slice(&current?.raw).ok()?;
    let definition = format!("io.k8s.api.rbac.v1.{}", def.kind);
    apimachinery::patch::apply(patch_type, &definition, &current, body).ok()
}

/// Checks a write of an RBAC object whose body is `body`.
pub fn check(
    server: &ApiServer,
    authorizer: &Authorizer,
    attrs: &Attributes,
    content_type: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    if attrs.user.in_group(MASTERS) {
        return Ok(());
    }
    let is_binding = attrs.resource.ends_with("bindings");
    let privilege = |verb: &str, resource: &str, name: &str, namespace: &str| Attributes {
        user: attrs.user.clone(),
        verb: verb.into(),
        resource_request: true,
        api_group: rbac::GROUP.into(),
        api_version: "v1".into(),
        resource: resource.into(),
        name: name.into(),
        namespace: namespace.into(),
        ..Default::default()
    };
    let def = catalog::find(rbac::GROUP, "v1", &attrs.resource)
        .ok_or_else(|| ApiError::not_found_path(&attrs.resource))?;
    let obj: Value = if attrs.verb == "patch" {
        let Some(obj) = patched(server, def, attrs, content_type, body) else {
            // A patch this check cannot evaluate needs the privilege outright.
            let needed = if is_binding { "bind" } else { "escalate" };
            let target = if is_binding {
                "clusterroles"
            } else {
                attrs.resource.as_str()
            };
            if allowed(
                server,
                authorizer,
                &privilege(needed, target, "", &attrs.namespace),
            ) {
                return Ok(());
            }
            return Err(refuse(
                attrs,
                &attrs.name,
                format!(
                    "user {:?} may not send this patch of RBAC {} without the {needed:?} verb",
                    attrs.user.name, attrs.resource
                ),
            ));
        };
        obj
    } else {
        let mut warnings = Vec::new();
        crate::endpoints::body::decode(
            def,
            content_type,
            body,
            FieldValidation::Ignore,
            &mut warnings,
        )?
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or(&attrs.name);
    let namespace = if attrs.namespace.is_empty() {
        obj["metadata"]["namespace"].as_str().unwrap_or_default()
    } else {
        attrs.namespace.as_str()
    };
    let owner = authorizer.rbac.rules_for(server, &attrs.user, namespace);
    if is_binding {
        let kind = obj["roleRef"]["kind"].as_str().unwrap_or_default();
        let role = obj["roleRef"]["name"].as_str().unwrap_or_default();
        let role_resource = if kind == "Role" {
            "roles"
        } else {
            "clusterroles"
        };
        if allowed(
            server,
            authorizer,
            &privilege("bind", role_resource, role, namespace),
        ) {
            return Ok(());
        }
        let wanted = authorizer
            .rbac
            .role_rules(server, kind, role, namespace)
            .unwrap_or_default();
        let missing = rbac::uncovered(&owner, &wanted);
        if missing.is_empty() {
            return Ok(());
        }
        return Err(refuse(attrs, name, not_held(attrs, &missing)));
    }
    if allowed(
        server,
        authorizer,
        &privilege("escalate", &attrs.resource, name, namespace),
    ) {
        return Ok(());
    }
    if obj.get("aggregationRule").is_some_and(|a| !a.is_null()) {
        return Err(refuse(
            attrs,
            name,
            "must have cluster-admin privileges to use the aggregationRule".into(),
        ));
    }
    let wanted: Vec<Rule> = serde_json::from_value(obj["rules"].clone()).unwrap_or_default();
    let missing = rbac::uncovered(&owner, &wanted);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(refuse(attrs, name, not_held(attrs, &missing)))
    }
}
