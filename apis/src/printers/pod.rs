//! `kubectl get pods`: readiness, the aggregate STATUS string, restarts with the time of the
//! last restart, and (wide) IP, node, nominated node and readiness gates.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::{duration, fields};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "Ready containers out of all containers.",
        0,
    ),
    col(
        "Status",
        "string",
        "Summary of the pod's phase and container states.",
        0,
    ),
    col(
        "Restarts",
        "string",
        "Container restarts, and how long ago the last one was.",
        0,
    ),
    AGE,
    col("IP", "string", "The pod's primary IP address.", 1),
    col("Node", "string", "The node the pod is bound to.", 1),
    col(
        "Nominated Node",
        "string",
        "The node preemption nominated for the pod.",
        1,
    ),
    col(
        "Readiness Gates",
        "string",
        "Readiness gates whose condition is True, out of all.",
        1,
    ),
];

/// Status reason of pods whose node stopped responding.
const NODE_LOST: &str = "NodeLost";

pub(super) fn cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let summary = Summary::of(pod);
    let restarts = match summary.last_restart {
        Some(at) if summary.restarts != 0 => format!(
            "{} ({} ago)",
            summary.restarts,
            duration::since(Some(at), now)
        ),
        _ => summary.restarts.to_string(),
    };
    vec![
        fields::name(pod).into(),
        format!("{}/{}", summary.ready, summary.total).into(),
        summary.reason.into(),
        restarts.into(),
        fields::age(pod, now).into(),
        or_none(pod_ip(pod)).into(),
        or_none(fields::str(pod, &["spec", "nodeName"])).into(),
        or_none(fields::str(pod, &["status", "nominatedNodeName"])).into(),
        readiness_gates(pod).into(),
    ]
}

/// What the READY, STATUS and RESTARTS cells are computed from.
struct Summary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<DateTime<Utc>>,
}

impl Summary {
    /// Walks init containers, then (once initialised) regular containers, exactly in the
    /// order upstream does, since later states override the reason of earlier ones.
    fn of(pod: &Value) -> Self {
        let phase = fields::str(pod, &["status", "phase"]);
        let status_reason = fields::str(pod, &["status", "reason"]);
        let conditions = fields::array(pod, &["status", "conditions"]);
        let init_specs = fields::array(pod, &["spec", "initContainers"]);

        let mut reason = if status_reason.is_empty() {
            phase.to_owned()
        } else {
            status_reason.to_owned()
        };
        let scheduling_gated = conditions.iter().any(|c| {
            fields::str(c, &["type"]) == "PodScheduled"
                && fields::str(c, &["reason"]) == "SchedulingGated"
        });
        if scheduling_gated {
            reason = "SchedulingGated".to_owned();
        }

        let is_sidecar = |name: &str| {
            init_specs.iter().any(|c| {
                fields::str(c, &["name"]) == name && fields::str(c, &["restartPolicy"]) == "Always"
            })
        };
        let sidecars = init_specs
            .iter()
            .filter(|c| fields::str(c, &["restartPolicy"]) == "Always")
            .count();
        let mut summary = Summary {
            ready: 0,
            total: fields::array(pod, &["spec", "containers"]).len() + sidecars,
            reason,
            restarts: 0,
            last_restart: None,
        };

        let mut sidecar_restarts = 0;
        let mut sidecar_last_restart = None;
        let mut initializing = false;
        let init_statuses = fields::array(pod, &["status", "initContainerStatuses"]);
        for (i, status) in init_statuses.iter().enumerate() {
            let restart_count = fields::int(status, &["restartCount"]);
            let finished = last_termination(status);
            summary.restarts += restart_count;
            summary.last_restart = later(summary.last_restart, finished);
            let sidecar = is_sidecar(fields::str(status, &["name"]));
            if sidecar {
                sidecar_restarts += restart_count;
                sidecar_last_restart = later(sidecar_last_restart, finished);
            }
            let terminated = fields::get(status, &["state", "terminated"]);
            let waiting_reason = fields::str(status, &["state", "waiting", "reason"]);
            if terminated.is_some_and(|t| fields::int(t, &["exitCode"]) == 0) {
                continue;
            }
            if sidecar && fields::bool(status, &["started"]) {
                if fields::bool(status, &["ready"]) {
                    summary.ready += 1;
                }
                continue;
            }
            summary.reason = if let Some(t) = terminated {
                format!("Init:{}", termination_reason(t))
            } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
                format!("Init:{waiting_reason}")
            } else {
                format!("Init:{i}/{}", init_specs.len())
            };
            initializing = true;
            break;
        }

