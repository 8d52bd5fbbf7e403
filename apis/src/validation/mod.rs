//! Validation of the built-in types as upstream's apiserver applies it before persisting: the
//! field errors behind a 422 Invalid response, one cause per field, worded like upstream so
//! clients (and people) see what a real cluster would say.
//!
//! Objects arrive already defaulted and structurally decoded; odd shapes become field errors.

mod access;
mod apps;
mod autoscaling;
mod batch;
mod config_data;
mod container;
mod cron;
mod endpoint_slice;
mod event;
mod field_error;
mod int_or_percent;
mod ip;
mod labels;
mod lease;
mod limit_range;
mod metadata;
mod names;
mod namespace;
mod networking;
mod node;
mod path;
mod pdb;
mod pod;
mod pod_spec;
mod priority_class;
mod probe;
mod quantity;
mod rbac;
mod replication_controller;
mod resource_quota;
mod resources;
mod selector;
mod service;
mod storage;
mod toleration;
mod volume;
mod workload;

#[cfg(test)]
mod tests;

pub use field_error::{invalid_message, ErrorType, FieldError};
pub use names::NameRule;
pub use path::Path;

use access::Errors;
use metadata::{immutable, validate_object_meta, validate_object_meta_update, MetaRules};
use serde_json::Value;

/// Per-kind validation beyond metadata, for kinds without update-specific rules of their own.
type BodyFn = fn(&Value, &mut Errors);

struct KindInfo {
    rules: MetaRules,
    body: Option<BodyFn>,
}

const fn info(namespaced: bool, name: NameRule, body: Option<BodyFn>) -> KindInfo {
    KindInfo {
        rules: MetaRules {
            namespaced,
            name,
            kube_finalizers: true,
        },
        body,
    }
}

fn pod_template_body(obj: &Value, errs: &mut Errors) {
    let template = access::get(obj, "template").unwrap_or(&Value::Null);
    pod_spec::validate_pod_template_spec(template, &Path::new("template"), errs);
}

fn role_body(obj: &Value, errs: &mut Errors) {
    rbac::validate_role(obj, true, errs);
}

fn cluster_role_body(obj: &Value, errs: &mut Errors) {
    rbac::validate_role(obj, false, errs);
}

fn role_binding_body(obj: &Value, errs: &mut Errors) {
    rbac::validate_binding(obj, true, errs);
}

fn cluster_role_binding_body(obj: &Value, errs: &mut Errors) {
    rbac::validate_binding(obj, false, errs);
}

/// Metadata rules (scope, name format) and extra checks of every kind known here.
fn kind_info(group: &str, kind: &str) -> Option<KindInfo> {
    use NameRule::{Dns1035Label, Dns1123Label, Dns1123Subdomain, PathSegment};
    let i = match (group, kind) {
        ("", "Pod" | "ConfigMap" | "Secret" | "Event") => info(true, Dns1123Subdomain, None),
        ("", "Service") => info(true, Dns1035Label, None),
        ("", "Namespace") => info(false, Dns1123Label, None),
        ("", "Node") => info(false, Dns1123Subdomain, None),
        ("", "PersistentVolume") => info(false, Dns1123Subdomain, Some(storage::validate_volume)),
        ("", "PersistentVolumeClaim") => {
            info(true, Dns1123Subdomain, Some(storage::validate_claim))
        }
        ("", "ServiceAccount" | "Endpoints") => info(true, Dns1123Subdomain, None),
        ("", "ReplicationController") => info(
            true,
            Dns1123Subdomain,
            Some(replication_controller::validate_spec),
        ),
        ("", "PodTemplate") => info(true, Dns1123Subdomain, Some(pod_template_body)),
        ("", "LimitRange") => info(true, Dns1123Subdomain, Some(limit_range::validate_spec)),
        ("", "ResourceQuota") => info(true, Dns1123Subdomain, Some(resource_quota::validate_spec)),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet" | "ControllerRevision") => {
            info(true, Dns1123Subdomain, None)
        }
        ("apps", "StatefulSet") => info(true, Dns1123Label, None),
        ("batch", "Job" | "CronJob") => info(true, Dns1123Subdomain, None),
        ("events.k8s.io", "Event") => info(true, Dns1123Subdomain, None),
        ("coordination.k8s.io", "Lease") => {
            info(true, Dns1123Subdomain, Some(lease::validate_spec))
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            info(true, Dns1123Subdomain, Some(endpoint_slice::validate_body))
        }
        ("policy", "PodDisruptionBudget") => info(true, Dns1123Subdomain, Some(pdb::validate_spec)),
        ("scheduling.k8s.io", "PriorityClass") => {
            info(false, Dns1123Subdomain, Some(priority_class::validate_body))
        }
        ("rbac.authorization.k8s.io", "Role") => info(true, PathSegment, Some(role_body)),
        ("rbac.authorization.k8s.io", "ClusterRole") => {
            info(false, PathSegment, Some(cluster_role_body))
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            info(true, PathSegment, Some(role_binding_body))
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            info(false, PathSegment, Some(cluster_role_binding_body))
        }
        ("networking.k8s.io", "Ingress") => {
            info(true, Dns1123Subdomain, Some(networking::validate_ingress))
        }
        ("networking.k8s.io", "NetworkPolicy") => info(true, Dns1123Subdomain, None),
        ("networking.k8s.io", "IngressClass") => info(false, Dns1123Subdomain, None),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            info(true, PathSegment, Some(autoscaling::validate_spec))
        }
        ("storage.k8s.io", "StorageClass") => info(
            false,
            Dns1123Subdomain,
            Some(storage::validate_storage_class),
        ),
        ("storage.k8s.io", "CSIDriver" | "CSINode" | "VolumeAttachment") => {
            info(false, Dns1123Subdomain, None)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => info(false, Dns1123Subdomain, None),
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
        ) => info(false, Dns1123Subdomain, None),
        ("apiregistration.k8s.io", "APIService") => info(false, PathSegment, None),
        _ => return None,
    };
    Some(i)
}

