//! The schema walk behind field validation: visits a document in order, alongside the schema
//! of its type, and records what upstream's strict JSON decoder would complain about.

use std::collections::HashSet;

use base64::Engine;
use serde_json::Value;

use super::ordered_json::Node;
use super::{Report, StrictIssue, TypeMismatch};
use crate::schema::{Definitions, REF_PREFIX};

/// Where the walk is: the field path as upstream prints strict errors (`a.b[0].c`), the path
/// without list indices and the enclosing struct as Go's type errors print them.
#[derive(Clone, Default)]
struct Location {
    path: String,
    go_path: String,
    go_struct: String,
}

impl Location {
    fn field(&self, name: &str, go_struct: &str) -> Location {
        Location {
            path: join(&self.path, name),
            go_path: join(&self.go_path, name),
            go_struct: go_struct.to_string(),
        }
    }

    /// A map value: Go's error context does not name map keys.
    fn map_value(&self, key: &str) -> Location {
        Location {
            path: join(&self.path, key),
            ..self.clone()
        }
    }

    fn index(&self, i: usize) -> Location {
        Location {
            path: format!("{}[{i}]", self.path),
            ..self.clone()
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

pub(super) struct Walker<'a> {
    defs: &'a Definitions,
    pub findings: Report,
}

impl<'a> Walker<'a> {
    pub fn new(defs: &'a Definitions) -> Self {
        Walker {
            defs,
            findings: Report::default(),
        }
    }

    /// Walks a whole document of the type named by `definition`; without a schema for it
    /// only duplicates are found.
    pub fn document(&mut self, definition: &str, node: &Node) {
        if self.defs.get(definition).is_some() {
            let root = serde_json::json!({ "$ref": format!("{REF_PREFIX}{definition}") });
            self.value(Some(&root), node, &Location::default());
        } else {
            self.value(None, node, &Location::default());
        }
    }

    /// `raw` is the schema as written where the value appears (before following `$ref`).
    fn value(&mut self, raw: Option<&Value>, node: &Node, at: &Location) {
        let Some(raw) = raw else {
            self.duplicates_only(node, at);
            return;
        };
        let schema = self.defs.resolve(raw);
        if is_opaque_extension(schema) {
            return;
        }
        match node {
            Node::Scalar(Value::Null) => {}
            Node::Object(members) => self.object(raw, schema, members, at),
            Node::Array(items) => {
                if !accepts(schema, "array") {
                    self.type_error(raw, "array".into(), at);
                    return;
                }
                let item_schema = schema.get("items");
                for (i, item) in items.iter().enumerate() {
                    self.value(item_schema, item, &at.index(i));
                }
            }
            Node::Scalar(scalar) => self.scalar(raw, schema, scalar, at),
        }
    }

    fn object(&mut self, raw: &Value, schema: &Value, members: &[(String, Node)], at: &Location) {
        if !accepts(schema, "object") {
            self.type_error(raw, "object".into(), at);
            return;
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|v| v.is_object());
        if properties.is_none() && additional.is_none() {
            // RawExtension, FieldsV1 and the like hold arbitrary JSON.
            return;
        }
        let struct_name = self.struct_name(raw);
        let mut seen = HashSet::new();
        for (key, child) in members {
            match (properties.and_then(|p| p.get(key)), additional) {
                (Some(prop), _) => {
                    let child_at = at.field(key, &struct_name);
                    if !seen.insert(key.as_str()) {
                        self.findings
                            .strict
                            .push(StrictIssue::DuplicateField(child_at.path.clone()));
                    }
                    self.value(Some(prop), child, &child_at);
                }
                (None, Some(value_schema)) => {
                    let child_at = at.map_value(key);
                    if !seen.insert(key.as_str()) {
                        self.findings
                            .strict
                            .push(StrictIssue::DuplicateField(child_at.path.clone()));
                    }
                    self.value(Some(value_schema), child, &child_at);
                }
                (None, None) => self
                    .findings
                    .strict
                    .push(StrictIssue::UnknownField(join(&at.path, key))),
            }
        }
    }

    fn scalar(&mut self, raw: &Value, schema: &Value, scalar: &Value, at: &Location) {
        let found = match scalar {
            Value::Bool(_) => "bool".to_string(),
            Value::String(_) => "string".to_string(),
            Value::Number(n) if n.is_f64() => format!("number {n}"),
            _ => "number".to_string(),
        };
        let ok = if is_int_or_string(schema) {
            match scalar {
                Value::String(_) => true,
                Value::Number(n) => !n.is_f64() || self.is_quantity(raw),
                _ => false,
            }
        } else {
            match schema.get("type").and_then(Value::as_str) {
                None => true,
                Some("integer") => match scalar {
                    Value::Number(n) => fits_integer(n, schema),
                    _ => false,
                },
                Some("number") => scalar.is_number(),
                Some("boolean") => scalar.is_boolean(),
                Some("string") => match scalar {
                    Value::String(s) => {
                        if schema.get("format").and_then(Value::as_str) == Some("byte") {
                            self.check_base64(s, at);
                        }
                        true
                    }
                    _ => false,
                },
                Some(_) => false,
            }
        };
        if !ok {
            let found = match (scalar, schema.get("type").and_then(Value::as_str)) {
                (Value::Number(n), Some("integer")) => format!("number {n}"),
                _ => found,
            };
            self.type_error(raw, found, at);
        }
    }

    fn check_base64(&mut self, s: &str, at: &Location) {
        // Go's decoder skips line breaks.
        let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        let offset = match base64::engine::general_purpose::STANDARD.decode(&cleaned) {
            Ok(_) => return,
            Err(base64::DecodeError::InvalidByte(offset, _))
            | Err(base64::DecodeError::InvalidLastSymbol(offset, _)) => offset,
            Err(_) => cleaned.len() - cleaned.len() % 4,
        };
        self.findings.type_errors.push(TypeMismatch {
            path: at.path.clone(),
            message: format!("illegal base64 data at input byte {offset}"),
        });
    }

    fn type_error(&mut self, raw: &Value, found: String, at: &Location) {
        let go_type = self.go_type(raw);
        let message = if at.go_struct.is_empty() {
            format!("json: cannot unmarshal {found} into Go value of type {go_type}")
        } else {
            format!(
                "json: cannot unmarshal {found} into Go struct field {}.{} of type {go_type}",
                at.go_struct, at.go_path
            )
        };
        self.findings.type_errors.push(TypeMismatch {
            path: at.path.clone(),
            message,
        });
    }

    /// Without a schema upstream still rejects duplicate members.
    fn duplicates_only(&mut self, node: &Node, at: &Location) {
        match node {
            Node::Object(members) => {
                let mut seen = HashSet::new();
                for (key, child) in members {
                    let child_at = at.map_value(key);
                    if !seen.insert(key.as_str()) {
                        self.findings
                            .strict
                            .push(StrictIssue::DuplicateField(child_at.path.clone()));
                    }
                    self.duplicates_only(child, &child_at);
                }
            }
            Node::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.duplicates_only(item, &at.index(i));
                }
            }
            Node::Scalar(_) => {}
        }
    }

