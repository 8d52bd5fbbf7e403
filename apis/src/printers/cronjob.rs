//! `kubectl get cronjobs`: schedule, time zone, suspension, active jobs, last schedule, and
//! (wide) the job template's containers, images and selector.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{self, col, Column, AGE, CONTAINERS, IMAGES, NAME};
use super::{containers, duration, fields, labels};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Schedule",
        "string",
        "Cron schedule the jobs are created on.",
        0,
    ),
    col(
        "Timezone",
        "string",
        "Time zone the schedule is read in.",
        0,
    ),
    col("Suspend", "boolean", "Whether new runs are suspended.", 0),
    col("Active", "integer", "Number of jobs currently running.", 0),
    col(
        "Last Schedule",
        "string",
        "Time since a job was last scheduled.",
        0,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    column::selector("Label selector of the job template."),
];

pub(super) fn cells(cj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let job_spec = fields::get(cj, &["spec", "jobTemplate", "spec"]);
    let pod_spec = job_spec.and_then(|s| fields::get(s, &["template", "spec"]));
    let last_schedule = fields::time(cj, &["status", "lastScheduleTime"])
        .map_or_else(|| "<none>".to_owned(), |t| duration::since(Some(t), now));
    let suspend = match fields::opt_bool(cj, &["spec", "suspend"]) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let selector = job_spec.and_then(|s| fields::get(s, &["selector"]));
    let own = vec![
        fields::str(cj, &["spec", "schedule"]).into(),
        fields::opt_str(cj, &["spec", "timeZone"])
            .unwrap_or("<none>")
            .into(),
        suspend.into(),
        fields::array(cj, &["status", "active"]).len().into(),
        last_schedule.into(),
    ];
    let selector = labels::format_label_selector(selector);
    containers::workload_row(cj, now, own, pod_spec, Some(selector))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn cronjob_row() {
        let cj = json!({
            "metadata": {"name": "backup", "creationTimestamp": ago(3 * 86400)},
            "spec": {
                "schedule": "0 2 * * *",
                "timeZone": "Europe/Berlin",
                "suspend": false,
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                    {"name": "backup", "image": "restic/restic:0.17.3"}
                ]}}}}
            },
            "status": {"active": [{"kind": "Job", "name": "backup-28900000"}],
                       "lastScheduleTime": ago(3600 * 5)}
        });
        assert_eq!(
            cells(&cj, now()),
            vec![
                json!("backup"),
                json!("0 2 * * *"),
                json!("Europe/Berlin"),
                json!("False"),
                json!(1),
                json!("5h"),
                json!("3d"),
                json!("backup"),
                json!("restic/restic:0.17.3"),
                json!("<none>"),
            ]
        );
    }

    #[test]
    fn never_scheduled() {
        let c = cells(
            &json!({"metadata": {"name": "x"}, "spec": {"schedule": "@hourly"}}),
            now(),
        );
        assert_eq!(c[2], json!("<none>"));
        assert_eq!(c[3], json!("<unset>"));
        assert_eq!(c[4], json!(0));
        assert_eq!(c[5], json!("<none>"));
    }
}