/// Whether a built-in kind is namespaced; `None` for kinds this module does not know.
pub fn is_namespaced(group: &str, kind: &str) -> Option<bool> {
    kind_info(group, kind).map(|i| i.rules.namespaced)
}

/// Metadata checks for objects of kinds not known here (custom resources): DNS-subdomain names,
/// namespace by scope, labels, annotations, owner references and qualified finalizers.
pub fn validate_custom_resource_meta(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Errors::new();
    let rules = MetaRules {
        namespaced,
        name: NameRule::Dns1123Subdomain,
        kube_finalizers: false,
    };
    validate_object_meta(obj, rules, &mut errs);
    errs
}

fn has_namespace(obj: &Value) -> bool {
    access::get(obj, "metadata")
        .and_then(|m| access::get(m, "namespace"))
        .and_then(Value::as_str)
        .is_some_and(|ns| !ns.is_empty())
}

/// Validates an object on create (already defaulted, name already generated). An unknown kind
/// gets the generic metadata checks, with its scope taken from whether a namespace is set.
pub fn validate_create(group: &str, kind: &str, obj: &Value) -> Vec<FieldError> {
    let mut errs = Errors::new();
    match (group, kind) {
        ("", "Pod") => pod::validate_pod_create(obj, &mut errs),
        ("", "Service") => service::create(obj, &mut errs),
        ("", "ConfigMap" | "Secret") => config_data::create(kind, obj, &mut errs),
        ("", "Namespace") => namespace::create(obj, &mut errs),
        ("", "Node") => node::create(obj, &mut errs),
        ("" | "events.k8s.io", "Event") => event::create(group, obj, &mut errs),
        ("apps", k) if apps::handles(k) => apps::create(k, obj, &mut errs),
        ("batch", k) if batch::handles(k) => batch::create(k, obj, &mut errs),
        _ => match kind_info(group, kind) {
            Some(i) => {
                validate_object_meta(obj, i.rules, &mut errs);
                if let Some(body) = i.body {
                    body(obj, &mut errs);
                }
            }
            None => return validate_custom_resource_meta(obj, has_namespace(obj)),
        },
    }
    errs
}

/// Validates an update (both objects defaulted): the checks of create on the new object's
/// content, plus what may not change. As upstream's registry does before validating, the caller
/// must first carry over from the old object what a client may omit (resourceVersion for
/// unconditional updates, uid, creationTimestamp, deletionTimestamp, deletionGracePeriodSeconds).
pub fn validate_update(group: &str, kind: &str, new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Errors::new();
    match (group, kind) {
        ("", "Pod") => pod::validate_pod_update(new, old, &mut errs),
        ("", "Service") => service::update(new, old, &mut errs),
        ("", "ConfigMap" | "Secret") => config_data::update(kind, new, old, &mut errs),
        ("", "Node") => node::update(new, old, &mut errs),
        ("" | "events.k8s.io", "Event") => event::update(group, new, old, &mut errs),
        ("apps", k) if apps::handles(k) => apps::update(k, new, old, &mut errs),
        ("batch", k) if batch::handles(k) => batch::update(k, new, old, &mut errs),
        ("scheduling.k8s.io", "PriorityClass") => {
            validate_object_meta_update(new, old, true, &mut errs);
            priority_class::validate_update(new, old, &mut errs);
        }
        _ => {
            let known = kind_info(group, kind);
            let kube_finalizers = known.is_some();
            validate_object_meta_update(new, old, kube_finalizers, &mut errs);
            if let Some(body) = known.and_then(|i| i.body) {
                body(new, &mut errs);
            }
            match (group, kind) {
                ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
                    rbac::validate_binding_update(new, old, &mut errs)
                }
                ("storage.k8s.io", "StorageClass") => {
                    storage::validate_storage_class_update(new, old, &mut errs)
                }
                ("discovery.k8s.io", "EndpointSlice") => immutable(
                    access::get(new, "addressType"),
                    access::get(old, "addressType"),
                    &Path::new("addressType"),
                    &mut errs,
                ),
                _ => {}
            }
        }
    }
    errs
}
