//! OpenAPI v3 schemas of the built-in types served by ferrokube.
//!
//! The schemas come from k8s-openapi's `schemars` implementations, generated once per process
//! under `#/components/schemas/<definition name>` (e.g. `io.k8s.api.apps.v1.Deployment`).
//! Everything that must know the shape of a type (strict field validation, strategic merge
//! patch, protobuf decoding, the `/openapi/v3` documents) walks these definitions, so the
//! knowledge lives in one place.

pub mod patch_meta;

use std::sync::OnceLock;

use schemars::{generate::SchemaSettings, JsonSchema};
use serde_json::{Map, Value};

/// Group, version and kind of a root type, with the name of its schema definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub definition: &'static str,
}

/// All schema definitions, keyed by definition name, including every type reachable from a
/// root type.
pub struct Definitions {
    pub definitions: Map<String, Value>,
    pub roots: Vec<RootType>,
}

macro_rules! roots {
    ($gen:ident, $roots:ident; $($group:literal $version:literal $kind:literal => $ty:ty),* $(,)?) => {
        $(
            $gen.subschema_for::<$ty>();
            $roots.push(RootType {
                group: $group,
                version: $version,
                kind: $kind,
                definition: leak(<$ty as JsonSchema>::schema_name().into_owned()),
            });
        )*
    };
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The process-wide schema definitions, built on first use.
pub fn definitions() -> &'static Definitions {
    static DEFS: OnceLock<Definitions> = OnceLock::new();
    DEFS.get_or_init(build)
}

impl Definitions {
    /// The definition name of a root type, if it is a built-in kind.
    pub fn root(&self, group: &str, version: &str, kind: &str) -> Option<&RootType> {
        self.roots
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// A definition by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.definitions.get(name)
    }

    /// Follows a `$ref` ("#/components/schemas/<name>") to its definition.
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => r
                .strip_prefix(REF_PREFIX)
                .and_then(|name| self.definitions.get(name))
                .unwrap_or(schema),
            None => match schema.get("allOf").and_then(Value::as_array) {
                Some(all) if all.len() == 1 => self.resolve(&all[0]),
                _ => schema,
            },
        }
    }
}

/// Prefix of every `$ref` in the definitions.
pub const REF_PREFIX: &str = "#/components/schemas/";

