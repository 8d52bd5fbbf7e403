//! IntOrString fields that hold a count or a percentage (`maxSurge`, `minAvailable`, ...).

use super::field_error::FieldError;
use super::names::is_valid_percent;
use super::path::Path;
use serde_json::Value;

/// Upstream `ValidatePositiveIntOrPercent`: a non-negative integer or a `N%` string.
pub fn validate_positive_int_or_percent(
    v: Option<&Value>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    match v {
        Some(Value::String(s)) => {
            for msg in is_valid_percent(s) {
                errs.push(FieldError::invalid(path, s.as_str(), &msg));
            }
        }
        Some(Value::Number(n)) => {
            let i = n.as_i64().unwrap_or(-1);
            if i < 0 {
                errs.push(FieldError::invalid(
                    path,
                    i,
                    "must be greater than or equal to 0",
                ));
            }
        }
        None | Some(Value::Null) => {}
        Some(other) => errs.push(FieldError::invalid(
            path,
            other.clone(),
            "must be an integer or a string",
        )),
    }
}

/// The numeric value (percent or count) of an IntOrString, 0 when unset or malformed.
pub fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => s
            .strip_suffix('%')
            .and_then(|d| d.parse().ok())
            .unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// Upstream `IsNotMoreThan100Percent`.
pub fn validate_not_more_than_100_percent(
    v: Option<&Value>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    if let Some(Value::String(s)) = v {
        let over = s
            .strip_suffix('%')
            .and_then(|d| d.parse::<i64>().ok())
            .is_some_and(|p| p > 100);
        if over {
            errs.push(FieldError::invalid(
                path,
                s.as_str(),
                "must not be greater than 100%",
            ));
        }
    }
}
