//! LimitRanges: per-type min/max/default bounds that must be ordered consistently.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::names::is_qualified_name;
use super::path::Path;
use super::quantity::Quantity;
use super::resources::{parse_quantity, validate_quantity_value, validate_resource_name};
use serde_json::Value;
use std::cmp::Ordering;

const BOUNDS: &[&str] = &[
    "max",
    "min",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
];

fn validate_type(limit_type: &str, path: &Path, errs: &mut Errors) {
    for msg in is_qualified_name(limit_type) {
        errs.push(FieldError::invalid(path, limit_type, &msg));
    }
    if !limit_type.contains('/')
        && !matches!(limit_type, "Pod" | "Container" | "PersistentVolumeClaim")
    {
        errs.push(FieldError::invalid(
            path,
            limit_type,
            "must be a standard limit type or fully qualified",
        ));
    }
}

fn get<'a>(m: &'a [(String, Quantity)], k: &str) -> Option<&'a Quantity> {
    m.iter().find(|(n, _)| n == k).map(|(_, q)| q)
}

fn gt(a: Option<&Quantity>, b: Option<&Quantity>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a.cmp_value(b) == Ordering::Greater)
}

/// Upstream `ValidateLimitRange` (spec part).
pub fn validate_spec(obj: &Value, errs: &mut Errors) {
    let spec_path = Path::new("spec");
    let spec = access::get(obj, "spec").unwrap_or(&Value::Null);
    let limits_path = spec_path.child("limits");
    let mut types: Vec<&str> = Vec::new();
    for (i, limit) in access::array(spec, "limits", &spec_path, errs)
        .iter()
        .enumerate()
    {
        let p = limits_path.index(i);
        let limit_type = access::str_or_empty(limit, "type", &p, errs);
        validate_type(limit_type, &p.child("type"), errs);
        if types.contains(&limit_type) {
            errs.push(FieldError::duplicate(&p.child("type"), limit_type));
        }
        types.push(limit_type);
        let mut parsed: Vec<Vec<(String, Quantity)>> = Vec::new();
        for bound in BOUNDS {
            let mut list = Vec::new();
            let entries = access::entries(limit, bound, &p, errs);
            if limit_type == "Pod"
                && !entries.is_empty()
                && matches!(*bound, "default" | "defaultRequest")
            {
                errs.push(FieldError::forbidden(
                    &p.child(bound),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
            for (name, value) in entries {
                let kp = p.child(bound).key(name);
                validate_resource_name(name, &kp, errs);
                if let Some(q) = parse_quantity(value, &kp, errs) {
                    validate_quantity_value(name, &q, &kp, errs);
                    list.push((name.to_string(), q));
                }
            }
            parsed.push(list);
        }
        let [max, min, default, default_request, ratio] = parsed.as_slice() else {
            continue;
        };
        let mut keys: Vec<&String> = parsed.iter().flatten().map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (mx, mn, df, dr) = (
                get(max, k),
                get(min, k),
                get(default, k),
                get(default_request, k),
            );
            let text = |q: Option<&Quantity>| q.map(|q| q.text.clone()).unwrap_or_default();
            let mut push = |bound: &str, bad: Option<&Quantity>, msg: String| {
                errs.push(FieldError::invalid(&p.child(bound).key(k), text(bad), &msg));
            };
            if gt(mn, mx) {
                push(
                    "min",
                    mn,
                    format!(
                        "min value {} is greater than max value {}",
                        text(mn),
                        text(mx)
                    ),
                );
            }
            if gt(mn, dr) {
                push(
                    "defaultRequest",
                    dr,
                    format!(
                        "min value {} is greater than default request value {}",
                        text(mn),
                        text(dr)
                    ),
                );
            }
            if gt(dr, mx) {
                push(
                    "defaultRequest",
                    dr,
                    format!(
                        "default request value {} is greater than max value {}",
                        text(dr),
                        text(mx)
                    ),
                );
            }
            if gt(dr, df) {
                push(
                    "defaultRequest",
                    dr,
                    format!(
                        "default request value {} is greater than default limit value {}",
                        text(dr),
                        text(df)
                    ),
                );
            }
            if gt(mn, df) {
                push(
                    "default",
                    mn,
                    format!(
                        "min value {} is greater than default value {}",
                        text(mn),
                        text(df)
                    ),
                );
            }
            if gt(df, mx) {
                push(
                    "default",
                    mx,
                    format!(
                        "default value {} is greater than max value {}",
                        text(df),
                        text(mx)
                    ),
                );
            }
            if let Some(r) = get(ratio, k) {
                let one = Quantity::parse("1");
                if one.is_some_and(|one| r.cmp_value(&one) == Ordering::Less) {
                    push(
                        "maxLimitRequestRatio",
                        Some(r),
                        format!("ratio {} is less than 1", r.text),
                    );
                }
            }
        }
    }
}
