//! The CONTAINERS and IMAGES cells shared by the workload printers, and the row layout
//! they share: NAME, the kind's own cells, AGE, CONTAINERS, IMAGES and (wide) SELECTOR.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::fields;

/// The pod spec of a workload's `spec.template`.
pub(super) fn template_spec(workload: &Value) -> Option<&Value> {
    fields::get(workload, &["spec", "template", "spec"])
}

/// A workload row: the name, the kind's own `cells`, the age, the containers and images of
/// `pod_spec`, and the selector cell when the table has one.
pub(super) fn workload_row(
    workload: &Value,
    now: DateTime<Utc>,
    cells: Vec<Value>,
    pod_spec: Option<&Value>,
    selector: Option<String>,
) -> Vec<Value> {
    let (names, images) = names_and_images(pod_spec);
    let mut row = Vec::with_capacity(cells.len() + 5);
    row.push(fields::name(workload).into());
    row.extend(cells);
    row.push(fields::age(workload, now).into());
    row.push(names.into());
    row.push(images.into());
    row.extend(selector.map(Value::from));
    row
}

/// Comma-joined container names and images of a pod spec's `containers`.
pub(super) fn names_and_images(pod_spec: Option<&Value>) -> (String, String) {
    let containers = pod_spec.map_or(&[][..], |spec| fields::array(spec, &["containers"]));
    let names: Vec<&str> = containers
        .iter()
        .map(|c| fields::str(c, &["name"]))
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| fields::str(c, &["image"]))
        .collect();
    (names.join(","), images.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn joins_in_order() {
        let spec = json!({"containers": [
            {"name": "app", "image": "nginx:1.27"},
            {"name": "sidecar", "image": "envoy:v1"}
        ]});
        assert_eq!(
            names_and_images(Some(&spec)),
            ("app,sidecar".to_owned(), "nginx:1.27,envoy:v1".to_owned())
        );
        assert_eq!(names_and_images(None), (String::new(), String::new()));
    }
}
