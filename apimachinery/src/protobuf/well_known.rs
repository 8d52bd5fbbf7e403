//! apimachinery types whose JSON form is not an object of their protobuf fields.
//!
//! Each mirrors the type's Go `MarshalJSON`: `Time` is RFC 3339 in seconds, `MicroTime` has
//! six fractional digits, `Duration` is a Go duration string, `Quantity` its string,
//! `IntOrString` a number or a string, `RawExtension`/`FieldsV1`/`JSON` embedded JSON, and the
//! apiextensions `JSONSchemaPropsOr*` unions a schema, a bool or a list.

use chrono::DateTime;
use serde_json::Value;

use super::error::ProtobufError;
use super::from_json::write_field;
use super::go_duration;
use super::table;
use super::to_json::fields;
use super::wire::{put_bytes, Reader, WireType};

/// Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which marshals as JSON `null`.
pub(crate) const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    Time,
    MicroTime,
    Duration,
    Quantity,
    IntOrString,
    /// `runtime.RawExtension`: embedded JSON, or an embedded protobuf envelope.
    RawExtension,
    /// `FieldsV1` and apiextensions `JSON`: embedded JSON bytes in field 1.
    RawJson,
    SchemaOrArray,
    SchemaOrBool,
    SchemaOrStringArray,
}

