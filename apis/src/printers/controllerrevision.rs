//! `kubectl get controllerrevisions`: the owning controller and the revision number.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "The controller that owns the revision, as kind.group/name.",
        0,
    ),
    col(
        "Revision",
        "string",
        "Revision number of the stored state.",
        0,
    ),
    AGE,
];

pub(super) fn cells(rev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let controller = fields::array(rev, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| fields::bool(o, &["controller"]))
        .map_or_else(|| "<none>".to_owned(), controller_name);
    vec![
        fields::name(rev).into(),
        controller.into(),
        fields::int(rev, &["revision"]).into(),
        fields::age(rev, now).into(),
    ]
}

/// "kind.group/name" in lower case ("kind/name" for the core group); the bare name when
/// the reference carries no kind or group.
fn controller_name(owner: &Value) -> String {
    let api_version = fields::str(owner, &["apiVersion"]);
    let group = api_version
        .split_once('/')
        .map_or("", |(group, _version)| group);
    let kind = fields::str(owner, &["kind"]);
    let name = fields::str(owner, &["name"]);
    let group_kind = match (kind.is_empty(), group.is_empty()) {
        (true, true) => return name.to_owned(),
        (_, true) => kind.to_owned(),
        _ => format!("{kind}.{group}"),
    };
    format!("{}/{name}", group_kind.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn revision_row() {
        let rev = json!({
            "metadata": {"name": "web-5d8f7c9b", "creationTimestamp": ago(86400 * 2),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                     "name": "web", "uid": "u", "controller": true}]},
            "revision": 2
        });
        assert_eq!(
            cells(&rev, now()),
            vec![
                json!("web-5d8f7c9b"),
                json!("statefulset.apps/web"),
                json!(2),
                json!("2d")
            ]
        );
        assert_eq!(
            cells(&json!({"metadata": {"name": "r"}}), now())[1],
            json!("<none>")
        );
        let core = json!({"apiVersion": "v1", "kind": "Pod", "name": "p"});
        assert_eq!(controller_name(&core), "pod/p");
    }
}
