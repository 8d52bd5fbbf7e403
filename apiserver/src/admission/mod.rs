//! Admission: an ordered chain of plugins that may change (mutating) or refuse (validating) a
//! write after defaulting and before validation, as upstream's `--enable-admission-plugins`.
//! NamespaceLifecycle needs to read the namespace, and ResourceQuota must charge quotas in
//! etcd, so they run as asynchronous steps of the store (before the chain, and after
//! validation, respectively).

pub mod default_ingress_class;
pub mod default_storage_class;
pub mod default_toleration_seconds;
pub mod limit_ranger;
pub mod namespace_lifecycle;
pub mod priority;
pub mod resource_quota;
pub mod runtime_class;
pub mod service_account;

use serde_json::Value;

use crate::{errors::ApiResult, registry::ResourceDef, server::ApiServer};

/// The kind of write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// What a plugin is told about a write.
pub struct Attributes<'a> {
    pub operation: Operation,
    pub def: &'static ResourceDef,
    pub namespace: &'a str,
    pub name: String,
}

/// One admission plugin.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// Changes the object if it must (mutating phase).
    fn mutate(
        &self,
        _server: &ApiServer,
        _attrs: &Attributes<'_>,
        _obj: &mut Value,
        _old: Option<&Value>,
    ) -> ApiResult<()> {
        Ok(())
    }
    /// Refuses the write if it must (validating phase).
    fn validate(
        &self,
        _server: &ApiServer,
        _attrs: &Attributes<'_>,
        _obj: &Value,
        _old: Option<&Value>,
    ) -> ApiResult<()> {
        Ok(())
    }
}

/// The spec of a pod being created, for the plugins that only default new pods.
pub fn new_pod_spec<'v>(
    attrs: &Attributes<'_>,
    obj: &'v mut Value,
) -> Option<&'v mut serde_json::Map<String, Value>> {
    if attrs.operation != Operation::Create
        || attrs.def.behaviour != crate::registry::Behaviour::Pod
    {
        return None;
    }
    obj.get_mut("spec").and_then(Value::as_object_mut)
}

/// What a default-class plugin (DefaultStorageClass, DefaultIngressClass) needs to know: the
/// resource it defaults, the spec field and legacy annotation that name a class, and the
/// cluster-scoped class resource with the annotations that mark its default.
pub struct DefaultClass {
    pub name: &'static str,
    pub group: &'static str,
    pub plural: &'static str,
    pub field: &'static str,
    pub legacy_annotation: &'static str,
    pub class_group: &'static str,
    pub class_plural: &'static str,
    pub default_annotations: &'static [&'static str],
}

impl Plugin for DefaultClass {
    fn name(&self) -> &'static str {
        self.name
    }

    /// Sets the default class on a new object that names none (neither the spec field nor the
    /// legacy annotation; an explicit `""` is a choice, not an omission).
    fn mutate(
        &self,
        server: &ApiServer,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _: Option<&Value>,
    ) -> ApiResult<()> {
        if attrs.operation != Operation::Create
            || (attrs.def.group, attrs.def.plural) != (self.group, self.plural)
        {
            return Ok(());
        }
        let named = obj
            .get("spec")
            .and_then(|s| s.get(self.field))
            .is_some_and(|c| !c.is_null())
            || obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(self.legacy_annotation))
                .is_some();
        if named {
            return Ok(());
        }
        let Some(class) = self.default_class(server) else {
            return Ok(());
        };
        tracing::debug!(resource = self.plural, name = %attrs.name, namespace = attrs.namespace, %class, "defaulting class");
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert(self.field.into(), Value::String(class));
        }
        Ok(())
    }
}

impl DefaultClass {
    /// The name of the default class (one annotated `<annotation>: "true"`), the newest when
    /// several claim it, as upstream's default-class plugins choose. Read from the watch cache.
    fn default_class(&self, server: &ApiServer) -> Option<String> {
        let def = crate::registry::catalog::find(self.class_group, "v1", self.class_plural)?;
        let is_default = |obj: &Value| {
            self.default_annotations.iter().any(|a| {
                obj.pointer("/metadata/annotations")
                    .and_then(|m| m.get(*a))
                    .and_then(Value::as_str)
                    == Some("true")
            })
        };
        server
            .cache(def)
            .snapshot("")
            .objects
            .iter()
            .filter_map(|o| o.value().ok())
            .filter(|o| is_default(o))
            .max_by(|a, b| {
                let created = |o: &Value| {
                    o.pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                created(a).cmp(&created(b)).then_with(|| {
                    crate::registry::meta::name(b).cmp(crate::registry::meta::name(a))
                })
            })
            .map(|o| crate::registry::meta::name(&o).to_string())
    }
}

/// The configured chain.
pub struct Chain {
    plugins: Vec<Box<dyn Plugin>>,
    quota: Option<resource_quota::ResourceQuota>,
}

/// Upstream's default plugin order for the plugins ferrokube has.
pub const DEFAULT_PLUGINS: &[&str] = &[
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "DefaultTolerationSeconds",
    "Priority",
    "DefaultStorageClass",
    "RuntimeClass",
    "DefaultIngressClass",
    "ResourceQuota",
];

impl Chain {
    /// Builds the chain from plugin names; unknown names are an error.
    pub fn new(names: &[String]) -> Result<Chain, String> {
        let mut plugins: Vec<Box<dyn Plugin>> = Vec::new();
        let mut quota = None;
        for name in names {
            match name.as_str() {
                // Asynchronous: run by the store before the chain (see namespace_lifecycle).
                "NamespaceLifecycle" => {}
                "LimitRanger" => plugins.push(Box::new(limit_ranger::LimitRanger)),
                "ServiceAccount" => plugins.push(Box::new(service_account::ServiceAccount)),
                "DefaultTolerationSeconds" => plugins.push(Box::new(
                    default_toleration_seconds::DefaultTolerationSeconds,
                )),
                "Priority" => plugins.push(Box::new(priority::Priority)),
                "DefaultStorageClass" => {
                    plugins.push(Box::new(default_storage_class::DEFAULT_STORAGE_CLASS))
                }
                "RuntimeClass" => plugins.push(Box::new(runtime_class::RuntimeClass)),
                "DefaultIngressClass" => {
                    plugins.push(Box::new(default_ingress_class::DEFAULT_INGRESS_CLASS))
                }
                // Asynchronous: run by the store after validation (see resource_quota).
                "ResourceQuota" => quota = Some(resource_quota::ResourceQuota::default()),
                other => return Err(format!("unknown admission plugin {other:?}")),
            }
        }
        Ok(Chain { plugins, quota })
    }

    /// The ResourceQuota step, when enabled: refuses a write over quota, else charges it.
    pub async fn admit_quota(
        &self,
        server: &ApiServer,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
        dry_run: bool,
    ) -> ApiResult<()> {
        match &self.quota {
            // Boxed: charging writes quotas through the store, whose writes call this step.
            Some(q) => Box::pin(q.admit(server, attrs, obj, old, dry_run)).await,
            None => Ok(()),
        }
    }

    /// Runs every plugin's mutating phase, then every validating phase.
    pub fn admit(
        &self,
        server: &ApiServer,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        for p in &self.plugins {
            p.mutate(server, attrs, obj, old)?;
        }
        for p in &self.plugins {
            p.validate(server, attrs, obj, old)?;
        }
        Ok(())
    }

    /// The names of the plugins in the chain.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.plugins.iter().map(|p| p.name()).collect();
        if self.quota.is_some() {
            names.push("ResourceQuota");
        }
        names
    }
}