        if !initializing || has_true_condition(conditions, "Initialized") {
            summary.restarts = sidecar_restarts;
            summary.last_restart = sidecar_last_restart;
            let mut has_running = false;
            for status in fields::array(pod, &["status", "containerStatuses"])
                .iter()
                .rev()
            {
                summary.restarts += fields::int(status, &["restartCount"]);
                summary.last_restart = later(summary.last_restart, last_termination(status));
                let waiting_reason = fields::str(status, &["state", "waiting", "reason"]);
                let terminated = fields::get(status, &["state", "terminated"]);
                if !waiting_reason.is_empty() {
                    summary.reason = waiting_reason.to_owned();
                } else if let Some(t) = terminated {
                    summary.reason = termination_reason(t);
                } else if fields::bool(status, &["ready"])
                    && fields::is_set(status, &["state", "running"])
                {
                    has_running = true;
                    summary.ready += 1;
                }
            }
            if summary.reason == "Completed" && has_running {
                summary.reason = if has_true_condition(conditions, "Ready") {
                    "Running".to_owned()
                } else {
                    "NotReady".to_owned()
                };
            }
        }

        if fields::is_set(pod, &["metadata", "deletionTimestamp"]) {
            if status_reason == NODE_LOST {
                summary.reason = "Unknown".to_owned();
            } else if phase != "Succeeded" && phase != "Failed" {
                summary.reason = "Terminating".to_owned();
            }
        }
        summary
    }
}

/// A terminated state's reason, or "Signal:N" / "ExitCode:N" when it gives none.
fn termination_reason(terminated: &Value) -> String {
    let reason = fields::str(terminated, &["reason"]);
    if !reason.is_empty() {
        return reason.to_owned();
    }
    let signal = fields::int(terminated, &["signal"]);
    if signal != 0 {
        format!("Signal:{signal}")
    } else {
        format!("ExitCode:{}", fields::int(terminated, &["exitCode"]))
    }
}

/// When the container's previous run finished, if it has one.
fn last_termination(status: &Value) -> Option<DateTime<Utc>> {
    fields::time(status, &["lastState", "terminated", "finishedAt"])
}

/// The later of two optional instants.
fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    a.max(b)
}

/// Whether the pod has a condition of this type with status "True".
fn has_true_condition(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| fields::str(c, &["type"]) == type_ && fields::str(c, &["status"]) == "True")
}

/// The first of status.podIPs, falling back to the legacy singular status.podIP.
fn pod_ip(pod: &Value) -> &str {
    fields::array(pod, &["status", "podIPs"])
        .first()
        .map(|ip| fields::str(ip, &["ip"]))
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| fields::str(pod, &["status", "podIP"]))
}

/// "n/m": gates whose first matching condition is True, out of all gates; "<none>" if none.
fn readiness_gates(pod: &Value) -> String {
    let gates = fields::array(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".to_owned();
    }
    let conditions = fields::array(pod, &["status", "conditions"]);
    let passed = gates
        .iter()
        .filter(|gate| {
            let wanted = fields::str(gate, &["conditionType"]);
            conditions
                .iter()
                .find(|c| fields::str(c, &["type"]) == wanted)
                .is_some_and(|c| fields::str(c, &["status"]) == "True")
        })
        .count();
    format!("{passed}/{}", gates.len())
}

