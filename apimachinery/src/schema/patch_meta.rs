//! Strategic-merge-patch metadata of the built-in types.
//!
//! Upstream derives `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key` from the
//! `patchStrategy`/`patchMergeKey` struct tags of the Go types; k8s-openapi's schemas do not
//! carry them. kubectl computes its apply patches from these extensions in `/openapi/v3`, and
//! the server merges with them, so the table below must match upstream's tags exactly.

use serde_json::{Map, Value};

/// OpenAPI extension naming the patch strategy of a property.
pub const PATCH_STRATEGY: &str = "x-kubernetes-patch-strategy";
/// OpenAPI extension naming the key that identifies items of a merged list.
pub const PATCH_MERGE_KEY: &str = "x-kubernetes-patch-merge-key";

const CORE: &str = "io.k8s.api.core.v1.";
const APPS: &str = "io.k8s.api.apps.v1.";
const BATCH: &str = "io.k8s.api.batch.v1.";
const POLICY: &str = "io.k8s.api.policy.v1.";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
const AUTOSCALING_V2: &str = "io.k8s.api.autoscaling.v2.";
const ADMISSION: &str = "io.k8s.api.admissionregistration.v1.";

/// (definition prefix, type name, property, strategy, merge key), from upstream's struct tags
/// of Kubernetes v1.33.
const TABLE: &[(&str, &str, &str, &str, Option<&str>)] = &[
    (META, "ObjectMeta", "finalizers", "merge", None),
    (META, "ObjectMeta", "ownerReferences", "merge", Some("uid")),
    (CORE, "PodSpec", "volumes", "merge,retainKeys", Some("name")),
    (CORE, "PodSpec", "initContainers", "merge", Some("name")),
    (CORE, "PodSpec", "containers", "merge", Some("name")),
    (
        CORE,
        "PodSpec",
        "ephemeralContainers",
        "merge",
        Some("name"),
    ),
    (CORE, "PodSpec", "imagePullSecrets", "merge", Some("name")),
    (CORE, "PodSpec", "hostAliases", "merge", Some("ip")),
    (
        CORE,
        "PodSpec",
        "topologySpreadConstraints",
        "merge",
        Some("topologyKey"),
    ),
    (CORE, "PodSpec", "schedulingGates", "merge", Some("name")),
    (
        CORE,
        "PodSpec",
        "resourceClaims",
        "merge,retainKeys",
        Some("name"),
    ),
    (CORE, "Container", "ports", "merge", Some("containerPort")),
    (CORE, "Container", "env", "merge", Some("name")),
    (
        CORE,
        "Container",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        CORE,
        "Container",
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (
        CORE,
        "EphemeralContainer",
        "ports",
        "merge",
        Some("containerPort"),
    ),
    (CORE, "EphemeralContainer", "env", "merge", Some("name")),
    (
        CORE,
        "EphemeralContainer",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        CORE,
        "EphemeralContainer",
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (CORE, "PodStatus", "conditions", "merge", Some("type")),
    (CORE, "PodStatus", "podIPs", "merge", Some("ip")),
    (CORE, "PodStatus", "hostIPs", "merge", Some("ip")),
    (
        CORE,
        "PodStatus",
        "resourceClaimStatuses",
        "merge,retainKeys",
        Some("name"),
    ),
    (
        CORE,
        "ContainerStatus",
        "allocatedResourcesStatus",
        "merge",
        Some("name"),
    ),
    (
        CORE,
        "ContainerStatus",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (CORE, "NodeSpec", "podCIDRs", "merge", None),
    (CORE, "NodeStatus", "conditions", "merge", Some("type")),
    (CORE, "NodeStatus", "addresses", "merge", Some("type")),
    (CORE, "NamespaceStatus", "conditions", "merge", Some("type")),
    (CORE, "ServiceSpec", "ports", "merge", Some("port")),
    (CORE, "ServiceStatus", "conditions", "merge", Some("type")),
    (CORE, "ServiceAccount", "secrets", "merge", Some("name")),
    (
        CORE,
        "PersistentVolumeClaimStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        CORE,
        "ReplicationControllerStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (CORE, "ComponentStatus", "conditions", "merge", Some("type")),
    (APPS, "DeploymentSpec", "strategy", "retainKeys", None),
    (
        APPS,
        "DeploymentStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        APPS,
        "ReplicaSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        APPS,
        "StatefulSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (APPS, "DaemonSetStatus", "conditions", "merge", Some("type")),
    (BATCH, "JobStatus", "conditions", "merge", Some("type")),
    (
        POLICY,
        "PodDisruptionBudgetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        AUTOSCALING_V2,
        "HorizontalPodAutoscalerStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        ADMISSION,
        "ValidatingWebhookConfiguration",
        "webhooks",
        "merge",
        Some("name"),
    ),
    (
        ADMISSION,
        "MutatingWebhookConfiguration",
        "webhooks",
        "merge",
        Some("name"),
    ),
];

/// How a property is merged by a strategic merge patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PatchMeta<'a> {
    /// List items (or map keys) are merged rather than replaced.
    pub merge: bool,
    /// Keys of the object absent from a `$retainKeys` directive are cleared.
    pub retain_keys: bool,
    /// The whole value is replaced even if it is a map.
    pub replace: bool,
    /// The field that identifies an item of a merged list of objects.
    pub merge_key: Option<&'a str>,
}

impl<'a> PatchMeta<'a> {
    /// Reads the extensions of a property schema (the schema as it appears under
    /// `properties`, before following its `$ref`).
    pub fn of(property: &'a Value) -> Self {
        let strategy = property
            .get(PATCH_STRATEGY)
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut meta = PatchMeta {
            merge_key: property.get(PATCH_MERGE_KEY).and_then(Value::as_str),
            ..PatchMeta::default()
        };
        for part in strategy.split(',').map(str::trim) {
            match part {
                "merge" => meta.merge = true,
                "retainKeys" => meta.retain_keys = true,
                "replace" => meta.replace = true,
                _ => {}
            }
        }
        meta
    }
}

/// Every (definition, property) of the table with its strategy and merge key.
fn entries() -> impl Iterator<Item = (String, &'static str, &'static str, Option<&'static str>)> {
    TABLE
        .iter()
        .map(|(prefix, ty, prop, strategy, key)| (format!("{prefix}{ty}"), *prop, *strategy, *key))
}

/// Adds the patch extensions of the table to the matching properties of `definitions`.
/// Definitions not reachable from the registered roots are skipped.
pub(crate) fn inject(definitions: &mut Map<String, Value>) {
    for (definition, prop, strategy, key) in entries() {
        let Some(property) = definitions
            .get_mut(&definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(prop))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        property.insert(PATCH_STRATEGY.into(), Value::from(strategy));
        if let Some(key) = key {
            property.insert(PATCH_MERGE_KEY.into(), Value::from(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::definitions;
    use serde_json::json;

    #[test]
    fn every_table_entry_names_an_existing_property() {
        let defs = definitions();
        for (definition, prop, _, _) in entries() {
            let schema = defs
                .get(&definition)
                .unwrap_or_else(|| panic!("missing definition {definition}"));
            assert!(
                schema["properties"].get(prop).is_some(),
                "{definition} has no property {prop}"
            );
        }
    }

    #[test]
    fn containers_carry_merge_strategy_and_key() {
        let defs = definitions();
        let containers =
            &defs.get("io.k8s.api.core.v1.PodSpec").unwrap()["properties"]["containers"];
        assert_eq!(containers[PATCH_STRATEGY], "merge");
        assert_eq!(containers[PATCH_MERGE_KEY], "name");
        let meta = PatchMeta::of(containers);
        assert!(meta.merge && !meta.retain_keys);
        assert_eq!(meta.merge_key, Some("name"));
    }

    #[test]
    fn volumes_merge_and_retain_keys() {
        let defs = definitions();
        let volumes = &defs.get("io.k8s.api.core.v1.PodSpec").unwrap()["properties"]["volumes"];
        assert_eq!(volumes[PATCH_STRATEGY], "merge,retainKeys");
        let meta = PatchMeta::of(volumes);
        assert!(meta.merge && meta.retain_keys);
    }

    #[test]
    fn deployment_strategy_retains_keys_without_merge_key() {
        let defs = definitions();
        let strategy =
            &defs.get("io.k8s.api.apps.v1.DeploymentSpec").unwrap()["properties"]["strategy"];
        assert_eq!(strategy[PATCH_STRATEGY], "retainKeys");
        assert!(strategy.get(PATCH_MERGE_KEY).is_none());
        // The reference to the strategy type must survive next to the extensions.
        assert!(defs.resolve(strategy)["properties"]
            .get("rollingUpdate")
            .is_some());
    }

    #[test]
    fn tolerations_have_no_patch_strategy() {
        let defs = definitions();
        let tolerations =
            &defs.get("io.k8s.api.core.v1.PodSpec").unwrap()["properties"]["tolerations"];
        assert_eq!(PatchMeta::of(tolerations), PatchMeta::default());
    }

    #[test]
    fn replace_strategy_is_parsed() {
        let prop = json!({"x-kubernetes-patch-strategy": "replace"});
        assert!(PatchMeta::of(&prop).replace);
    }
}
