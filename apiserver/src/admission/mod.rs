//! Admission: an ordered chain of plugins that may change (mutating) or refuse (validating) a
//! write after defaulting and before validation, as upstream's `--enable-admission-plugins`.
//! NamespaceLifecycle needs to read the namespace, so it runs as its own asynchronous step.

pub mod default_toleration_seconds;
pub mod namespace_lifecycle;
pub mod priority;
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

/// The configured chain.
pub struct Chain {
    plugins: Vec<Box<dyn Plugin>>,
}

/// Upstream's default plugin order for the plugins ferrokube has.
pub const DEFAULT_PLUGINS: &[&str] = &[
    "NamespaceLifecycle",
    "ServiceAccount",
    "DefaultTolerationSeconds",
    "Priority",
];

impl Chain {
    /// Builds the chain from plugin names; unknown names are an error.
    pub fn new(names: &[String]) -> Result<Chain, String> {
        let mut plugins: Vec<Box<dyn Plugin>> = Vec::new();
        for name in names {
            match name.as_str() {
                // Asynchronous: run by the store before the chain (see namespace_lifecycle).
                "NamespaceLifecycle" => {}
                "ServiceAccount" => plugins.push(Box::new(service_account::ServiceAccount)),
                "DefaultTolerationSeconds" => plugins.push(Box::new(
                    default_toleration_seconds::DefaultTolerationSeconds,
                )),
                "Priority" => plugins.push(Box::new(priority::Priority)),
                other => return Err(format!("unknown admission plugin {other:?}")),
            }
        }
        Ok(Chain { plugins })
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
        self.plugins.iter().map(|p| p.name()).collect()
    }
}
