//! Server-side table printers: the columns and cells `kubectl get` shows for each built-in
//! kind, answered when a client asks for `application/json;as=Table;g=meta.k8s.io;v=v1`.
//!
//! kubectl prints only what the server sends, so column names, types, priorities and the
//! formatting of every cell follow upstream's `pkg/printers/internalversion`. Like upstream's
//! table convertor, rows always carry the wide (priority 1) cells; kubectl hides them unless
//! asked for `-o wide`.

mod column;
mod containers;
mod default;
mod duration;
mod fields;
mod labels;

mod admission;
mod certificates;
mod componentstatus;
mod configmap;
mod controllerrevision;
mod cronjob;
mod csi;
mod daemonset;
mod deployment;
mod endpoints;
mod endpointslice;
mod event;
mod flowcontrol;
mod horizontalpodautoscaler;
mod ingress;
mod job;
mod lease;
mod namespace;
mod networkpolicy;
mod node;
mod persistentvolume;
mod pod;
mod poddisruptionbudget;
mod podtemplate;
mod priorityclass;
mod rbac;
mod replicaset;
mod replicationcontroller;
mod resourcequota;
mod runtimeclass;
mod secret;
mod service;
mod serviceaccount;
mod servicecidr;
mod statefulset;
mod storageclass;

#[cfg(test)]
mod test_support;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use column::Column;
pub use duration::human_duration;

/// Fills one row of a kind's table.
type CellsFn = fn(&Value, DateTime<Utc>) -> Vec<Value>;

/// Finds the printer for a kind; `None` means upstream has none and the default applies.
/// The core group may be given as "" or "core".
fn printer(group: &str, kind: &str) -> Option<(&'static [Column], CellsFn)> {
    let group = if group == "core" { "" } else { group };
    let found: (&'static [Column], CellsFn) = match (group, kind) {
        ("", "Pod") => (pod::COLUMNS, pod::cells),
        ("", "Node") => (node::COLUMNS, node::cells),
        ("", "Namespace") => (namespace::COLUMNS, namespace::cells),
        ("", "Service") => (service::COLUMNS, service::cells),
        ("", "Endpoints") => (endpoints::COLUMNS, endpoints::cells),
        ("", "Event") | ("events.k8s.io", "Event") => (event::COLUMNS, event::cells),
        ("", "ConfigMap") => (configmap::COLUMNS, configmap::cells),
        ("", "Secret") => (secret::COLUMNS, secret::cells),
        ("", "ServiceAccount") => (serviceaccount::COLUMNS, serviceaccount::cells),
        ("", "ResourceQuota") => (resourcequota::COLUMNS, resourcequota::cells),
        ("", "ReplicationController") => {
            (replicationcontroller::COLUMNS, replicationcontroller::cells)
        }
        ("", "PodTemplate") => (podtemplate::COLUMNS, podtemplate::cells),
        ("", "PersistentVolume") => (persistentvolume::PV_COLUMNS, persistentvolume::pv_cells),
        ("", "PersistentVolumeClaim") => {
            (persistentvolume::PVC_COLUMNS, persistentvolume::pvc_cells)
        }
        ("", "ComponentStatus") => (componentstatus::COLUMNS, componentstatus::cells),
        ("apps", "ControllerRevision") => (controllerrevision::COLUMNS, controllerrevision::cells),
        ("autoscaling", "HorizontalPodAutoscaler") => (
            horizontalpodautoscaler::COLUMNS,
            horizontalpodautoscaler::cells,
        ),
        ("networking.k8s.io", "Ingress") => (ingress::INGRESS_COLUMNS, ingress::ingress_cells),
        ("networking.k8s.io", "IngressClass") => {
            (ingress::INGRESS_CLASS_COLUMNS, ingress::ingress_class_cells)
        }
        ("networking.k8s.io", "NetworkPolicy") => (networkpolicy::COLUMNS, networkpolicy::cells),
        ("networking.k8s.io", "ServiceCIDR") => (servicecidr::COLUMNS, servicecidr::cells),
        ("storage.k8s.io", "StorageClass") => (storageclass::COLUMNS, storageclass::cells),
        ("storage.k8s.io", "CSIDriver") => (csi::CSI_DRIVER_COLUMNS, csi::csi_driver_cells),
        ("storage.k8s.io", "CSINode") => (csi::CSI_NODE_COLUMNS, csi::csi_node_cells),
        ("storage.k8s.io", "CSIStorageCapacity") => (
            csi::CSI_STORAGE_CAPACITY_COLUMNS,
            csi::csi_storage_capacity_cells,
        ),
        ("storage.k8s.io", "VolumeAttachment") => {
            (csi::VOLUME_ATTACHMENT_COLUMNS, csi::volume_attachment_cells)
        }
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => (admission::WEBHOOK_COLUMNS, admission::webhook_cells),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => (
            admission::VALIDATING_POLICY_COLUMNS,
            admission::validating_policy_cells,
        ),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy") => (
            admission::MUTATING_POLICY_COLUMNS,
            admission::mutating_policy_cells,
        ),
        (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicyBinding" | "MutatingAdmissionPolicyBinding",
        ) => (admission::BINDING_COLUMNS, admission::binding_cells),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => (
            flowcontrol::FLOW_SCHEMA_COLUMNS,
            flowcontrol::flow_schema_cells,
        ),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => (
            flowcontrol::PRIORITY_LEVEL_COLUMNS,
            flowcontrol::priority_level_cells,
        ),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            (certificates::CSR_COLUMNS, certificates::csr_cells)
        }
        ("certificates.k8s.io", "ClusterTrustBundle") => (
            certificates::TRUST_BUNDLE_COLUMNS,
            certificates::trust_bundle_cells,
        ),
        ("node.k8s.io", "RuntimeClass") => (runtimeclass::COLUMNS, runtimeclass::cells),
        ("coordination.k8s.io", "LeaseCandidate") => {
            (lease::CANDIDATE_COLUMNS, lease::candidate_cells)
        }
        ("apps", "Deployment") => (deployment::COLUMNS, deployment::cells),
        ("apps", "ReplicaSet") => (replicaset::COLUMNS, replicaset::cells),
        ("apps", "StatefulSet") => (statefulset::COLUMNS, statefulset::cells),
        ("apps", "DaemonSet") => (daemonset::COLUMNS, daemonset::cells),
        ("batch", "Job") => (job::COLUMNS, job::cells),
        ("batch", "CronJob") => (cronjob::COLUMNS, cronjob::cells),
        ("discovery.k8s.io", "EndpointSlice") => (endpointslice::COLUMNS, endpointslice::cells),
        ("coordination.k8s.io", "Lease") => (lease::COLUMNS, lease::cells),
        ("scheduling.k8s.io", "PriorityClass") => (priorityclass::COLUMNS, priorityclass::cells),
        ("policy", "PodDisruptionBudget") => {
            (poddisruptionbudget::COLUMNS, poddisruptionbudget::cells)
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            (rbac::COLUMNS, rbac::cells)
        }
        _ => return None,
    };
    Some(found)
}

