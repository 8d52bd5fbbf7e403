//! HorizontalPodAutoscalers (`autoscaling/v2`): replica bounds and the scale target, as
//! upstream's `validateHorizontalPodAutoscalerSpec` (metrics are not checked yet).

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::names::is_path_segment_name;
use super::path::Path;
use serde_json::Value;

pub fn validate_spec(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = access::get(obj, "spec").unwrap_or(&Value::Null);
    let min = access::integer(spec, "minReplicas", &path, errs);
    let max = access::integer(spec, "maxReplicas", &path, errs).unwrap_or(0);
    if let Some(min) = min.filter(|m| *m < 1) {
        errs.push(FieldError::invalid(
            &path.child("minReplicas"),
            min,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid(
            &path.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            &path.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let target_path = path.child("scaleTargetRef");
    let target = access::object(spec, "scaleTargetRef", &path, errs).unwrap_or(&Value::Null);
    for field in ["kind", "name"] {
        let value = access::str_or_empty(target, field, &target_path, errs);
        if value.is_empty() {
            errs.push(FieldError::required(&target_path.child(field), ""));
        }
        for msg in is_path_segment_name(value, false) {
            errs.push(FieldError::invalid(&target_path.child(field), value, &msg));
        }
    }
}
