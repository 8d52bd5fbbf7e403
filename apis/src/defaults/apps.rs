//! Defaulting of the `apps` group: Deployment, ReplicaSet, StatefulSet and DaemonSet.

use serde_json::Value;

use super::fields::{
    default_string, default_unset, for_each_object, object_mut, string_of, struct_mut, Object,
};
use super::{persistent_volume, pod_spec};

/// Old revisions a workload keeps for rollback unless told otherwise.
const REVISION_HISTORY_LIMIT: i64 = 10;

/// Defaults an `apps` object of `kind`; kinds without defaults are left untouched.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    let spec_defaults: fn(&mut Object) = match kind {
        "Deployment" => deployment,
        "ReplicaSet" => replica_set,
        "StatefulSet" => stateful_set,
        "DaemonSet" => daemon_set,
        _ => return,
    };
    if let Some(spec) = struct_mut(obj, "spec") {
        spec_defaults(spec);
        pod_spec::apply_template_at(spec, "template");
    }
}

fn replica_set(spec: &mut Object) {
    default_unset(spec, "replicas", Value::from(1));
}

/// One replica, rolling updates of 25% surge and 25% unavailable, ten revisions, and ten
/// minutes before a stalled rollout is reported.
fn deployment(spec: &mut Object) {
    default_unset(spec, "replicas", Value::from(1));
    if let Some(strategy) = struct_mut(spec, "strategy") {
        default_string(strategy, "type", "RollingUpdate");
        if string_of(strategy, "type") == Some("RollingUpdate") {
            if let Some(rolling) = struct_mut(strategy, "rollingUpdate") {
                default_unset(rolling, "maxUnavailable", Value::from("25%"));
                default_unset(rolling, "maxSurge", Value::from("25%"));
            }
        }
    }
    default_unset(
        spec,
        "revisionHistoryLimit",
        Value::from(REVISION_HISTORY_LIMIT),
    );
    default_unset(spec, "progressDeadlineSeconds", Value::from(600));
}

/// Rolling updates one node at a time without surge, ten revisions.
fn daemon_set(spec: &mut Object) {
    if let Some(strategy) = struct_mut(spec, "updateStrategy") {
        default_string(strategy, "type", "RollingUpdate");
        if string_of(strategy, "type") == Some("RollingUpdate") {
            if let Some(rolling) = struct_mut(strategy, "rollingUpdate") {
                default_unset(rolling, "maxUnavailable", Value::from(1));
                default_unset(rolling, "maxSurge", Value::from(0));
            }
        }
    }
    default_unset(
        spec,
        "revisionHistoryLimit",
        Value::from(REVISION_HISTORY_LIMIT),
    );
}

/// Ordered pod management, rolling updates from partition 0, claims retained, one replica,
/// ten revisions; claim templates get the claim defaults.
fn stateful_set(spec: &mut Object) {
    default_string(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = struct_mut(spec, "updateStrategy") {
        if string_of(strategy, "type") == Some("") {
            strategy.insert("type".into(), Value::from("RollingUpdate"));
            struct_mut(strategy, "rollingUpdate");
        }
        if string_of(strategy, "type") == Some("RollingUpdate") {
            if let Some(rolling) = object_mut(strategy, "rollingUpdate") {
                default_unset(rolling, "partition", Value::from(0));
            }
        }
    }
    if let Some(retention) = struct_mut(spec, "persistentVolumeClaimRetentionPolicy") {
        default_string(retention, "whenDeleted", "Retain");
        default_string(retention, "whenScaled", "Retain");
    }
    default_unset(spec, "replicas", Value::from(1));
    default_unset(
        spec,
        "revisionHistoryLimit",
        Value::from(REVISION_HISTORY_LIMIT),
    );
    for_each_object(spec, "volumeClaimTemplates", persistent_volume::claim);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaulted(kind: &str, mut obj: Value) -> Value {
        apply(kind, obj.as_object_mut().unwrap());
        obj
    }

    fn defaulted_template(app: &str) -> Value {
        json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": app}},
            "spec": {
                "containers": [{
                    "name": "nginx", "image": "nginx", "resources": {},
                    "imagePullPolicy": "Always",
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30
            }
        })
    }

    fn template(app: &str) -> Value {
        json!({"metadata": {"creationTimestamp": null, "labels": {"app": app}},
               "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}})
    }

    #[test]
    fn kubectl_create_deployment() {
        // The body of `kubectl create deployment web --image=nginx`.
        let input = json!({
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": template("web"), "strategy": {}},
            "status": {}
        });
        assert_eq!(
            defaulted("Deployment", input),
            json!({
                "kind": "Deployment", "apiVersion": "apps/v1",
                "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": defaulted_template("web"),
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                    "revisionHistoryLimit": 10,
                    "progressDeadlineSeconds": 600
                },
                "status": {}
            })
        );
    }

    #[test]
    fn deployment_keeps_explicit_values() {
        let out = defaulted(
            "Deployment",
            json!({"spec": {
                "replicas": 0, "revisionHistoryLimit": 0, "progressDeadlineSeconds": 30,
                "strategy": {"type": "Recreate"}, "template": template("a")
            }}),
        );
        assert_eq!(out["spec"]["replicas"], json!(0));
        assert_eq!(out["spec"]["revisionHistoryLimit"], json!(0));
        assert_eq!(out["spec"]["progressDeadlineSeconds"], json!(30));
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let out = defaulted(
            "Deployment",
            json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 2}}}}),
        );
        assert_eq!(
            out["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": "25%"}})
        );
    }

    #[test]
    fn replica_set() {
        let out = defaulted(
            "ReplicaSet",
            json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "template": template("a")}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}}, "template": defaulted_template("a")}})
        );
    }

    #[test]
    fn daemon_set() {
        let out = defaulted(
            "DaemonSet",
            json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "template": template("a")}}),
        );
        assert_eq!(
            out,
            json!({"spec": {
                "selector": {"matchLabels": {"app": "a"}}, "template": defaulted_template("a"),
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "revisionHistoryLimit": 10
            }})
        );
        let on_delete = defaulted(
            "DaemonSet",
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}, "revisionHistoryLimit": 3}}),
        );
        assert_eq!(
            on_delete["spec"]["updateStrategy"],
            json!({"type": "OnDelete"})
        );
        assert_eq!(on_delete["spec"]["revisionHistoryLimit"], json!(3));
    }

    #[test]
    fn stateful_set() {
        let out = defaulted(
            "StatefulSet",
            json!({"spec": {
                "serviceName": "db", "selector": {"matchLabels": {"app": "a"}}, "template": template("a"),
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
            }}),
        );
        assert_eq!(
            out,
            json!({"spec": {
                "serviceName": "db", "selector": {"matchLabels": {"app": "a"}}, "template": defaulted_template("a"),
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
                    "status": {"phase": "Pending"}
                }],
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "replicas": 1,
                "revisionHistoryLimit": 10
            }})
        );
    }

    #[test]
    fn stateful_set_explicit_rolling_update_without_parameters() {
        let out = defaulted(
            "StatefulSet",
            json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}, "podManagementPolicy": "Parallel"}}),
        );
        assert_eq!(
            out["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate"})
        );
        assert_eq!(out["spec"]["podManagementPolicy"], json!("Parallel"));
    }

    #[test]
    fn controller_revision_is_untouched() {
        let obj = json!({"metadata": {"name": "r"}, "revision": 1, "data": {}});
        assert_eq!(defaulted("ControllerRevision", obj.clone()), obj);
    }
}
