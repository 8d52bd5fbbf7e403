//! JSON field names of protobuf fields.
//!
//! prost's snake_case names lose acronym case (`pod_ip`, `cluster_ips`), so the JSON name is
//! looked up in the OpenAPI schema of the same type (`podIP`, `clusterIPs`), comparing names
//! case-insensitively with separators removed. Besides the served schemas, the schemas of the
//! other stable API groups are generated here, only for their names; anything still unknown
//! falls back to a property name used elsewhere in the schemas, then to lowerCamelCase.
//!
//! Go structs embedded with `json:",inline"` (Probe's handler, Volume's source,
//! ConfigMapKeySelector's LocalObjectReference, ...) are a nested message on the wire but
//! flattened in JSON. Such a field has no JSON name of its own: it is recognised as a message
//! field missing from its type's schema whose own fields mostly are properties of that schema.

use std::collections::HashMap;
use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use super::table::{self, Card, FieldDef, MessageDef, Ty};
use crate::schema;

/// The JSON name of field `field` (an index into `fields`) of message `message`, or `None`
/// when the field is inlined into its parent's JSON object.
pub(crate) fn json_name(message: usize, field: usize) -> Option<&'static str> {
    static NAMES: OnceLock<Vec<Vec<Option<String>>>> = OnceLock::new();
    NAMES.get_or_init(build)[message][field].as_deref()
}

/// The field of `message` that carries JSON property `name`: a named field, or the inline
/// field whose message (possibly through further inlining) has that property.
pub(crate) fn field_for_property(message: usize, name: &str) -> Option<usize> {
    let def = table::message(message);
    (0..def.fields.len())
        .find(|&i| json_name(message, i) == Some(name))
        .or_else(|| {
            (0..def.fields.len()).find(|&i| match (json_name(message, i), def.fields[i].ty) {
                (None, Ty::Message(nested)) => field_for_property(nested, name).is_some(),
                _ => false,
            })
        })
}

/// The OpenAPI schema of a table message, if any schema describes it.
pub(crate) fn schema_of(message: usize) -> Option<&'static Value> {
    static SCHEMAS: OnceLock<Vec<Option<&'static Value>>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let by_lower: HashMap<String, &'static Value> = all_definitions()
            .map(|(name, def)| (name.to_ascii_lowercase(), def))
            .collect();
        table::messages()
            .iter()
            .map(|m| by_lower.get(&m.name.to_ascii_lowercase()).copied())
            .collect()
    })[message]
}

fn all_definitions() -> impl Iterator<Item = (&'static String, &'static Value)> + Clone {
    static EXTRA: OnceLock<Map<String, Value>> = OnceLock::new();
    schema::definitions()
        .definitions
        .iter()
        .chain(EXTRA.get_or_init(extra_definitions).iter())
}

fn build() -> Vec<Vec<Option<String>>> {
    let global = global_index(all_definitions().map(|(_, def)| def));
    table::messages()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let own = schema_of(i).map(property_index).unwrap_or_default();
            names_of(m, &own, &global)
        })
        .collect()
}

/// Whether message field `field` is an inlined Go struct: absent from the parent's schema
/// properties, while most of its own fields are parent properties.
fn is_inline(field: &FieldDef, own: &HashMap<String, String>) -> bool {
    let (Ty::Message(nested), Card::Optional) = (field.ty, field.card) else {
        return false;
    };
    let nested = table::message(nested);
    let shared = nested
        .fields
        .iter()
        .filter(|f| own.contains_key(&normalize(f.name)))
        .count();
    !own.contains_key(&normalize(field.name)) && shared > 0 && shared * 2 >= nested.fields.len()
}

