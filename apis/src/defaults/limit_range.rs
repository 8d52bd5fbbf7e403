//! Defaults of a LimitRange: container items derive missing defaults from max and min.

use serde_json::Value;

use super::fields::{for_each_object, string_of, struct_mut, Object};

/// Defaults a LimitRange object in place.
pub(crate) fn apply(limit_range: &mut Object) {
    if let Some(spec) = struct_mut(limit_range, "spec") {
        for_each_object(spec, "limits", item);
    }
}

/// For `Container` items: the default limit falls back to max, the default request to the
/// default limit and then to min.
fn item(item: &mut Object) {
    if string_of(item, "type") != Some("Container") {
        return;
    }
    let resource_list =
        |item: &Object, key: &str| item.get(key).and_then(Value::as_object).cloned();
    let writable = |item: &Object, key: &str| {
        matches!(item.get(key), None | Some(Value::Null | Value::Object(_)))
    };
    if !writable(item, "default") || !writable(item, "defaultRequest") {
        return;
    }
    let mut default = resource_list(item, "default").unwrap_or_default();
    let mut default_request = resource_list(item, "defaultRequest").unwrap_or_default();
    fill_missing(&mut default, resource_list(item, "max"));
    fill_missing(&mut default_request, Some(default.clone()));
    fill_missing(&mut default_request, resource_list(item, "min"));
    for (key, list) in [("default", default), ("defaultRequest", default_request)] {
        if !list.is_empty() {
            item.insert(key.into(), Value::Object(list));
        }
    }
}

fn fill_missing(target: &mut Object, source: Option<Object>) {
    for (name, quantity) in source.unwrap_or_default() {
        target.entry(name).or_insert(quantity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_item_derives_defaults() {
        let mut lr = json!({"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "100m", "ephemeral-storage": "1Gi"}, "default": {"memory": "512Mi"}},
            {"type": "Pod", "max": {"cpu": "4"}}
        ]}});
        apply(lr.as_object_mut().unwrap());
        assert_eq!(
            lr,
            json!({"spec": {"limits": [
                {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "100m", "ephemeral-storage": "1Gi"},
                 "default": {"memory": "512Mi", "cpu": "2"},
                 "defaultRequest": {"memory": "512Mi", "cpu": "2", "ephemeral-storage": "1Gi"}},
                {"type": "Pod", "max": {"cpu": "4"}}
            ]}})
        );
    }

    #[test]
    fn empty_container_item_stays_empty() {
        let mut lr = json!({"spec": {"limits": [{"type": "Container"}]}});
        apply(lr.as_object_mut().unwrap());
        assert_eq!(lr, json!({"spec": {"limits": [{"type": "Container"}]}}));
    }
}
