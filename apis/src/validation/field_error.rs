//! Field-level validation errors, shaped and worded exactly like upstream's `field.Error` so the
//! causes of a 422 response read the same as a real apiserver's.

use super::path::Path;
use serde_json::Value;

/// Why a field is invalid; each maps 1:1 onto a Status cause type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    Forbidden,
    TooLong,
    TooMany,
    NotFound,
    Internal,
}

impl ErrorType {
    /// The Status cause `reason` (upstream `metav1.CauseType`).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Internal => "InternalError",
        }
    }

    /// The human wording that starts every cause message.
    pub fn text(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::NotFound => "Not found",
            ErrorType::Internal => "Internal error",
        }
    }
}

/// One invalid field. `bad_value: None` means the value is omitted from the message (upstream's
/// `omitValue`); `Some(Value::Null)` prints as `null`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub error_type: ErrorType,
    pub field: String,
    pub bad_value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    fn new(error_type: ErrorType, path: &Path, bad_value: Option<Value>, detail: &str) -> Self {
        FieldError {
            error_type,
            field: path.as_str().to_string(),
            bad_value,
            detail: detail.to_string(),
        }
    }

    /// A value that must be present is missing or empty.
    pub fn required(path: &Path, detail: &str) -> Self {
        Self::new(ErrorType::Required, path, None, detail)
    }

    /// A malformed value.
    pub fn invalid(path: &Path, value: impl Into<Value>, detail: &str) -> Self {
        Self::new(ErrorType::Invalid, path, Some(value.into()), detail)
    }

    /// A value outside an enumeration; the detail lists the accepted values as upstream does.
    pub fn not_supported(path: &Path, value: impl Into<Value>, valid: &[&str]) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, path, Some(value.into()), &detail)
    }

    /// A value that must be unique is repeated.
    pub fn duplicate(path: &Path, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::Duplicate, path, Some(value.into()), "")
    }

    /// A well-formed value not allowed in this situation.
    pub fn forbidden(path: &Path, detail: &str) -> Self {
        Self::new(ErrorType::Forbidden, path, None, detail)
    }

    /// A value longer than `max` bytes.
    pub fn too_long(path: &Path, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        let detail = format!("may not be more than {max} {unit}");
        Self::new(ErrorType::TooLong, path, None, &detail)
    }

    /// A list with more than `max` items.
    pub fn too_many(path: &Path, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        let detail = format!("must have at most {max} {unit}");
        Self::new(ErrorType::TooMany, path, Some(Value::from(actual)), &detail)
    }

    /// A reference to something that does not exist.
    pub fn not_found(path: &Path, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::NotFound, path, Some(value.into()), "")
    }

    /// A failure not caused by the user's input.
    pub fn internal(path: &Path, detail: &str) -> Self {
        Self::new(ErrorType::Internal, path, None, detail)
    }

    /// Status cause reason as upstream: `FieldValueInvalid`, `FieldValueRequired`, ...
    pub fn reason(&self) -> &'static str {
        self.error_type.reason()
    }

    /// Cause message as upstream's `ErrorBody` formats it, e.g.
    /// `Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain ...` or `Required value`.
    pub fn message(&self) -> String {
        let mut s = self.error_type.text().to_string();
        let shows_value = !matches!(
            self.error_type,
            ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong | ErrorType::Internal
        );
        if shows_value {
            if let Some(value) = &self.bad_value {
                s.push_str(": ");
                s.push_str(&render_value(value));
            }
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    /// `<field>: <message>`, the form upstream joins into Status.message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// Renders a bad value the way Go's `%v`/`%q`/`%#v` would for the equivalent Go value.
fn render_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let quoted: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .map(go_quote)
                .collect();
            format!("[]string{{{}}}", quoted.join(", "))
        }
        Value::Object(map) if map.values().all(Value::is_string) => {
            let mut entries: Vec<(&String, &str)> = map
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k, v)))
                .collect();
            entries.sort();
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            format!("map[string]string{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// Quotes a string like Go's `strconv.Quote` (`%q`).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Status.message of a 422: `<Kind> "<name>" is invalid: <causes>`, causes deduplicated and,
/// when more than one, bracketed and comma-separated, as upstream's error aggregate prints them.
/// `kind` is the qualified kind as upstream prints a GroupKind: `ConfigMap`, `Deployment.apps`.
pub fn invalid_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for err in errors {
        let text = err.to_string();
        if !seen.contains(&text) {
            seen.push(text);
        }
    }
    let head = format!("{kind} {} is invalid", go_quote(name));
    match seen.len() {
        0 => head,
        1 => format!("{head}: {}", seen[0]),
        _ => format!("{head}: [{}]", seen.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_upstream_error_body() {
        let p = Path::new("metadata").child("name");
        assert_eq!(FieldError::required(&p, "").message(), "Required value");
        assert_eq!(
            FieldError::required(&p, "name or generateName is required").message(),
            "Required value: name or generateName is required"
        );
        assert_eq!(
            FieldError::invalid(&p, "a\"b", "bad").message(),
            "Invalid value: \"a\\\"b\": bad"
        );
        assert_eq!(
            FieldError::invalid(&p, -1, "must be greater than or equal to 0").message(),
            "Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            FieldError::not_supported(&p, "Sometimes", &["Always", "OnFailure", "Never"])
                .message(),
            "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
        );
        assert_eq!(
            FieldError::duplicate(&p, "web").message(),
            "Duplicate value: \"web\""
        );
        assert_eq!(
            FieldError::forbidden(&p, "not allowed on this type").message(),
            "Forbidden: not allowed on this type"
        );
        assert_eq!(
            FieldError::too_long(&p, 262144).message(),
            "Too long: may not be more than 262144 bytes"
        );
        assert_eq!(
            FieldError::too_many(&p, 5, 3).message(),
            "Too many: 5: must have at most 3 items"
        );
        assert_eq!(
            FieldError::not_found(&p, "data").message(),
            "Not found: \"data\""
        );
        assert_eq!(FieldError::too_long(&p, 1).reason(), "FieldValueTooLong");
    }

    #[test]
    fn composite_values_render_like_go() {
        let p = Path::new("x");
        let labels = serde_json::json!({"b": "2", "a": "1"});
        assert_eq!(
            FieldError::invalid(&p, labels, "d").message(),
            "Invalid value: map[string]string{\"a\":\"1\", \"b\":\"2\"}: d"
        );
        let list = serde_json::json!(["x", "y"]);
        assert_eq!(
            FieldError::invalid(&p, list, "d").message(),
            "Invalid value: []string{\"x\", \"y\"}: d"
        );
        assert_eq!(go_quote("a\nb\u{1}"), "\"a\\nb\\x01\"");
    }

    #[test]
    fn aggregate_message_dedups_and_brackets() {
        let p = Path::new("metadata").child("name");
        let one = FieldError::required(&p, "");
        assert_eq!(
            invalid_message("ConfigMap", "x", std::slice::from_ref(&one)),
            "ConfigMap \"x\" is invalid: metadata.name: Required value"
        );
        let two = FieldError::forbidden(&Path::new("spec"), "no");
        assert_eq!(
            invalid_message("Deployment.apps", "x", &[one.clone(), one.clone(), two]),
            "Deployment.apps \"x\" is invalid: [metadata.name: Required value, spec: Forbidden: no]"
        );
        assert_eq!(invalid_message("Pod", "p", &[]), "Pod \"p\" is invalid");
    }
}
