//! ConfigMaps and Secrets: data keys usable as file names, a 1 MiB cap, the `immutable` flag, and
//! the keys each Secret type requires.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::metadata::{immutable, validate_object_meta, validate_object_meta_update, MetaRules};
use super::names::{is_config_map_key, NameRule};
use super::path::Path;
use serde_json::Value;

const RULES: MetaRules = MetaRules {
    namespaced: true,
    name: NameRule::Dns1123Subdomain,
    kube_finalizers: true,
};

/// Upper bound on the total size of a ConfigMap's or Secret's data.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

/// Size of the bytes a base64 string decodes to.
fn decoded_len(b64: &str) -> usize {
    let clean: Vec<u8> = b64.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let padding = clean.iter().rev().take_while(|c| **c == b'=').count();
    (clean.len() / 4 * 3 + (clean.len() % 4).saturating_sub(1)).saturating_sub(padding)
}

fn check_keys(keys: &[&str], path: &Path, errs: &mut Errors) {
    for key in keys {
        for msg in is_config_map_key(key) {
            errs.push(FieldError::invalid(&path.key(key), *key, &msg));
        }
    }
}

fn validate_config_map(obj: &Value, errs: &mut Errors) {
    validate_object_meta(obj, RULES, errs);
    config_map_body(obj, errs);
}

fn config_map_body(obj: &Value, errs: &mut Errors) {
    let data = access::string_map(obj, "data", &Path::default(), errs);
    let binary = access::string_map(obj, "binaryData", &Path::default(), errs);
    let data_path = Path::new("data");
    let mut total = 0;
    for (key, value) in &data {
        for msg in is_config_map_key(key) {
            errs.push(FieldError::invalid(&data_path.key(key), *key, &msg));
        }
        if binary.iter().any(|(k, _)| k == key) {
            errs.push(FieldError::invalid(
                &data_path.key(key),
                *key,
                "duplicate of key present in binaryData",
            ));
        }
        total += value.len();
    }
    let binary_keys: Vec<&str> = binary.iter().map(|(k, _)| *k).collect();
    check_keys(&binary_keys, &Path::new("binaryData"), errs);
    total += binary.iter().map(|(_, v)| decoded_len(v)).sum::<usize>();
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long(&Path::new(""), MAX_DATA_SIZE));
    }
}

/// Secret data as the internal type holds it: `data` plus `stringData` merged over it.
fn secret_data(obj: &Value, errs: &mut Errors) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = access::string_map(obj, "data", &Path::default(), errs)
        .into_iter()
        .map(|(k, v)| (k.to_string(), decoded_len(v)))
        .collect();
    for (k, v) in access::string_map(obj, "stringData", &Path::default(), errs) {
        out.retain(|(key, _)| key != k);
        out.push((k.to_string(), v.len()));
    }
    out.sort();
    out
}

fn validate_secret(obj: &Value, errs: &mut Errors) {
    validate_object_meta(obj, RULES, errs);
    secret_body(obj, errs);
}

fn secret_body(obj: &Value, errs: &mut Errors) {
    let data_path = Path::new("data");
    let data = secret_data(obj, errs);
    let keys: Vec<&str> = data.iter().map(|(k, _)| k.as_str()).collect();
    check_keys(&keys, &data_path, errs);
    if data.iter().map(|(_, n)| n).sum::<usize>() > MAX_DATA_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_DATA_SIZE));
    }
    let has = |k: &str| keys.contains(&k);
    let size = |k: &str| data.iter().find(|(key, _)| key == k).map_or(0, |(_, n)| *n);
    let secret_type = access::str_or_empty(obj, "type", &Path::default(), errs);
    match secret_type {
        "kubernetes.io/service-account-token" => {
            let annotations =
                access::get(obj, "metadata").and_then(|m| access::get(m, "annotations"));
            let sa = annotations
                .and_then(|a| access::get(a, "kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if sa.is_empty() {
                errs.push(FieldError::required(
                    &Path::new("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = if secret_type == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            if !has(key) {
                errs.push(FieldError::required(&data_path.key(key), ""));
            } else if let Some(content) = secret_text(obj, key) {
                if let Err(e) = serde_json::from_slice::<serde_json::Map<String, Value>>(&content) {
                    errs.push(FieldError::invalid(
                        &data_path.key(key),
                        "<secret contents redacted>",
                        &e.to_string(),
                    ));
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required(&data_path.key("username"), ""));
            errs.push(FieldError::required(&data_path.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if size("ssh-privatekey") == 0 => {
            errs.push(FieldError::required(&data_path.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errs.push(FieldError::required(&data_path.key(key), ""));
                }
            }
        }
        _ => {}
    }
}

/// The decoded bytes of one Secret entry, from `stringData` or base64 `data`.
fn secret_text(obj: &Value, key: &str) -> Option<Vec<u8>> {
    if let Some(s) = access::get(obj, "stringData")
        .and_then(|d| access::get(d, key))
        .and_then(Value::as_str)
    {
        return Some(s.as_bytes().to_vec());
    }
    let b64 = access::get(obj, "data")
        .and_then(|d| access::get(d, key))
        .and_then(Value::as_str)?;
    decode_base64(b64)
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((buf >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

pub fn create(kind: &str, obj: &Value, errs: &mut Errors) {
    match kind {
        "ConfigMap" => validate_config_map(obj, errs),
        "Secret" => validate_secret(obj, errs),
        _ => {}
    }
}

pub fn update(kind: &str, new: &Value, old: &Value, errs: &mut Errors) {
    validate_object_meta_update(new, old, true, errs);
    let mut scratch = Errors::new();
    if kind == "Secret" {
        immutable(
            access::get(new, "type"),
            access::get(old, "type"),
            &Path::new("type"),
            errs,
        );
    }
    if access::get(old, "immutable").and_then(Value::as_bool) == Some(true) {
        if access::get(new, "immutable").and_then(Value::as_bool) != Some(true) {
            errs.push(FieldError::forbidden(
                &Path::new("immutable"),
                IMMUTABLE_SET,
            ));
        }
        let data_changed = if kind == "Secret" {
            secret_data(new, &mut scratch) != secret_data(old, &mut scratch)
                || !access::same(access::get(new, "data"), access::get(old, "data"))
        } else {
            !access::same(access::get(new, "data"), access::get(old, "data"))
        };
        if data_changed {
            errs.push(FieldError::forbidden(&Path::new("data"), IMMUTABLE_SET));
        }
        if kind == "ConfigMap"
            && !access::same(
                access::get(new, "binaryData"),
                access::get(old, "binaryData"),
            )
        {
            errs.push(FieldError::forbidden(
                &Path::new("binaryData"),
                IMMUTABLE_SET,
            ));
        }
    }
    match kind {
        "ConfigMap" => config_map_body(new, errs),
        "Secret" => secret_body(new, errs),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_base64, decoded_len};

    #[test]
    fn base64_sizes() {
        assert_eq!(decoded_len("aGVsbG8="), 5);
        assert_eq!(decoded_len("aGVsbG8h"), 6);
        assert_eq!(decoded_len(""), 0);
        assert_eq!(decode_base64("e30="), Some(b"{}".to_vec()));
    }
}
