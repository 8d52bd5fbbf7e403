//! Typed reads from the JSON object under validation. Shapes are checked before validation, so a
//! wrong type here is unexpected; it becomes an Invalid cause instead of a panic.

use super::field_error::FieldError;
use super::path::Path;
use serde_json::{Map, Value};

/// Errors collected while validating one object.
pub type Errors = Vec<FieldError>;

/// The value under `key`, treating an explicit `null` as absent.
pub fn get<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.as_object()?.get(key).filter(|v| !v.is_null())
}

fn wrong_type(errs: &mut Errors, path: &Path, value: &Value, what: &str) {
    errs.push(FieldError::invalid(
        path,
        value.clone(),
        &format!("must be {what}"),
    ));
}

/// A string field; absent is `None`.
pub fn string<'a>(obj: &'a Value, key: &str, path: &Path, errs: &mut Errors) -> Option<&'a str> {
    let v = get(obj, key)?;
    let s = v.as_str();
    if s.is_none() {
        wrong_type(errs, &path.child(key), v, "a string");
    }
    s
}

/// A string field, with absent read as the empty string (Go's zero value).
pub fn str_or_empty<'a>(obj: &'a Value, key: &str, path: &Path, errs: &mut Errors) -> &'a str {
    string(obj, key, path, errs).unwrap_or("")
}

/// An integer field; absent is `None`.
pub fn integer(obj: &Value, key: &str, path: &Path, errs: &mut Errors) -> Option<i64> {
    let v = get(obj, key)?;
    let n = v.as_i64();
    if n.is_none() {
        wrong_type(errs, &path.child(key), v, "an integer");
    }
    n
}

/// A boolean field; absent is `None`.
pub fn boolean(obj: &Value, key: &str, path: &Path, errs: &mut Errors) -> Option<bool> {
    let v = get(obj, key)?;
    let b = v.as_bool();
    if b.is_none() {
        wrong_type(errs, &path.child(key), v, "a boolean");
    }
    b
}

/// An object field; absent is `None`.
pub fn object<'a>(obj: &'a Value, key: &str, path: &Path, errs: &mut Errors) -> Option<&'a Value> {
    let v = get(obj, key)?;
    if v.is_object() {
        Some(v)
    } else {
        wrong_type(errs, &path.child(key), v, "an object");
        None
    }
}

/// A list field; absent reads as empty.
pub fn array<'a>(obj: &'a Value, key: &str, path: &Path, errs: &mut Errors) -> &'a [Value] {
    match get(obj, key) {
        None => &[],
        Some(Value::Array(items)) => items,
        Some(v) => {
            wrong_type(errs, &path.child(key), v, "a list");
            &[]
        }
    }
}

/// The string items of a list field; non-string items are reported and skipped.
pub fn string_list<'a>(obj: &'a Value, key: &str, path: &Path, errs: &mut Errors) -> Vec<&'a str> {
    let list_path = path.child(key);
    let mut out = Vec::new();
    for (i, item) in array(obj, key, path, errs).iter().enumerate() {
        match item.as_str() {
            Some(s) => out.push(s),
            None => wrong_type(errs, &list_path.index(i), item, "a string"),
        }
    }
    out
}

/// A `map[string]string` field sorted by key (Go iterates maps randomly; sorting makes the
/// error order deterministic). Non-string values are reported and skipped.
pub fn string_map<'a>(
    obj: &'a Value,
    key: &str,
    path: &Path,
    errs: &mut Errors,
) -> Vec<(&'a str, &'a str)> {
    let Some(v) = get(obj, key) else {
        return Vec::new();
    };
    let Some(map) = v.as_object() else {
        wrong_type(errs, &path.child(key), v, "an object");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, item) in map {
        match item.as_str() {
            Some(s) => out.push((k.as_str(), s)),
            None => wrong_type(errs, &path.child(key).key(k), item, "a string"),
        }
    }
    out.sort();
    out
}

/// An object field's entries, for maps whose values are not strings (resource lists, ...).
pub fn entries<'a>(
    obj: &'a Value,
    key: &str,
    path: &Path,
    errs: &mut Errors,
) -> Vec<(&'a str, &'a Value)> {
    let Some(v) = object(obj, key, path, errs) else {
        return Vec::new();
    };
    let map: Option<&Map<String, Value>> = v.as_object();
    let mut out: Vec<(&str, &Value)> = map
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

/// Whether two optional values are equal, treating absent and `null` alike.
pub fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    a.filter(|v| !v.is_null()) == b.filter(|v| !v.is_null())
}
