//! Generic protobuf -> JSON conversion of any table message.
//!
//! Proto2 presence is kept: a field is in the output exactly when it was on the wire, so an
//! explicit `replicas: 0` survives while unset pointers stay absent; only empty strings of
//! value-typed fields are dropped (see `omit_empty`). Repeated fields become
//! arrays, maps become objects, bytes become base64 strings (as Go's `[]byte` in JSON), and
//! the special apimachinery types take their JSON forms (see `well_known`).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::error::ProtobufError;
use super::json_names::json_name;
use super::omit_empty::empty_string_is_unset;
use super::table::{self, Card, FieldDef, Ty};
use super::well_known::{self, Special};
use super::wire::{Reader, WireType};

/// Nesting limit, so hostile input cannot exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 100;

/// Converts the serialized message `bytes` of table message `message` to JSON.
pub(crate) fn message_to_json(
    message: usize,
    bytes: &[u8],
    depth: usize,
) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::malformed(format!(
            "objects nest deeper than {MAX_DEPTH} levels"
        )));
    }
    if let Some(special) = Special::of(table::message(message).name) {
        return well_known::to_json(special, message, bytes, depth);
    }
    let mut object = Map::new();
    let def = table::message(message);
    for (i, value) in fields(message, bytes, depth)?.into_iter().enumerate() {
        let Some(value) = value else { continue };
        match (json_name(message, i), value) {
            (None, Value::Object(inlined)) => object.extend(inlined),
            (None, _) => {}
            (Some(_), Value::String(s))
                if s.is_empty()
                    && def.fields[i].card == Card::Optional
                    && empty_string_is_unset(message, i) => {}
            (Some(name), value) => {
                object.insert(name.to_string(), value);
            }
        }
    }
    Ok(Value::Object(object))
}

/// The message's field values by position in the table, `None` where absent.
pub(crate) fn fields(
    message: usize,
    bytes: &[u8],
    depth: usize,
) -> Result<Vec<Option<Value>>, ProtobufError> {
    let def = table::message(message);
    let mut values = vec![None; def.fields.len()];
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (tag, wire_type) = reader.key()?;
        match def.field(tag) {
            Some(i) => decode_field(
                &def.fields[i],
                wire_type,
                &mut reader,
                &mut values[i],
                depth,
            )
            .map_err(|e| match json_name(message, i) {
                Some(name) => e.at(name),
                None => e,
            })?,
            None => reader.skip(wire_type)?,
        }
    }
    Ok(values)
}

fn decode_field(
    field: &FieldDef,
    wire_type: WireType,
    reader: &mut Reader<'_>,
    slot: &mut Option<Value>,
    depth: usize,
) -> Result<(), ProtobufError> {
    match field.card {
        Card::Optional => *slot = Some(value(field.ty, wire_type, reader, depth)?),
        Card::Repeated => {
            let Value::Array(items) = slot.get_or_insert_with(|| Value::Array(Vec::new())) else {
                return Err(ProtobufError::malformed(
                    "internal: repeated slot is not an array",
                ));
            };
            match packed_wire_type(field.ty) {
                Some(element) if wire_type == WireType::Len => {
                    let mut packed = Reader::new(reader.bytes()?);
                    while !packed.is_empty() {
                        items.push(value(field.ty, element, &mut packed, depth)?);
                    }
                }
                _ => {
                    let index = items.len();
                    let item = value(field.ty, wire_type, reader, depth)
                        .map_err(|e| e.at(&format!("[{index}]")))?;
                    items.push(item);
                }
            }
        }
        Card::Map => {
            expect_wire(WireType::Len, wire_type)?;
            let (key, item) = map_entry(field.ty, reader.bytes()?, depth)?;
            let Value::Object(entries) = slot.get_or_insert_with(|| Value::Object(Map::new()))
            else {
                return Err(ProtobufError::malformed(
                    "internal: map slot is not an object",
                ));
            };
            entries.insert(key, item);
        }
    }
    Ok(())
}

/// One `map<string, ty>` entry: a message with the key as field 1 and the value as field 2.
/// A missing value is the zero value of its type, as in Go.
fn map_entry(ty: Ty, bytes: &[u8], depth: usize) -> Result<(String, Value), ProtobufError> {
    let mut reader = Reader::new(bytes);
    let mut key = String::new();
    let mut item = None;
    while !reader.is_empty() {
        match reader.key()? {
            (1, wire_type) => {
                expect_wire(WireType::Len, wire_type)?;
                key = String::from_utf8_lossy(reader.bytes()?).into_owned();
            }
            (2, wire_type) => {
                item = Some(
                    value(ty, wire_type, &mut reader, depth)
                        .map_err(|e| e.at(&format!("[{key:?}]")))?,
                );
            }
            (_, wire_type) => reader.skip(wire_type)?,
        }
    }
    let item = match item {
        Some(item) => item,
        None => match ty {
            Ty::Message(m) => message_to_json(m, &[], depth + 1)?,
            Ty::Bool => Value::Bool(false),
            Ty::Int32 | Ty::Int64 => Value::from(0),
            Ty::Double => Value::from(0),
            Ty::String | Ty::Bytes => Value::String(String::new()),
        },
    };
    Ok((key, item))
}

/// Reads one value of kind `ty`.
fn value(
    ty: Ty,
    wire_type: WireType,
    reader: &mut Reader<'_>,
    depth: usize,
) -> Result<Value, ProtobufError> {
    expect_wire(wire_type_of(ty), wire_type)?;
    Ok(match ty {
        // Go's encoding/json replaces invalid UTF-8 the same way.
        Ty::String => Value::String(String::from_utf8_lossy(reader.bytes()?).into_owned()),
        Ty::Bytes => Value::String(BASE64.encode(reader.bytes()?)),
        Ty::Bool => Value::Bool(reader.varint()? != 0),
        // Protobuf int32 is sign-extended to 64 bits on the wire; truncation recovers it.
        Ty::Int32 => Value::from(reader.varint()? as i64 as i32),
        Ty::Int64 => Value::from(reader.varint()? as i64),
        Ty::Double => double(f64::from_le_bytes(reader.fixed64()?))?,
        Ty::Message(m) => message_to_json(m, reader.bytes()?, depth + 1)?,
    })
}

/// A JSON number the way Go writes a float64: integral values without a fraction.
fn double(d: f64) -> Result<Value, ProtobufError> {
    if d.fract() == 0.0 && d.abs() < 9.007_199_254_740_992e15 {
        return Ok(Value::from(d as i64));
    }
    Number::from_f64(d)
        .map(Value::Number)
        .ok_or_else(|| ProtobufError::malformed(format!("{d} has no JSON representation")))
}

pub(crate) fn wire_type_of(ty: Ty) -> WireType {
    match ty {
        Ty::Bool | Ty::Int32 | Ty::Int64 => WireType::Varint,
        Ty::Double => WireType::Fixed64,
        Ty::String | Ty::Bytes | Ty::Message(_) => WireType::Len,
    }
}

/// The element wire type of a repeated scalar that may arrive packed.
fn packed_wire_type(ty: Ty) -> Option<WireType> {
    match wire_type_of(ty) {
        WireType::Len => None,
        other => Some(other),
    }
}

fn expect_wire(expected: WireType, found: WireType) -> Result<(), ProtobufError> {
    if expected == found {
        Ok(())
    } else {
        Err(ProtobufError::malformed(format!(
            "wire type {found:?} where {expected:?} was expected"
        )))
    }
}
