//! Go's `%v` rendering of decoded JSON values.
//!
//! Upstream's strategic merge errors embed the offending maps with `%v` (e.g.
//! `map: map[image:nginx] does not contain declared merge key: name`); rendering them the same
//! way keeps our messages identical.

use serde_json::Value;

/// Renders `value` as Go's `fmt.Sprintf("%v", v)` does for an `interface{}` holding it.
pub fn go_value(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// The JSON kind of a value as Go's decoder names it in "cannot unmarshal <kind>" errors.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's name of the dynamic type of a decoded JSON value, as `reflect.TypeOf` prints it.
pub fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Go prints map keys sorted.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                write_value(out, &map[key.as_str()]);
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_like_go() {
        let v = json!({"name": "x", "ports": [80, 443], "a": null, "ok": true});
        assert_eq!(go_value(&v), "map[a:<nil> name:x ok:true ports:[80 443]]");
        assert_eq!(go_type(&json!(1.5)), "float64");
        assert_eq!(go_type(&json!(1)), "int64");
        assert_eq!(go_type(&json!([])), "[]interface {}");
    }
}
