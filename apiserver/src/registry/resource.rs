//! The declaration of a served resource: everything the generic store, discovery, OpenAPI and
//! tables need to know about it. Adding a resource is adding one `ResourceDef` to the catalog.

use serde_json::Value;

use crate::storage::object::Attrs;

/// Subresources a resource may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// `/status`: writes only `.status`; the main resource ignores `.status`.
    Status,
    /// `/scale` as `autoscaling/v1 Scale` over `spec.replicas`.
    Scale,
    /// `pods/binding`: assigns a pod to a node.
    Binding,
    /// `pods/eviction`: deletes a pod subject to disruption budgets.
    Eviction,
    /// `namespaces/finalize`: writes `spec.finalizers`.
    Finalize,
    /// `certificatesigningrequests/approval`: writes only `status.conditions` (approve/deny).
    Approval,
}

impl Subresource {
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Eviction => "eviction",
            Subresource::Finalize => "finalize",
            Subresource::Approval => "approval",
        }
    }
}

/// A selectable field: its label in field selectors and where its value lives in the object.
#[derive(Debug, Clone, Copy)]
pub struct SelectableField {
    pub label: &'static str,
    pub pointer: &'static str,
    /// The value of the field when the object does not set it (`false` for booleans).
    pub default: &'static str,
}

/// Resource-specific behaviour beyond the declaration (pods' graceful deletion, services'
/// allocations, ...), looked up by the generic store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Plain,
    Pod,
    Namespace,
    Service,
    Event,
    Job,
}

/// One served resource.
#[derive(Debug)]
pub struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The plural, lower-case resource name used in URLs.
    pub plural: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    pub subresources: &'static [Subresource],
    /// Extra selectable fields beyond `metadata.name` and `metadata.namespace`.
    pub fields: &'static [SelectableField],
    /// Whether `metadata.generation` tracks spec changes.
    pub tracks_generation: bool,
    /// Whether PUT of a missing object creates it.
    pub create_on_update: bool,
    /// The resource name of the etcd keys (shared when two groups serve one storage).
    pub storage: &'static str,
    pub behaviour: Behaviour,
}

impl ResourceDef {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The singular name: the kind in lower case.
    pub fn singular(&self) -> String {
        self.kind.to_lowercase()
    }

    /// `Deployment.apps`, or `Pod` for the core group: the kind as upstream's messages name it.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// The etcd prefix of this resource's keys, below the cluster prefix.
    pub fn storage_prefix(&self, root: &str) -> String {
        format!("{root}{}/", self.storage)
    }

    /// The key of one object below the storage prefix.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{namespace}/{name}")
        } else {
            name.to_string()
        }
    }

    /// Whether field selectors may use `label`.
    pub fn supports_field(&self, label: &str) -> bool {
        label == "metadata.name"
            || (label == "metadata.namespace" && self.namespaced)
            || self.fields.iter().any(|f| f.label == label)
    }

    /// Labels and selectable fields of an object.
    pub fn attrs(&self, obj: &Value) -> Attrs {
        let mut attrs = Attrs::default();
        if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
            for (k, v) in labels {
                if let Some(v) = v.as_str() {
                    attrs.labels.insert(k.clone(), v.to_string());
                }
            }
        }
        let text = |pointer: &str, default: &str| match obj.pointer(pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => default.to_string(),
        };
        attrs
            .fields
            .insert("metadata.name", text("/metadata/name", ""));
        if self.namespaced {
            attrs
                .fields
                .insert("metadata.namespace", text("/metadata/namespace", ""));
        }
        for field in self.fields {
            attrs
                .fields
                .insert(field.label, text(field.pointer, field.default));
        }
        attrs
    }
}