fn build() -> Definitions {
    use k8s_openapi::api::{
        admissionregistration::v1 as admission, apps::v1 as apps, authentication::v1 as authn,
        authorization::v1 as authz, autoscaling::v1 as autoscaling,
        autoscaling::v2 as autoscaling2, batch::v1 as batch, certificates::v1 as certificates,
        coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
        events::v1 as events, networking::v1 as networking, node::v1 as node, policy::v1 as policy,
        rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

    let mut gen = SchemaSettings::openapi3().into_generator();
    let mut roots = Vec::new();
    roots!(gen, roots;
        "" "v1" "Namespace" => core::Namespace,
        "" "v1" "Pod" => core::Pod,
        "" "v1" "Binding" => core::Binding,
        "" "v1" "Node" => core::Node,
        "" "v1" "Service" => core::Service,
        "" "v1" "Endpoints" => core::Endpoints,
        "" "v1" "ConfigMap" => core::ConfigMap,
        "" "v1" "Secret" => core::Secret,
        "" "v1" "ServiceAccount" => core::ServiceAccount,
        "" "v1" "Event" => core::Event,
        "" "v1" "LimitRange" => core::LimitRange,
        "" "v1" "ResourceQuota" => core::ResourceQuota,
        "" "v1" "PersistentVolume" => core::PersistentVolume,
        "" "v1" "PersistentVolumeClaim" => core::PersistentVolumeClaim,
        "" "v1" "ReplicationController" => core::ReplicationController,
        "" "v1" "PodTemplate" => core::PodTemplate,
        "" "v1" "ComponentStatus" => core::ComponentStatus,
        "apps" "v1" "Deployment" => apps::Deployment,
        "apps" "v1" "ReplicaSet" => apps::ReplicaSet,
        "apps" "v1" "StatefulSet" => apps::StatefulSet,
        "apps" "v1" "DaemonSet" => apps::DaemonSet,
        "apps" "v1" "ControllerRevision" => apps::ControllerRevision,
        "autoscaling" "v1" "Scale" => autoscaling::Scale,
        "autoscaling" "v2" "HorizontalPodAutoscaler" => autoscaling2::HorizontalPodAutoscaler,
        "certificates.k8s.io" "v1" "CertificateSigningRequest" => certificates::CertificateSigningRequest,
        "networking.k8s.io" "v1" "Ingress" => networking::Ingress,
        "networking.k8s.io" "v1" "IngressClass" => networking::IngressClass,
        "networking.k8s.io" "v1" "NetworkPolicy" => networking::NetworkPolicy,
        "storage.k8s.io" "v1" "StorageClass" => storage::StorageClass,
        "storage.k8s.io" "v1" "CSIDriver" => storage::CSIDriver,
        "storage.k8s.io" "v1" "CSINode" => storage::CSINode,
        "storage.k8s.io" "v1" "VolumeAttachment" => storage::VolumeAttachment,
        "admissionregistration.k8s.io" "v1" "ValidatingWebhookConfiguration" => admission::ValidatingWebhookConfiguration,
        "admissionregistration.k8s.io" "v1" "MutatingWebhookConfiguration" => admission::MutatingWebhookConfiguration,
        "node.k8s.io" "v1" "RuntimeClass" => node::RuntimeClass,
        "batch" "v1" "Job" => batch::Job,
        "batch" "v1" "CronJob" => batch::CronJob,
        "coordination.k8s.io" "v1" "Lease" => coordination::Lease,
        "discovery.k8s.io" "v1" "EndpointSlice" => discovery::EndpointSlice,
        "events.k8s.io" "v1" "Event" => events::Event,
        "policy" "v1" "PodDisruptionBudget" => policy::PodDisruptionBudget,
        "policy" "v1" "Eviction" => policy::Eviction,
        "scheduling.k8s.io" "v1" "PriorityClass" => scheduling::PriorityClass,
        "rbac.authorization.k8s.io" "v1" "Role" => rbac::Role,
        "rbac.authorization.k8s.io" "v1" "ClusterRole" => rbac::ClusterRole,
        "rbac.authorization.k8s.io" "v1" "RoleBinding" => rbac::RoleBinding,
        "rbac.authorization.k8s.io" "v1" "ClusterRoleBinding" => rbac::ClusterRoleBinding,
        "authentication.k8s.io" "v1" "TokenRequest" => authn::TokenRequest,
        "authentication.k8s.io" "v1" "TokenReview" => authn::TokenReview,
        "authentication.k8s.io" "v1" "SelfSubjectReview" => authn::SelfSubjectReview,
        "authorization.k8s.io" "v1" "SubjectAccessReview" => authz::SubjectAccessReview,
        "authorization.k8s.io" "v1" "SelfSubjectAccessReview" => authz::SelfSubjectAccessReview,
        "authorization.k8s.io" "v1" "SelfSubjectRulesReview" => authz::SelfSubjectRulesReview,
        "authorization.k8s.io" "v1" "LocalSubjectAccessReview" => authz::LocalSubjectAccessReview,
        "meta.k8s.io" "v1" "Status" => meta::Status,
        "meta.k8s.io" "v1" "DeleteOptions" => meta::DeleteOptions,
        "meta.k8s.io" "v1" "APIResourceList" => meta::APIResourceList,
    );
    let mut definitions = gen.take_definitions(true);
    patch_meta::inject(&mut definitions);
    inject_group_version_kinds(&mut definitions, &roots);
    Definitions { definitions, roots }
}

/// OpenAPI extension listing the group/version/kinds served with a root definition; kubectl
/// uses it to find the schema of a kind.
pub const GROUP_VERSION_KIND: &str = "x-kubernetes-group-version-kind";

fn inject_group_version_kinds(definitions: &mut Map<String, Value>, roots: &[RootType]) {
    for root in roots {
        let Some(definition) = definitions
            .get_mut(root.definition)
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let gvk = serde_json::json!({
            "group": root.group,
            "kind": root.kind,
            "version": root.version,
        });
        match definition.get_mut(GROUP_VERSION_KIND) {
            Some(Value::Array(list)) => list.push(gvk),
            _ => {
                definition.insert(GROUP_VERSION_KIND.into(), Value::Array(vec![gvk]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_strategy_is_reachable_from_deployment() {
        let defs = definitions();
        let root = defs.root("apps", "v1", "Deployment").expect("root");
        assert_eq!(root.definition, "io.k8s.api.apps.v1.Deployment");
        let dep = defs.get(root.definition).expect("deployment schema");
        let spec = defs.resolve(&dep["properties"]["spec"]);
        let strategy = defs.resolve(&spec["properties"]["strategy"]);
        assert!(strategy["properties"].get("rollingUpdate").is_some());
    }

    #[test]
    fn roots_carry_their_group_version_kind() {
        let defs = definitions();
        let dep = defs
            .get("io.k8s.api.apps.v1.Deployment")
            .expect("deployment");
        assert_eq!(
            dep[GROUP_VERSION_KIND],
            serde_json::json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        let pod = defs.get("io.k8s.api.core.v1.Pod").expect("pod");
        assert_eq!(
            pod[GROUP_VERSION_KIND],
            serde_json::json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        let spec = defs.get("io.k8s.api.core.v1.PodSpec").expect("pod spec");
        assert!(spec.get(GROUP_VERSION_KIND).is_none());
    }
}