/// The columns for a kind; kinds without a printer get upstream's default (Name, Created At).
pub fn columns(group: &str, kind: &str) -> &'static [Column] {
    printer(group, kind).map_or(default::COLUMNS, |(columns, _)| columns)
}

/// The cells of one row, in column order; `now` is used for ages.
///
/// Never fails: missing or mistyped fields print as upstream prints their zero value.
pub fn cells(group: &str, kind: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match printer(group, kind) {
        Some((_, fill)) => fill(obj, now),
        None => default::cells(obj, now),
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::now;
    use super::*;
    use serde_json::json;

    /// Every printer's row must line up with its columns, even for a junk object, and the
    /// name column leads (for Events it trails, as upstream puts it).
    const KINDS: &[(&str, &str)] = &[
        ("", "Pod"),
        ("", "Node"),
        ("", "Namespace"),
        ("", "Service"),
        ("", "Endpoints"),
        ("", "Event"),
        ("events.k8s.io", "Event"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "ServiceAccount"),
        ("", "ResourceQuota"),
        ("", "LimitRange"),
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("coordination.k8s.io", "Lease"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("policy", "PodDisruptionBudget"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("", "ReplicationController"),
        ("", "PodTemplate"),
        ("", "PersistentVolume"),
        ("", "PersistentVolumeClaim"),
        ("", "ComponentStatus"),
        ("apps", "ControllerRevision"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "CSIStorageCapacity"),
        ("storage.k8s.io", "VolumeAttachment"),
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration",
        ),
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
        ),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicyBinding",
        ),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        (
            "admissionregistration.k8s.io",
            "MutatingAdmissionPolicyBinding",
        ),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("node.k8s.io", "RuntimeClass"),
        ("coordination.k8s.io", "LeaseCandidate"),
        ("example.com", "Widget"),
    ];

    #[test]
    fn rows_match_columns_for_any_input() {
        let junk = [
            json!(null),
            json!("pod"),
            json!({"metadata": {"name": 7}, "spec": [], "status": "x"}),
            json!({"metadata": {"name": "n"}}),
        ];
        for (group, kind) in KINDS {
            let cols = columns(group, kind);
            let name_at = usize::from(*kind == "Event") * (cols.len() - 1);
            assert_eq!(cols[name_at].format, "name", "{group}/{kind}");
            for obj in &junk {
                assert_eq!(
                    cells(group, kind, obj, now()).len(),
                    cols.len(),
                    "{group}/{kind}"
                );
            }
        }
    }

    #[test]
    fn dispatch() {
        let names = |group, kind| {
            columns(group, kind)
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("", "Pod")[..5],
            ["Name", "Ready", "Status", "Restarts", "Age"]
        );
        assert_eq!(names("core", "Pod"), names("", "Pod"));
        assert_eq!(
            names("rbac.authorization.k8s.io", "ClusterRole"),
            ["Name", "Created At"]
        );
        assert_eq!(names("", "LimitRange"), ["Name", "Created At"]);
        assert_eq!(names("apps", "Pod"), ["Name", "Created At"]);
        assert_eq!(names("events.k8s.io", "Event"), names("", "Event"));
        assert_eq!(
            names("batch", "Job"),
            [
                "Name",
                "Status",
                "Completions",
                "Duration",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
    }
}
