//! `kubectl get resourcequotas`: "resource: used/hard" pairs, limits.* in their own column.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Request",
        "string",
        "Usage against quota for everything but limits.*.",
        0,
    ),
    col(
        "Limit",
        "string",
        "Usage against quota for limits.* resources.",
        0,
    ),
    AGE,
];

pub(super) fn cells(quota: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut resources: Vec<(&String, &Value)> = fields::map(quota, &["status", "hard"])
        .into_iter()
        .flatten()
        .collect();
    resources.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for (resource, hard) in resources {
        let used = fields::get(quota, &["status", "used", resource]);
        let entry = format!(
            "{resource}: {}/{}",
            fields::quantity(used),
            fields::quantity(Some(hard))
        );
        if resource.starts_with("limits.") {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        fields::name(quota).into(),
        requests.join(", ").into(),
        limits.join(", ").into(),
        fields::age(quota, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_requests_and_limits() {
        let quota = json!({
            "metadata": {"name": "compute", "creationTimestamp": ago(3600 * 24 * 12)},
            "spec": {"hard": {"pods": "10"}},
            "status": {
                "hard": {"requests.cpu": "2", "pods": "10", "limits.memory": "4Gi",
                         "limits.cpu": "4", "requests.memory": "2Gi"},
                "used": {"requests.cpu": "500m", "pods": "3", "limits.cpu": "1",
                         "requests.memory": "512Mi"}
            }
        });
        assert_eq!(
            cells(&quota, now()),
            vec![
                json!("compute"),
                json!("pods: 3/10, requests.cpu: 500m/2, requests.memory: 512Mi/2Gi"),
                json!("limits.cpu: 1/4, limits.memory: 0/4Gi"),
                json!("12d"),
            ]
        );
    }
}
