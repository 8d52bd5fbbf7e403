//! `kubectl get jobs`: STATUS from the job's conditions, completions, duration, and (wide)
//! containers, images and selector.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{self, col, Column, AGE, CONTAINERS, IMAGES, NAME};
use super::{containers, duration, fields, labels};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "Complete, Failed, Terminating, Suspended, FailureTarget or Running.",
        0,
    ),
    col(
        "Completions",
        "string",
        "Succeeded pods out of required completions.",
        0,
    ),
    col(
        "Duration",
        "string",
        "How long the job ran, or has been running.",
        0,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    column::selector("Label selector for the job's pods."),
];

pub(super) fn cells(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let own = vec![
        status(job).into(),
        completions(job).into(),
        job_duration(job, now).into(),
    ];
    let selector = labels::format_label_selector(fields::get(job, &["spec", "selector"]));
    containers::workload_row(
        job,
        now,
        own,
        containers::template_spec(job),
        Some(selector),
    )
}

/// The first matching state in upstream's order of precedence.
fn status(job: &Value) -> &'static str {
    let conditions = fields::array(job, &["status", "conditions"]);
    // The first condition of a type decides, as in upstream's lookup.
    let holds = |type_: &str| {
        conditions
            .iter()
            .find(|c| fields::str(c, &["type"]) == type_)
            .is_some_and(|c| fields::str(c, &["status"]) == "True")
    };
    if holds("Complete") {
        "Complete"
    } else if holds("Failed") {
        "Failed"
    } else if fields::is_set(job, &["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else if holds("Suspended") {
        "Suspended"
    } else if holds("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

/// "succeeded/completions"; without completions, "succeeded/1", plus " of N" when more than
/// one pod runs in parallel.
fn completions(job: &Value) -> String {
    let succeeded = fields::int(job, &["status", "succeeded"]);
    if let Some(completions) = fields::opt_int(job, &["spec", "completions"]) {
        return format!("{succeeded}/{completions}");
    }
    let parallelism = fields::int(job, &["spec", "parallelism"]);
    if parallelism > 1 {
        format!("{succeeded}/1 of {parallelism}")
    } else {
        format!("{succeeded}/1")
    }
}

/// Start to completion, or start to now while running; empty before the job starts.
fn job_duration(job: &Value, now: DateTime<Utc>) -> String {
    let Some(start) = fields::time(job, &["status", "startTime"]) else {
        return String::new();
    };
    let end = fields::time(job, &["status", "completionTime"]).unwrap_or(now);
    duration::human_duration(end - start)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn completed_job() {
        let job = json!({
            "metadata": {"name": "pi", "creationTimestamp": ago(600)},
            "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 4,
                     "selector": {"matchLabels": {
                         "batch.kubernetes.io/controller-uid": "0b1c2d3e"}},
                     "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}],
                                           "restartPolicy": "Never"}}},
            "status": {"startTime": ago(590), "completionTime": ago(547), "succeeded": 1,
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                      {"type": "Complete", "status": "True"}]}
        });
        assert_eq!(
            cells(&job, now()),
            vec![
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("43s"),
                json!("10m"),
                json!("pi"),
                json!("perl:5.34"),
                json!("batch.kubernetes.io/controller-uid=0b1c2d3e"),
            ]
        );
    }

    #[test]
    fn statuses_and_completions() {
        let running = json!({"metadata": {"name": "w"},
            "spec": {"parallelism": 3}, "status": {"startTime": ago(125), "succeeded": 2}});
        let c = cells(&running, now());
        assert_eq!(c[1], json!("Running"));
        assert_eq!(c[2], json!("2/1 of 3"));
        assert_eq!(c[3], json!("2m5s"));

        let failed = json!({"metadata": {"deletionTimestamp": ago(1)},
            "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(status(&failed), "Failed");
        let deleting = json!({"metadata": {"deletionTimestamp": ago(1)},
            "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(status(&deleting), "Terminating");
        let suspended = json!({"spec": {"suspend": true},
            "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(status(&suspended), "Suspended");
        let failing = json!({"status": {"conditions": [
            {"type": "FailureTarget", "status": "True"}]}});
        assert_eq!(status(&failing), "FailureTarget");
        let not_started = cells(&json!({"metadata": {"name": "n"}}), now());
        assert_eq!(not_started[2], json!("0/1"));
        assert_eq!(not_started[3], json!(""));
    }
}