/// "<none>" in place of an empty string.
fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    fn row(pod: &Value) -> Vec<Value> {
        cells(pod, now())
    }

    #[test]
    fn running_pod_with_restarts() {
        let pod = json!({
            "metadata": {"name": "web-7d4b9c-x2v8q", "creationTimestamp": ago(3 * 3600)},
            "spec": {"nodeName": "node-1", "containers": [{"name": "web"}, {"name": "log"}],
                     "readinessGates": [{"conditionType": "example.com/lb"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.244.1.7",
                "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}],
                "conditions": [{"type": "Ready", "status": "True"},
                               {"type": "example.com/lb", "status": "True"}],
                "containerStatuses": [
                    {"name": "web", "ready": true, "restartCount": 3,
                     "state": {"running": {"startedAt": ago(600)}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}}},
                    {"name": "log", "ready": true, "restartCount": 0,
                     "state": {"running": {"startedAt": ago(3 * 3600)}}}
                ]
            }
        });
        assert_eq!(
            row(&pod),
            vec![
                json!("web-7d4b9c-x2v8q"),
                json!("2/2"),
                json!("Running"),
                json!("3 (5m ago)"),
                json!("3h"),
                json!("10.244.1.7"),
                json!("node-1"),
                json!("<none>"),
                json!("1/1"),
            ]
        );
    }

    #[test]
    fn pending_pod_is_container_creating() {
        let pod = json!({
            "metadata": {"name": "db-0", "creationTimestamp": ago(45)},
            "spec": {"containers": [{"name": "db"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "db", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "ContainerCreating"}}}
            ]}
        });
        assert_eq!(
            row(&pod),
            vec![
                json!("db-0"),
                json!("0/1"),
                json!("ContainerCreating"),
                json!("0"),
                json!("45s"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
            ]
        );
    }

    #[test]
    fn crash_loop() {
        let pod = json!({
            "metadata": {"name": "api"},
            "spec": {"containers": [{"name": "api"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "api", "restartCount": 12,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                                              "finishedAt": ago(90)}}}
            ]}
        });
        let cells = row(&pod);
        assert_eq!(cells[1], json!("0/1"));
        assert_eq!(cells[2], json!("CrashLoopBackOff"));
        assert_eq!(cells[3], json!("12 (90s ago)"));
        assert_eq!(cells[4], json!("<unknown>"));
    }

    #[test]
    fn init_containers() {
        let waiting_second = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "a"}, {"name": "b"}],
                     "containers": [{"name": "main"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "state": {"running": {}}}
            ], "containerStatuses": [
                {"name": "main", "state": {"waiting": {"reason": "PodInitializing"}}}
            ]}
        });
        assert_eq!(row(&waiting_second)[2], json!("Init:1/2"));

        let failed = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "a"}], "containers": [{"name": "main"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "restartCount": 2, "state": {"terminated": {"exitCode": 3}}}
            ]}
        });
        assert_eq!(row(&failed)[2], json!("Init:ExitCode:3"));
        assert_eq!(row(&failed)[3], json!("2"));

        let backoff = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "a"}], "containers": [{"name": "main"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        });
        assert_eq!(row(&backoff)[2], json!("Init:CrashLoopBackOff"));

        let not_started = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "a"}], "containers": [{"name": "main"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}
            ]}
        });
        assert_eq!(row(&not_started)[2], json!("Init:0/1"));
    }

    #[test]
    fn sidecar_counts_toward_ready_and_total() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                     "containers": [{"name": "main"}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [
                    {"name": "proxy", "started": true, "ready": true, "restartCount": 1,
                     "state": {"running": {}}}
                ],
                "containerStatuses": [
                    {"name": "main", "ready": true, "restartCount": 0, "state": {"running": {}}}
                ]}
        });
        let cells = row(&pod);
        assert_eq!(cells[1], json!("2/2"));
        assert_eq!(cells[2], json!("Running"));
        assert_eq!(cells[3], json!("1"));
    }

    #[test]
    fn completed_and_terminating() {
        let done = json!({
            "metadata": {"name": "job-abc", "deletionTimestamp": ago(1)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ]}
        });
        assert_eq!(row(&done)[2], json!("Completed"));

        let terminating = json!({
            "metadata": {"name": "web", "deletionTimestamp": ago(1)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "c", "ready": true, "state": {"running": {}}}
            ]}
        });
        assert_eq!(row(&terminating)[1], json!("1/1"));
        assert_eq!(row(&terminating)[2], json!("Terminating"));

        let lost = json!({
            "metadata": {"name": "web", "deletionTimestamp": ago(1)},
            "status": {"phase": "Running", "reason": "NodeLost"}
        });
        assert_eq!(row(&lost)[2], json!("Unknown"));
    }

    #[test]
    fn completed_container_with_running_sibling() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "b", "ready": true, "state": {"running": {}}}
                ]}
        });
        assert_eq!(row(&pod)[2], json!("NotReady"));
    }

    #[test]
    fn signal_and_gated() {
        let killed = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Failed", "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}
            ]}
        });
        assert_eq!(row(&killed)[2], json!("Signal:9"));

        let gated = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}], "schedulingGates": [{"name": "x"}]},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
            ]}
        });
        assert_eq!(row(&gated)[2], json!("SchedulingGated"));
    }

    #[test]
    fn garbage_still_gives_a_full_row() {
        let cells = row(&json!({"metadata": 5, "spec": "x", "status": [1]}));
        assert_eq!(cells.len(), COLUMNS.len());
        assert_eq!(cells[1], json!("0/0"));
        assert_eq!(cells[2], json!(""));
    }
}
