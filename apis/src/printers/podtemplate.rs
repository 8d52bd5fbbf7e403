//! `kubectl get podtemplates`: containers, images and the template's pod labels.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, NAME};
use super::{containers, fields, labels};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Containers",
        "string",
        "Names of the containers in the template.",
        0,
    ),
    col(
        "Images",
        "string",
        "Images used by the containers in the template.",
        0,
    ),
    col(
        "Pod Labels",
        "string",
        "Labels given to pods made from the template.",
        0,
    ),
];

pub(super) fn cells(pt: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = containers::names_and_images(fields::get(pt, &["template", "spec"]));
    vec![
        fields::name(pt).into(),
        names.into(),
        images.into(),
        labels::format_labels(fields::map(pt, &["template", "metadata", "labels"])).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::now;
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_template_row() {
        let pt = json!({
            "metadata": {"name": "tmpl"},
            "template": {"metadata": {"labels": {"run": "x"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        });
        assert_eq!(
            cells(&pt, now()),
            vec![json!("tmpl"), json!("c"), json!("busybox"), json!("run=x")]
        );
    }
}