impl Special {
    pub(crate) fn of(message: &str) -> Option<Special> {
        let (package, name) = message.rsplit_once('.')?;
        match (package, name) {
            ("io.k8s.apimachinery.pkg.apis.meta.v1", "Time") => Some(Special::Time),
            ("io.k8s.apimachinery.pkg.apis.meta.v1", "MicroTime") => Some(Special::MicroTime),
            ("io.k8s.apimachinery.pkg.apis.meta.v1", "Duration") => Some(Special::Duration),
            ("io.k8s.apimachinery.pkg.apis.meta.v1", "FieldsV1") => Some(Special::RawJson),
            ("io.k8s.apimachinery.pkg.api.resource", "Quantity" | "QuantityValue") => {
                Some(Special::Quantity)
            }
            ("io.k8s.apimachinery.pkg.util.intstr", "IntOrString") => Some(Special::IntOrString),
            ("io.k8s.apimachinery.pkg.runtime", "RawExtension") => Some(Special::RawExtension),
            (p, n) if p.starts_with("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.") => {
                match n {
                    "Json" => Some(Special::RawJson),
                    "JsonSchemaPropsOrArray" => Some(Special::SchemaOrArray),
                    "JsonSchemaPropsOrBool" => Some(Special::SchemaOrBool),
                    "JsonSchemaPropsOrStringArray" => Some(Special::SchemaOrStringArray),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// The JSON form of a special message.
pub(crate) fn to_json(
    special: Special,
    message: usize,
    bytes: &[u8],
    depth: usize,
) -> Result<Value, ProtobufError> {
    match special {
        Special::Time | Special::MicroTime if bytes.is_empty() => Ok(Value::Null),
        Special::RawExtension => raw_extension(raw_field(bytes)?, depth),
        Special::RawJson => embedded_json(raw_field(bytes)?),
        _ => {
            let mut values = fields(message, bytes, depth)?;
            let mut take = |tag: u32| {
                table::message(message)
                    .field(tag)
                    .and_then(|i| values[i].take())
            };
            match special {
                Special::Time => {
                    let seconds = int(take(1));
                    time(seconds, 0, "%Y-%m-%dT%H:%M:%SZ")
                }
                Special::MicroTime => {
                    let (seconds, nanos) = (int(take(1)), int(take(2)));
                    time(seconds, nanos, "%Y-%m-%dT%H:%M:%S%.6fZ")
                }
                Special::Duration => Ok(Value::String(go_duration::format(int(take(1))))),
                Special::Quantity => Ok(match take(1) {
                    Some(Value::String(s)) if !s.is_empty() => Value::String(s),
                    _ => Value::String("0".to_string()),
                }),
                Special::IntOrString => match int(take(1)) {
                    0 => Ok(take(2).unwrap_or_else(|| Value::from(0))),
                    1 => Ok(take(3).unwrap_or_else(|| Value::String(String::new()))),
                    other => Err(ProtobufError::malformed(format!(
                        "IntOrString type {other} is neither 0 (int) nor 1 (string)"
                    ))),
                },
                Special::SchemaOrArray => Ok(match take(2) {
                    Some(Value::Array(list)) if !list.is_empty() => Value::Array(list),
                    _ => take(1).unwrap_or(Value::Null),
                }),
                Special::SchemaOrBool => Ok(match take(2) {
                    Some(schema) => schema,
                    None => Value::Bool(take(1).and_then(|v| v.as_bool()).unwrap_or(false)),
                }),
                Special::SchemaOrStringArray => Ok(match take(2) {
                    Some(Value::Array(list)) if !list.is_empty() => Value::Array(list),
                    _ => take(1).unwrap_or(Value::Null),
                }),
                Special::RawExtension | Special::RawJson => Err(ProtobufError::malformed(
                    "internal: raw types are handled above",
                )),
            }
        }
    }
}

/// The protobuf form of a special message's JSON value.
pub(crate) fn from_json(
    special: Special,
    message: usize,
    value: &Value,
    depth: usize,
) -> Result<Vec<u8>, ProtobufError> {
    let mut out = Vec::new();
    let field = |out: &mut Vec<u8>, tag: u32, value: &Value| -> Result<(), ProtobufError> {
        let def = table::message(message);
        let f = def.field(tag).map(|i| &def.fields[i]).ok_or_else(|| {
            ProtobufError::unencodable(format!("{} has no field {tag}", def.name))
        })?;
        write_field(out, tag, f.ty, f.card, value, depth)
    };
    let mismatch =
        |expected: &str| ProtobufError::unencodable(format!("expected {expected}, found {value}"));
    match (special, value) {
        (
            Special::Time | Special::MicroTime | Special::RawExtension | Special::RawJson,
            Value::Null,
        ) => {}
        (Special::Time | Special::MicroTime, Value::String(text)) => {
            let t = DateTime::parse_from_rfc3339(text)
                .map_err(|e| ProtobufError::unencodable(format!("invalid time {text:?}: {e}")))?;
            field(&mut out, 1, &Value::from(t.timestamp()))?;
            let nanos = if special == Special::MicroTime {
                t.timestamp_subsec_nanos()
            } else {
                0
            };
            field(&mut out, 2, &Value::from(nanos))?;
        }
        (Special::Duration, Value::String(text)) => {
            field(&mut out, 1, &Value::from(go_duration::parse(text)?))?;
        }
        (Special::Quantity, Value::String(_)) => field(&mut out, 1, value)?,
        (Special::Quantity, Value::Number(n)) => field(&mut out, 1, &Value::String(n.to_string()))?,
        (Special::IntOrString, Value::Number(_)) => {
            field(&mut out, 1, &Value::from(0))?;
            field(&mut out, 2, value)?;
            field(&mut out, 3, &Value::String(String::new()))?;
        }
        (Special::IntOrString, Value::String(_)) => {
            field(&mut out, 1, &Value::from(1))?;
            field(&mut out, 2, &Value::from(0))?;
            field(&mut out, 3, value)?;
        }
        (Special::RawExtension | Special::RawJson, _) => {
            put_bytes(&mut out, 1, value.to_string().as_bytes());
        }
        (Special::SchemaOrArray, Value::Array(_)) => field(&mut out, 2, value)?,
        (Special::SchemaOrArray, Value::Object(_)) => field(&mut out, 1, value)?,
        (Special::SchemaOrBool, Value::Bool(_)) => field(&mut out, 1, value)?,
        (Special::SchemaOrBool, Value::Object(_)) => {
            field(&mut out, 1, &Value::Bool(true))?;
            field(&mut out, 2, value)?;
        }
        (Special::SchemaOrStringArray, Value::Array(_)) => field(&mut out, 2, value)?,
        (Special::SchemaOrStringArray, Value::Object(_)) => field(&mut out, 1, value)?,
        (Special::Time | Special::MicroTime, _) => return Err(mismatch("an RFC 3339 time")),
        (Special::Duration, _) => return Err(mismatch("a duration string")),
        (Special::Quantity, _) => return Err(mismatch("a quantity string")),
        (Special::IntOrString, _) => return Err(mismatch("an integer or a string")),
        (Special::SchemaOrArray, _) => return Err(mismatch("a schema or an array of schemas")),
        (Special::SchemaOrBool, _) => return Err(mismatch("a schema or a boolean")),
        (Special::SchemaOrStringArray, _) => return Err(mismatch("a schema or a list of strings")),
    }
    Ok(out)
}

fn int(value: Option<Value>) -> i64 {
    value.and_then(|v| v.as_i64()).unwrap_or(0)
}

/// Field 1 (`raw`, bytes) of a raw message; the last occurrence wins.
fn raw_field(bytes: &[u8]) -> Result<&[u8], ProtobufError> {
    let mut reader = Reader::new(bytes);
    let mut raw: &[u8] = &[];
    while !reader.is_empty() {
        match reader.key()? {
            (1, WireType::Len) => raw = reader.bytes()?,
            (1, other) => {
                return Err(ProtobufError::malformed(format!(
                    "raw field has wire type {other:?}, expected Len"
                )))
            }
            (_, wire_type) => reader.skip(wire_type)?,
        }
    }
    Ok(raw)
}

fn embedded_json(raw: &[u8]) -> Result<Value, ProtobufError> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw)
        .map_err(|e| ProtobufError::malformed(format!("embedded JSON is invalid: {e}")))
}

/// A RawExtension holds JSON, or (when a Go client encoded an object into it with the
/// protobuf codec) a complete protobuf envelope.
fn raw_extension(raw: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    if raw.starts_with(super::envelope::MAGIC) {
        return super::envelope::decode_at_depth(raw, depth + 1);
    }
    embedded_json(raw)
}

fn time(seconds: i64, nanos: i64, format: &str) -> Result<Value, ProtobufError> {
    if seconds == GO_ZERO_TIME_SECONDS && nanos == 0 {
        return Ok(Value::Null);
    }
    let nanos = u32::try_from(nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| ProtobufError::malformed(format!("nanos {nanos} out of range")))?;
    let t = DateTime::from_timestamp(seconds, nanos)
        .ok_or_else(|| ProtobufError::malformed(format!("time {seconds}s is out of range")))?;
    Ok(Value::String(t.format(format).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_and_zero_is_null() {
        assert_eq!(
            time(1_704_164_645, 0, "%Y-%m-%dT%H:%M:%SZ").unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            time(1_704_164_645, 123_456_789, "%Y-%m-%dT%H:%M:%S%.6fZ").unwrap(),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(time(GO_ZERO_TIME_SECONDS, 0, "%Y").unwrap(), Value::Null);
        assert!(time(1, 2_000_000_000, "%Y").is_err());
        assert!(time(i64::MAX, 0, "%Y").is_err());
    }

    #[test]
    fn special_types_are_recognized_by_name() {
        assert_eq!(
            Special::of("io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
            Some(Special::IntOrString)
        );
        assert_eq!(Special::of("io.k8s.api.core.v1.Pod"), None);
    }
}
