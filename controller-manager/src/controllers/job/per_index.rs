//! `backoffLimitPerIndex` of Indexed Jobs: each index has its own failure budget. Every pod
//! carries how often its index failed before (`job-index-failure-count`, and failures the pod
//! failure policy ignored in `job-index-ignored-failure-count`); a pod failing once its index
//! already failed `backoffLimitPerIndex` times — or matching a `FailIndex` rule — fails its
//! index for good (`status.failedIndexes`) instead of being replaced.

use std::{collections::BTreeSet, sync::Arc};

use k8s_openapi::api::{batch::v1::PodFailurePolicy, core::v1::Pod};
use kube::ResourceExt;

use super::{failure_policy, indexes, Verdict};

pub const FAILURE_COUNT_ANNOTATION: &str = "batch.kubernetes.io/job-index-failure-count";
pub const IGNORED_FAILURE_COUNT_ANNOTATION: &str =
    "batch.kubernetes.io/job-index-ignored-failure-count";

fn count(pod: &Pod, annotation: &str) -> i32 {
    pod.annotations()
        .get(annotation)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Failed, or deleted before it could succeed (as upstream counts failures).
fn failed(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    phase == Some("Failed")
        || (pod.metadata.deletion_timestamp.is_some() && phase != Some("Succeeded"))
}

/// Indexes below `completions` whose failures exhausted their budget `limit`.
pub fn failed_indexes(
    pods: &[Arc<Pod>],
    policy: Option<&PodFailurePolicy>,
    limit: i32,
    completions: i32,
) -> BTreeSet<i32> {
    pods.iter()
        .filter(|p| failed(p))
        .filter_map(|p| {
            let index = indexes::of(p).filter(|i| (0..completions).contains(i))?;
            let exhausted = match failure_policy::judge(policy, p) {
                Verdict::FailIndex => true,
                Verdict::Ignore => false,
                Verdict::Count | Verdict::FailJob => count(p, FAILURE_COUNT_ANNOTATION) >= limit,
            };
            exhausted.then_some(index)
        })
        .collect()
}

/// The (failure, ignored failure) counts a new pod for `index` starts with: one more than
/// the most any failed pod of the index carried, by whether the policy counted that failure.
pub fn counts_for(pods: &[Arc<Pod>], policy: Option<&PodFailurePolicy>, index: i32) -> (i32, i32) {
    pods.iter()
        .filter(|p| failed(p) && indexes::of(p) == Some(index))
        .fold((0, 0), |(failures, ignored), p| {
            let (f, i) = (
                count(p, FAILURE_COUNT_ANNOTATION),
                count(p, IGNORED_FAILURE_COUNT_ANNOTATION),
            );
            match failure_policy::judge(policy, p) {
                Verdict::Ignore => (failures.max(f), ignored.max(i + 1)),
                _ => (failures.max(f + 1), ignored.max(i)),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(index: i32, failures: i32, code: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": { "annotations": {
                    indexes::INDEX_ANNOTATION: index.to_string(),
                    FAILURE_COUNT_ANNOTATION: failures.to_string(),
                }},
                "status": {
                    "phase": if code == 0 { "Succeeded" } else { "Failed" },
                    "containerStatuses": [{ "name": "c", "image": "i", "imageID": "", "ready": false,
                        "restartCount": 0, "state": { "terminated": { "exitCode": code } } }],
                },
            }))
            .unwrap(),
        )
    }

    #[test]
    fn an_index_fails_once_its_budget_is_spent_or_a_fail_index_rule_matches() {
        let policy: PodFailurePolicy = serde_json::from_value(json!({ "rules": [
            { "action": "FailIndex", "onExitCodes": { "operator": "In", "values": [42] } },
            { "action": "Ignore", "onExitCodes": { "operator": "In", "values": [7] } },
        ]}))
        .unwrap();
        let pods = vec![
            pod(0, 0, 1),  // index 0: first failure, budget 1 left
            pod(1, 0, 1),  // index 1: first failure ...
            pod(1, 1, 1),  // ... and the replacement's failure spends it
            pod(2, 0, 42), // index 2: FailIndex
            pod(3, 0, 7),  // index 3: ignored
            pod(4, 1, 0),  // index 4: succeeded
            pod(9, 5, 1),  // beyond completions
        ];
        let failed = failed_indexes(&pods, Some(&policy), 1, 5);
        assert_eq!(failed, [1, 2].into());
        assert_eq!(counts_for(&pods, Some(&policy), 0), (1, 0));
        assert_eq!(counts_for(&pods, Some(&policy), 1), (2, 0));
        assert_eq!(counts_for(&pods, Some(&policy), 3), (0, 1));
        assert_eq!(counts_for(&pods, Some(&policy), 4), (0, 0));
    }
}
