//! `podFailurePolicy`: the first rule matching a failed pod (by container exit codes or pod
//! conditions) decides whether the failure fails the Job, fails its index (with
//! `backoffLimitPerIndex`), is ignored, or counts against the backoff limits.

use k8s_openapi::api::{
    batch::v1::{PodFailurePolicy, PodFailurePolicyRule},
    core::v1::Pod,
};

/// What a failed pod means for its Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    FailJob,
    FailIndex,
    Ignore,
    Count,
}

fn exit_codes_match(rule: &PodFailurePolicyRule, pod: &Pod) -> bool {
    let Some(req) = &rule.on_exit_codes else {
        return false;
    };
    let statuses = pod.status.iter().flat_map(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
    });
    statuses
        .filter(|c| req.container_name.as_ref().is_none_or(|n| *n == c.name))
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code))
        .filter(|code| *code != 0)
        .any(|code| match req.operator.as_str() {
            "In" => req.values.contains(&code),
            "NotIn" => !req.values.contains(&code),
            _ => false,
        })
}

fn conditions_match(rule: &PodFailurePolicyRule, pod: &Pod) -> bool {
    let Some(patterns) = &rule.on_pod_conditions else {
        return false;
    };
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    patterns.iter().any(|p| {
        conditions.is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == p.type_ && c.status == p.status)
        })
    })
}

/// The verdict on a failed pod; without a matching rule the failure counts.
pub fn judge(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Verdict {
    let Some(policy) = policy else {
        return Verdict::Count;
    };
    for rule in &policy.rules {
        if exit_codes_match(rule, pod) || conditions_match(rule, pod) {
            return match rule.action.as_str() {
                "FailJob" => Verdict::FailJob,
                "FailIndex" => Verdict::FailIndex,
                "Ignore" => Verdict::Ignore,
                _ => Verdict::Count,
            };
        }
    }
    Verdict::Count
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_matching_rule_decides() {
        let policy: PodFailurePolicy = serde_json::from_value(json!({ "rules": [
            { "action": "Ignore", "onPodConditions": [{ "type": "DisruptionTarget", "status": "True" }] },
            { "action": "FailJob", "onExitCodes": { "operator": "In", "values": [42] } },
            { "action": "FailIndex", "onExitCodes": { "operator": "In", "values": [43] } },
        ]}))
        .unwrap();
        let pod = |code: i32, disrupted: bool| -> Pod {
            serde_json::from_value(json!({ "status": {
                "phase": "Failed",
                "conditions": if disrupted { json!([{ "type": "DisruptionTarget", "status": "True" }]) } else { json!([]) },
                "containerStatuses": [{ "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                    "state": { "terminated": { "exitCode": code } } }],
            }}))
            .unwrap()
        };
        assert_eq!(judge(Some(&policy), &pod(42, false)), Verdict::FailJob);
        assert_eq!(judge(Some(&policy), &pod(42, true)), Verdict::Ignore);
        assert_eq!(judge(Some(&policy), &pod(43, false)), Verdict::FailIndex);
        assert_eq!(judge(Some(&policy), &pod(1, false)), Verdict::Count);
        assert_eq!(judge(None, &pod(42, false)), Verdict::Count);
    }
}
