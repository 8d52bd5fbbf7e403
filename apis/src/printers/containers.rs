//! The CONTAINERS and IMAGES cells shared by the workload printers.

use serde_json::Value;

use super::fields;

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