    /// The Go struct name of the type a schema refers to (`DeploymentSpec`).
    fn struct_name(&self, raw: &Value) -> String {
        ref_name(raw)
            .and_then(|name| name.rsplit('.').next())
            .unwrap_or_default()
            .to_string()
    }

    fn is_quantity(&self, raw: &Value) -> bool {
        ref_name(raw) == Some("io.k8s.apimachinery.pkg.api.resource.Quantity")
    }

    /// Go's spelling of the type a schema describes, as type errors print it
    /// (`int32`, `v1.PodSpec`, `[]v1.Container`, `map[string]string`).
    fn go_type(&self, raw: &Value) -> String {
        if let Some(name) = ref_name(raw) {
            let mut parts = name.rsplit('.');
            let ty = parts.next().unwrap_or_default();
            return match parts.next() {
                Some(pkg) => format!("{pkg}.{ty}"),
                None => ty.to_string(),
            };
        }
        let format = raw.get("format").and_then(Value::as_str);
        match raw.get("type").and_then(Value::as_str) {
            Some("integer") => format.unwrap_or("int64").to_string(),
            Some("number") => "float64".into(),
            Some("boolean") => "bool".into(),
            Some("string") if format == Some("byte") => "[]uint8".into(),
            Some("string") => "string".into(),
            Some("array") => match raw.get("items") {
                Some(items) => format!("[]{}", self.go_type(items)),
                None => "[]interface {}".into(),
            },
            Some("object") => match raw.get("additionalProperties").filter(|v| v.is_object()) {
                Some(values) => format!("map[string]{}", self.go_type(values)),
                None => "map[string]interface {}".into(),
            },
            _ if is_int_or_string(raw) => "intstr.IntOrString".into(),
            _ => "interface {}".into(),
        }
    }
}

/// The definition name a schema refers to, directly or through a one-element `allOf`.
fn ref_name(raw: &Value) -> Option<&str> {
    if let Some(r) = raw.get("$ref").and_then(Value::as_str) {
        return r.strip_prefix(REF_PREFIX);
    }
    match raw.get("allOf").and_then(Value::as_array) {
        Some(all) if all.len() == 1 => ref_name(&all[0]),
        _ => None,
    }
}

fn is_int_or_string(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true)
}

/// Subtrees whose contents the schema leaves open: nothing inside them is unknown.
fn is_opaque_extension(schema: &Value) -> bool {
    [
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
    ]
    .iter()
    .any(|ext| schema.get(*ext).and_then(Value::as_bool) == Some(true))
}

/// Whether a schema admits a JSON value of the given structural type.
fn accepts(schema: &Value, json_type: &str) -> bool {
    if is_int_or_string(schema) {
        return false;
    }
    match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some(t) => t == json_type,
    }
}

fn fits_integer(n: &serde_json::Number, schema: &Value) -> bool {
    let Some(i) = n.as_i64() else {
        return false;
    };
    match schema.get("format").and_then(Value::as_str) {
        Some("int32") => i32::try_from(i).is_ok(),
        _ => true,
    }
}
