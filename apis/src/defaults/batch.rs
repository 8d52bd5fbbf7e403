//! Defaulting of the `batch` group: Job and CronJob.
//!
//! A Job's selector and the `controller-uid`/`job-name` template labels are not defaults: the
//! job registry generates them on create (and because upstream defaults again whenever it
//! reads an object from storage, the Job's own labels then pick up the template's labels).

use serde_json::Value;

use super::fields::{
    default_empty, default_string, default_unset, for_each_object, is_unset, object_mut,
    struct_mut, Object,
};
use super::pod_spec;

/// Pod failures a Job tolerates unless told otherwise.
const BACKOFF_LIMIT: i64 = 6;
/// With a per-index backoff limit the global limit is effectively unlimited.
const BACKOFF_LIMIT_WITH_PER_INDEX: i64 = i32::MAX as i64;

/// Defaults a `batch` object of `kind`; kinds without defaults are left untouched.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    match kind {
        "Job" => job(obj),
        "CronJob" => cron_job(obj),
        _ => {}
    }
}

fn job(obj: &mut Object) {
    let template_labels = pod_spec::template_labels(obj);
    if let (Some(labels), Some(metadata)) = (template_labels, struct_mut(obj, "metadata")) {
        default_empty(metadata, "labels", labels);
    }
    let Some(spec) = struct_mut(obj, "spec") else {
        return;
    };
    if is_unset(spec, "completions") && is_unset(spec, "parallelism") {
        spec.insert("completions".into(), Value::from(1));
    }
    default_unset(spec, "parallelism", Value::from(1));
    let backoff_limit = if is_unset(spec, "backoffLimitPerIndex") {
        BACKOFF_LIMIT
    } else {
        BACKOFF_LIMIT_WITH_PER_INDEX
    };
    default_unset(spec, "backoffLimit", Value::from(backoff_limit));
    default_unset(spec, "completionMode", Value::from("NonIndexed"));
    default_unset(spec, "suspend", Value::Bool(false));
    pod_failure_policy(spec);
    // With a pod failure policy, pods are replaced only once fully failed.
    let replacement = if is_unset(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    default_unset(spec, "podReplacementPolicy", Value::from(replacement));
    default_unset(spec, "manualSelector", Value::Bool(false));
    pod_spec::apply_template_at(spec, "template");
}

/// A pod-condition pattern without a status matches the condition being `True`.
fn pod_failure_policy(job_spec: &mut Object) {
    if let Some(policy) = object_mut(job_spec, "podFailurePolicy") {
        for_each_object(policy, "rules", |rule| {
            for_each_object(rule, "onPodConditions", |pattern| {
                default_string(pattern, "status", "True");
            });
        });
    }
}

/// Concurrent runs allowed, not suspended, three successful and one failed Job kept. The Job
/// template gets only pod template defaults, not the Job's own.
fn cron_job(obj: &mut Object) {
    let Some(spec) = struct_mut(obj, "spec") else {
        return;
    };
    default_string(spec, "concurrencyPolicy", "Allow");
    default_unset(spec, "suspend", Value::Bool(false));
    default_unset(spec, "successfulJobsHistoryLimit", Value::from(3));
    default_unset(spec, "failedJobsHistoryLimit", Value::from(1));
    let job_spec = struct_mut(spec, "jobTemplate").and_then(|t| struct_mut(t, "spec"));
    if let Some(job_spec) = job_spec {
        pod_failure_policy(job_spec);
        pod_spec::apply_template_at(job_spec, "template");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaulted(kind: &str, mut obj: Value) -> Value {
        apply(kind, obj.as_object_mut().unwrap());
        obj
    }

    fn template() -> Value {
        json!({"metadata": {"creationTimestamp": null},
               "spec": {"containers": [{"name": "pi", "image": "perl:5.34", "resources": {}}], "restartPolicy": "Never"}})
    }

    fn defaulted_template() -> Value {
        json!({"metadata": {"creationTimestamp": null},
        "spec": {
            "containers": [{"name": "pi", "image": "perl:5.34", "resources": {},
                            "imagePullPolicy": "IfNotPresent",
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"}],
            "restartPolicy": "Never",
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30
        }})
    }

    #[test]
    fn kubectl_create_job() {
        // The body of `kubectl create job pi --image=perl:5.34`.
        let input = json!({
            "kind": "Job", "apiVersion": "batch/v1",
            "metadata": {"name": "pi", "creationTimestamp": null},
            "spec": {"template": template()},
            "status": {}
        });
        assert_eq!(
            defaulted("Job", input),
            json!({
                "kind": "Job", "apiVersion": "batch/v1",
                "metadata": {"name": "pi", "creationTimestamp": null},
                "spec": {
                    "template": defaulted_template(),
                    "completions": 1,
                    "parallelism": 1,
                    "backoffLimit": 6,
                    "completionMode": "NonIndexed",
                    "suspend": false,
                    "podReplacementPolicy": "TerminatingOrFailed",
                    "manualSelector": false
                },
                "status": {}
            })
        );
    }

    #[test]
    fn parallel_job_and_per_index_backoff() {
        let out = defaulted(
            "Job",
            json!({"spec": {"parallelism": 3, "backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 5}}),
        );
        assert_eq!(out["spec"]["parallelism"], json!(3));
        assert_eq!(out["spec"]["completions"], json!(5));
        assert_eq!(out["spec"]["backoffLimit"], json!(2147483647));
        assert_eq!(out["spec"]["completionMode"], json!("Indexed"));
        let work_queue = defaulted("Job", json!({"spec": {"parallelism": 2}}));
        assert!(work_queue["spec"].get("completions").is_none());
    }

    #[test]
    fn pod_failure_policy_defaults() {
        let out = defaulted(
            "Job",
            json!({"spec": {"podFailurePolicy": {"rules": [
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}, {"type": "X", "status": "False"}]},
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}
            ]}}}),
        );
        assert_eq!(
            out["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"],
            json!([{"type": "DisruptionTarget", "status": "True"}, {"type": "X", "status": "False"}])
        );
        assert_eq!(out["spec"]["podReplacementPolicy"], json!("Failed"));
    }

    #[test]
    fn job_labels_come_from_the_template() {
        let out = defaulted(
            "Job",
            json!({"metadata": {"name": "j"}, "spec": {"template": {"metadata": {"labels": {"app": "x"}}}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "x"}));
        let out = defaulted(
            "Job",
            json!({"metadata": {"name": "j", "labels": {"own": "y"}}, "spec": {"template": {"metadata": {"labels": {"app": "x"}}}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"own": "y"}));
    }

    #[test]
    fn kubectl_create_cronjob() {
        // The body of `kubectl create cronjob pi --image=perl:5.34 --schedule="*/1 * * * *"`.
        let input = json!({
            "kind": "CronJob", "apiVersion": "batch/v1",
            "metadata": {"name": "pi", "creationTimestamp": null},
            "spec": {"schedule": "*/1 * * * *",
                     "jobTemplate": {"metadata": {"name": "pi", "creationTimestamp": null},
                                     "spec": {"template": template()}}},
            "status": {}
        });
        assert_eq!(
            defaulted("CronJob", input),
            json!({
                "kind": "CronJob", "apiVersion": "batch/v1",
                "metadata": {"name": "pi", "creationTimestamp": null},
                "spec": {
                    "schedule": "*/1 * * * *",
                    "jobTemplate": {"metadata": {"name": "pi", "creationTimestamp": null},
                                    "spec": {"template": defaulted_template()}},
                    "concurrencyPolicy": "Allow",
                    "suspend": false,
                    "successfulJobsHistoryLimit": 3,
                    "failedJobsHistoryLimit": 1
                },
                "status": {}
            })
        );
    }
}