/// Schemas of the stable types that `schema::definitions` does not serve.
fn extra_definitions() -> Map<String, Value> {
    use k8s_openapi::api::{
        admissionregistration::v1 as admission, autoscaling::v1 as autoscaling_v1,
        autoscaling::v2 as autoscaling_v2, certificates::v1 as certificates,
        flowcontrol::v1 as flowcontrol, networking::v1 as networking, node::v1 as node,
        resource::v1beta1 as resource, storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;

    let mut gen = SchemaSettings::openapi3().into_generator();
    gen.subschema_for::<admission::MutatingWebhookConfiguration>();
    gen.subschema_for::<admission::ValidatingWebhookConfiguration>();
    gen.subschema_for::<admission::ValidatingAdmissionPolicy>();
    gen.subschema_for::<admission::ValidatingAdmissionPolicyBinding>();
    gen.subschema_for::<apiextensions::CustomResourceDefinition>();
    gen.subschema_for::<apiregistration::APIService>();
    gen.subschema_for::<autoscaling_v1::HorizontalPodAutoscaler>();
    gen.subschema_for::<autoscaling_v2::HorizontalPodAutoscaler>();
    gen.subschema_for::<certificates::CertificateSigningRequest>();
    gen.subschema_for::<flowcontrol::FlowSchema>();
    gen.subschema_for::<flowcontrol::PriorityLevelConfiguration>();
    gen.subschema_for::<networking::Ingress>();
    gen.subschema_for::<networking::IngressClass>();
    gen.subschema_for::<networking::NetworkPolicy>();
    gen.subschema_for::<networking::IPAddress>();
    gen.subschema_for::<networking::ServiceCIDR>();
    gen.subschema_for::<node::RuntimeClass>();
    gen.subschema_for::<resource::ResourceClaim>();
    gen.subschema_for::<resource::ResourceClaimTemplate>();
    gen.subschema_for::<resource::DeviceClass>();
    gen.subschema_for::<resource::ResourceSlice>();
    gen.subschema_for::<storage::StorageClass>();
    gen.subschema_for::<storage::CSIDriver>();
    gen.subschema_for::<storage::CSINode>();
    gen.subschema_for::<storage::CSIStorageCapacity>();
    gen.subschema_for::<storage::VolumeAttachment>();
    gen.take_definitions(true)
}

fn names_of(
    message: &MessageDef,
    own: &HashMap<String, String>,
    global: &HashMap<String, Option<String>>,
) -> Vec<Option<String>> {
    message
        .fields
        .iter()
        .map(|f| {
            if is_inline(f, own) {
                return None;
            }
            let key = normalize(f.name);
            Some(
                own.get(&key)
                    .or_else(|| global.get(&key).and_then(Option::as_ref))
                    .cloned()
                    .unwrap_or_else(|| lower_camel(f.name)),
            )
        })
        .collect()
}

fn property_index(def: &Value) -> HashMap<String, String> {
    def.get("properties")
        .and_then(Value::as_object)
        .map(|props| props.keys().map(|k| (normalize(k), k.clone())).collect())
        .unwrap_or_default()
}

/// Every property name in the schemas by normalized name; `None` when two spellings clash.
fn global_index<'a>(defs: impl Iterator<Item = &'a Value>) -> HashMap<String, Option<String>> {
    let mut index: HashMap<String, Option<String>> = HashMap::new();
    for def in defs {
        for (key, name) in property_index(def) {
            index
                .entry(key)
                .and_modify(|existing| {
                    if existing.as_deref() != Some(name.as_str()) {
                        *existing = None;
                    }
                })
                .or_insert(Some(name));
        }
    }
    index
}

fn normalize(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(message: &str, field: &str) -> Option<&'static str> {
        let m = table::find(message).unwrap();
        let def = table::message(m);
        let f = def.fields.iter().position(|f| f.name == field).unwrap();
        json_name(m, f)
    }

    #[test]
    fn acronyms_come_from_the_schema() {
        assert_eq!(
            name("io.k8s.api.core.v1.PodStatus", "pod_ip"),
            Some("podIP")
        );
        assert_eq!(
            name("io.k8s.api.core.v1.PodStatus", "pod_ips"),
            Some("podIPs")
        );
        assert_eq!(
            name("io.k8s.api.core.v1.ServiceSpec", "cluster_ips"),
            Some("clusterIPs")
        );
        assert_eq!(name("io.k8s.api.core.v1.ServiceSpec", "type"), Some("type"));
        assert_eq!(
            name(
                "io.k8s.api.core.v1.PodSpec",
                "termination_grace_period_seconds"
            ),
            Some("terminationGracePeriodSeconds")
        );
    }

    #[test]
    fn types_outside_the_schemas_still_get_json_names() {
        let props = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JsonSchemaProps";
        assert_eq!(name(props, "ref"), Some("$ref"));
        assert_eq!(
            name(props, "x_kubernetes_preserve_unknown_fields"),
            Some("x-kubernetes-preserve-unknown-fields")
        );
        assert_eq!(name(props, "multiple_of"), Some("multipleOf"));
    }

    #[test]
    fn inlined_structs_have_no_name_and_route_their_properties() {
        assert_eq!(name("io.k8s.api.core.v1.Probe", "handler"), None);
        assert_eq!(name("io.k8s.api.core.v1.Volume", "volume_source"), None);
        assert_eq!(
            name(
                "io.k8s.api.core.v1.ConfigMapKeySelector",
                "local_object_reference"
            ),
            None
        );
        assert_eq!(
            name("io.k8s.api.core.v1.PodSpec", "volumes"),
            Some("volumes")
        );
        let probe = table::find("io.k8s.api.core.v1.Probe").unwrap();
        let handler = table::message(probe).field(1).unwrap();
        assert_eq!(field_for_property(probe, "httpGet"), Some(handler));
        assert_eq!(field_for_property(probe, "nope"), None);
    }

    #[test]
    fn lower_camel_case() {
        assert_eq!(lower_camel("min_ready_seconds"), "minReadySeconds");
        assert_eq!(lower_camel("kind"), "kind");
    }
}
