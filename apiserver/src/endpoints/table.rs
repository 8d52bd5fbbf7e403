//! `meta.k8s.io/v1 Table` and `PartialObjectMetadata` renderings of objects, for `kubectl get`
//! and metadata-only clients.

use serde_json::{json, Value};

use crate::registry::ResourceDef;

/// The `metadata` of an object as `PartialObjectMetadata`.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// How much of each object a Table row carries (`includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> IncludeObject {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// A Table of `objects`.
pub fn table(
    def: &ResourceDef,
    objects: &[Value],
    include: IncludeObject,
    list_meta: Value,
) -> Value {
    let now = chrono::Utc::now();
    let columns: Vec<Value> = apis::printers::columns(def.group, def.kind)
        .iter()
        .map(|c| c.definition())
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = json!({ "cells": apis::printers::cells(def.group, def.kind, obj, now) });
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(obj),
                IncludeObject::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}
