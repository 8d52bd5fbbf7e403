//! Objects and events as the watch cache holds them: the serialized JSON a client receives
//! (with `metadata.resourceVersion` set to the etcd mod revision) plus the labels and fields
//! selectors match against, so that lists and watches never re-parse objects.

use std::{collections::BTreeMap, sync::Arc};

use bytes::Bytes;
use serde_json::Value;

use crate::registry::ResourceDef;

/// The labels and selectable fields of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    pub labels: BTreeMap<String, String>,
    pub fields: BTreeMap<&'static str, String>,
}

/// One object version.
#[derive(Debug, Clone)]
pub struct Object {
    /// `<namespace>/<name>` or `<name>`: the key below the resource's prefix.
    pub key: String,
    pub namespace: String,
    pub rv: i64,
    pub raw: Bytes,
    pub attrs: Attrs,
}

/// Kinds of watch events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change to one object. For deletions `object` is the last state with the deletion
/// revision; `prev` is the state before the change, so that selector-filtered watches can
/// tell objects entering and leaving their selection.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub kind: EventType,
    pub rv: i64,
    pub object: Arc<Object>,
    pub prev: Option<Arc<Object>>,
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(obj: &mut Value, rv: i64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

impl Object {
    /// Builds the cached form of a stored value read at mod revision `rv`.
    pub fn decode(
        def: &ResourceDef,
        key: &str,
        value: &[u8],
        rv: i64,
    ) -> Result<Object, serde_json::Error> {
        let mut obj: Value = serde_json::from_slice(value)?;
        Ok(Object::from_value(def, key, &mut obj, rv))
    }

    /// Builds the cached form of a parsed object at `rv` (which is written into it).
    pub fn from_value(def: &ResourceDef, key: &str, obj: &mut Value, rv: i64) -> Object {
        set_resource_version(obj, rv);
        let raw = Bytes::from(serde_json::to_vec(obj).unwrap_or_default());
        Object {
            key: key.to_string(),
            namespace: obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            rv,
            raw,
            attrs: def.attrs(obj),
        }
    }

    /// The object as a JSON value.
    pub fn value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.raw)
    }
}
