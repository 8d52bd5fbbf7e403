//! Lenient readers over an object's JSON. A missing field, `null` or a value of the wrong
//! type reads as the Go zero value, so a malformed object still prints a row.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::duration;

/// The value at a path of object keys, if every step exists and is not null.
pub(super) fn get<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(obj, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

/// Whether a field is present and non-null (Go's non-nil pointer).
pub(super) fn is_set(obj: &Value, path: &[&str]) -> bool {
    get(obj, path).is_some()
}

/// A string field, "" when absent.
pub(super) fn str<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    get(obj, path).and_then(Value::as_str).unwrap_or("")
}

/// A string field that is present (Go's non-nil `*string`).
pub(super) fn opt_str<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(obj, path).and_then(Value::as_str)
}

/// An integer field, 0 when absent.
pub(super) fn int(obj: &Value, path: &[&str]) -> i64 {
    opt_int(obj, path).unwrap_or(0)
}

/// An integer field that is present (Go's non-nil `*int32`).
pub(super) fn opt_int(obj: &Value, path: &[&str]) -> Option<i64> {
    get(obj, path).and_then(Value::as_i64)
}

/// A boolean field, false when absent.
pub(super) fn bool(obj: &Value, path: &[&str]) -> bool {
    opt_bool(obj, path).unwrap_or(false)
}

/// A boolean field that is present (Go's non-nil `*bool`).
pub(super) fn opt_bool(obj: &Value, path: &[&str]) -> Option<bool> {
    get(obj, path).and_then(Value::as_bool)
}

/// An array field, empty when absent.
pub(super) fn array<'a>(obj: &'a Value, path: &[&str]) -> &'a [Value] {
    get(obj, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// An object (map) field, if present.
pub(super) fn map<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    get(obj, path).and_then(Value::as_object)
}

/// The number of entries of a map field, 0 when absent.
pub(super) fn map_len(obj: &Value, path: &[&str]) -> usize {
    map(obj, path).map_or(0, Map::len)
}

/// Unix seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which means "unset".
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// A timestamp field; `None` when absent, unparsable or Go's zero time.
pub(super) fn time(obj: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(str(obj, path))
        .ok()?
        .with_timezone(&Utc);
    (t.timestamp() != GO_ZERO_TIME_UNIX || t.timestamp_subsec_nanos() != 0).then_some(t)
}

/// metadata.name.
pub(super) fn name(obj: &Value) -> &str {
    str(obj, &["metadata", "name"])
}

/// The AGE cell: time since metadata.creationTimestamp.
pub(super) fn age(obj: &Value, now: DateTime<Utc>) -> String {
    duration::since(time(obj, &["metadata", "creationTimestamp"]), now)
}

/// The READY cell of a deployment or stateful set: "readyReplicas/replicas".
pub(super) fn ready_of_desired(obj: &Value) -> String {
    format!(
        "{}/{}",
        int(obj, &["status", "readyReplicas"]),
        int(obj, &["spec", "replicas"])
    )
}

/// An int-or-string field as Go's `IntOrString.String()` prints it.
pub(super) fn int_or_string(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// A resource quantity as stored; a missing one is zero, as Go prints an empty Quantity.
pub(super) fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_reads() {
        let v = json!({"a": {"b": "x", "n": 3, "t": true, "z": null, "arr": [1, 2]}});
        assert_eq!(str(&v, &["a", "b"]), "x");
        assert_eq!(str(&v, &["a", "n"]), "");
        assert_eq!(int(&v, &["a", "n"]), 3);
        assert_eq!(int(&v, &["a", "b"]), 0);
        assert!(bool(&v, &["a", "t"]));
        assert!(!is_set(&v, &["a", "z"]));
        assert!(is_set(&v, &["a", "b"]));
        assert_eq!(array(&v, &["a", "arr"]).len(), 2);
        assert!(array(&v, &["a", "b", "c"]).is_empty());
        assert_eq!(name(&json!("not an object")), "");
    }

    #[test]
    fn zero_and_bad_times_are_unset() {
        let v = json!({"a": "0001-01-01T00:00:00Z", "b": "yesterday", "c": "2024-05-01T10:00:00Z"});
        assert_eq!(time(&v, &["a"]), None);
        assert_eq!(time(&v, &["b"]), None);
        assert!(time(&v, &["c"]).is_some());
    }
}
