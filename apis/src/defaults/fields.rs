//! Reading and setting fields of a JSON object the way upstream's Go defaulters see them.
//!
//! Go decodes an absent field and `null` to the zero value, so every "is it set?" test here
//! treats both alike. A field of the wrong JSON type is never overwritten: it stays for
//! validation to reject.

use serde_json::{Map, Value};

/// A JSON object, as the defaulters walk it.
pub(crate) type Object = Map<String, Value>;

/// True when `key` is absent or null: a nil pointer, slice or map in Go.
pub(crate) fn is_unset(obj: &Object, key: &str) -> bool {
    matches!(obj.get(key), None | Some(Value::Null))
}

/// True when `key` is absent, null, or an empty array or object: `len(x) == 0` in Go.
pub(crate) fn is_empty(obj: &Object, key: &str) -> bool {
    match obj.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(map)) => map.is_empty(),
        Some(_) => false,
    }
}

/// The string at `key`, with absent and null read as "" (a Go string's zero value); `None` when
/// the field holds another type.
pub(crate) fn string_of<'a>(obj: &'a Object, key: &str) -> Option<&'a str> {
    match obj.get(key) {
        None | Some(Value::Null) => Some(""),
        Some(Value::String(s)) => Some(s),
        Some(_) => None,
    }
}

/// Sets a pointer field that is absent or null.
pub(crate) fn default_unset(obj: &mut Object, key: &str, value: Value) {
    if is_unset(obj, key) {
        obj.insert(key.to_owned(), value);
    }
}

/// Sets a slice or map field that is absent, null or empty.
pub(crate) fn default_empty(obj: &mut Object, key: &str, value: Value) {
    if is_empty(obj, key) {
        obj.insert(key.to_owned(), value);
    }
}

/// Sets a string field that is absent, null or "".
pub(crate) fn default_string(obj: &mut Object, key: &str, value: &str) {
    if string_of(obj, key) == Some("") {
        obj.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// Sets an integer field that is absent, null or 0.
pub(crate) fn default_int(obj: &mut Object, key: &str, value: i64) {
    let zero = match obj.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(_) => false,
    };
    if zero {
        obj.insert(key.to_owned(), Value::from(value));
    }
}

/// The object at `key` if one is there: a pointer struct, which stays absent when unset.
pub(crate) fn object_mut<'a>(obj: &'a mut Object, key: &str) -> Option<&'a mut Object> {
    obj.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `key`, created empty when absent or null: a Go value struct always exists, so
/// its defaults materialise even when the client left it out.
pub(crate) fn struct_mut<'a>(obj: &'a mut Object, key: &str) -> Option<&'a mut Object> {
    if is_unset(obj, key) {
        obj.insert(key.to_owned(), Value::Object(Object::new()));
    }
    object_mut(obj, key)
}

/// Calls `f` on every object in the array at `key`; other elements are skipped.
pub(crate) fn for_each_object(obj: &mut Object, key: &str, mut f: impl FnMut(&mut Object)) {
    if let Some(Value::Array(items)) = obj.get_mut(key) {
        items
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(&mut f);
    }
}

/// The `apiVersion` the client sent, or "" when it sent none.
pub(crate) fn api_version(obj: &Object) -> &str {
    obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Object {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn default_string_fills_absent_null_and_empty_only() {
        let mut obj = object(json!({"b": null, "c": "", "d": "x", "e": 5}));
        for key in ["a", "b", "c", "d", "e"] {
            default_string(&mut obj, key, "v");
        }
        assert_eq!(
            Value::Object(obj),
            json!({"a": "v", "b": "v", "c": "v", "d": "x", "e": 5})
        );
    }

    #[test]
    fn default_int_treats_zero_as_unset_but_keeps_other_types() {
        let mut obj = object(json!({"b": 0, "c": 7, "d": "0", "e": 0.0}));
        for key in ["a", "b", "c", "d", "e"] {
            default_int(&mut obj, key, 3);
        }
        assert_eq!(
            Value::Object(obj),
            json!({"a": 3, "b": 3, "c": 7, "d": "0", "e": 3})
        );
    }

    #[test]
    fn default_unset_keeps_zero_values_of_pointers() {
        let mut obj = object(json!({"b": 0, "c": false, "d": null}));
        for key in ["a", "b", "c", "d"] {
            default_unset(&mut obj, key, json!(1));
        }
        assert_eq!(
            Value::Object(obj),
            json!({"a": 1, "b": 0, "c": false, "d": 1})
        );
    }

    #[test]
    fn struct_mut_creates_missing_but_not_over_wrong_type() {
        let mut obj = object(json!({"s": "oops"}));
        assert!(struct_mut(&mut obj, "t").is_some());
        assert!(struct_mut(&mut obj, "s").is_none());
        assert_eq!(Value::Object(obj), json!({"s": "oops", "t": {}}));
    }

    #[test]
    fn is_empty_matches_go_len_zero() {
        let obj = object(json!({"a": [], "b": {}, "c": null, "d": [1], "e": "x"}));
        assert!(is_empty(&obj, "a"));
        assert!(is_empty(&obj, "b"));
        assert!(is_empty(&obj, "c"));
        assert!(is_empty(&obj, "z"));
        assert!(!is_empty(&obj, "d"));
        assert!(!is_empty(&obj, "e"));
    }
}
