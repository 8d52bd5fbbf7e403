//! Generic JSON -> protobuf conversion of any table message, the inverse of `to_json`.
//!
//! Fields are written in field-number order, map entries sorted by key and repeated scalars
//! unpacked, as Go's generated marshallers do. JSON `null` means absent; JSON properties the
//! message does not have are dropped, as Go's decoder would drop them.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::ProtobufError;
use super::json_names::{field_for_property, json_name};
use super::table::{self, Card, Ty};
use super::to_json::{wire_type_of, MAX_DEPTH};
use super::well_known::{self, Special};
use super::wire::{put_bytes, put_key, put_varint};

/// Serializes `value` as table message `message`.
pub(crate) fn json_to_message(
    message: usize,
    value: &Value,
    depth: usize,
) -> Result<Vec<u8>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::unencodable(format!(
            "objects nest deeper than {MAX_DEPTH} levels"
        )));
    }
    let def = table::message(message);
    if let Some(special) = Special::of(def.name) {
        return well_known::from_json(special, message, value, depth);
    }
    let object = value
        .as_object()
        .ok_or_else(|| ProtobufError::unencodable(format!("expected an object, found {value}")))?;
    // Properties of inlined structs are gathered into one object per inline field.
    let mut present: BTreeMap<u32, (usize, Option<&str>, Value)> = BTreeMap::new();
    for (key, value) in object.iter().filter(|(_, v)| !v.is_null()) {
        let Some(i) = field_for_property(message, key) else {
            continue;
        };
        let name = json_name(message, i);
        let slot = present
            .entry(def.fields[i].tag)
            .or_insert_with(|| (i, name, Value::Object(Map::new())));
        match (name, &mut slot.2) {
            (None, Value::Object(inlined)) => {
                inlined.insert(key.clone(), value.clone());
            }
            (_, slot_value) => *slot_value = value.clone(),
        }
    }
    let mut out = Vec::new();
    for (i, name, value) in present.into_values() {
        let field = &def.fields[i];
        write_field(&mut out, field.tag, field.ty, field.card, &value, depth).map_err(|e| {
            match name {
                Some(name) => e.at(name),
                None => e,
            }
        })?;
    }
    Ok(out)
}

/// Writes one field with any cardinality.
pub(crate) fn write_field(
    out: &mut Vec<u8>,
    tag: u32,
    ty: Ty,
    card: Card,
    value: &Value,
    depth: usize,
) -> Result<(), ProtobufError> {
    match card {
        Card::Optional => write_value(out, tag, ty, value, depth),
        Card::Repeated => {
            let items = value.as_array().ok_or_else(|| {
                ProtobufError::unencodable(format!("expected an array, found {value}"))
            })?;
            for (index, item) in items.iter().enumerate() {
                write_value(out, tag, ty, item, depth).map_err(|e| e.at(&format!("[{index}]")))?;
            }
            Ok(())
        }
        Card::Map => {
            let entries: &Map<String, Value> = value.as_object().ok_or_else(|| {
                ProtobufError::unencodable(format!("expected an object, found {value}"))
            })?;
            let mut keys: Vec<&String> = entries.keys().collect();
            keys.sort();
            for key in keys {
                let mut entry = Vec::new();
                put_bytes(&mut entry, 1, key.as_bytes());
                write_value(&mut entry, 2, ty, &entries[key], depth)
                    .map_err(|e| e.at(&format!("[{key:?}]")))?;
                put_bytes(out, tag, &entry);
            }
            Ok(())
        }
    }
}

/// Writes one value of kind `ty` with its key.
fn write_value(
    out: &mut Vec<u8>,
    tag: u32,
    ty: Ty,
    value: &Value,
    depth: usize,
) -> Result<(), ProtobufError> {
    let mismatch =
        |expected: &str| ProtobufError::unencodable(format!("expected {expected}, found {value}"));
    match ty {
        Ty::String => put_bytes(
            out,
            tag,
            value
                .as_str()
                .ok_or_else(|| mismatch("a string"))?
                .as_bytes(),
        ),
        Ty::Bytes => {
            let text = value.as_str().ok_or_else(|| mismatch("a base64 string"))?;
            let bytes = BASE64
                .decode(text)
                .map_err(|e| ProtobufError::unencodable(format!("invalid base64: {e}")))?;
            put_bytes(out, tag, &bytes);
        }
        Ty::Bool => {
            put_key(out, tag, wire_type_of(ty));
            put_varint(
                out,
                u64::from(value.as_bool().ok_or_else(|| mismatch("a boolean"))?),
            );
        }
        Ty::Int32 => {
            let n = integer(value).and_then(|n| i32::try_from(n).ok());
            put_key(out, tag, wire_type_of(ty));
            put_varint(
                out,
                i64::from(n.ok_or_else(|| mismatch("a 32-bit integer"))?) as u64,
            );
        }
        Ty::Int64 => {
            let n = integer(value).ok_or_else(|| mismatch("a 64-bit integer"))?;
            put_key(out, tag, wire_type_of(ty));
            put_varint(out, n as u64);
        }
        Ty::Double => {
            let d = value.as_f64().ok_or_else(|| mismatch("a number"))?;
            put_key(out, tag, wire_type_of(ty));
            out.extend_from_slice(&d.to_le_bytes());
        }
        Ty::Message(m) => put_bytes(out, tag, &json_to_message(m, value, depth + 1)?),
    }
    Ok(())
}

/// An integral JSON number (`3` or `3.0`).
fn integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
            .map(|f| f as i64)
    })
}
